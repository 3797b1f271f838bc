import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../../../src/core/tensor.js';
import { tensor } from '../../../src/core/tensor.js';
import { UnsupportedOptionError } from '../../../src/core/errors.js';
import type { GpuTier } from '../../../src/gpu/capabilities.js';
import { download, upload, type GpuTensor } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { metrics } from '../../../src/attention/metrics.js';
import type { AttentionWithLse } from '../../../src/attention/options.js';
import { blockSparseAttention } from '../../../src/attention/sparse/block-sparse.js';
import { planBlockSparseGpu, readBlockSparseStats } from '../../../src/attention/sparse/block-sparse-gpu.js';
import type { BlockSparseLayout } from '../../../src/attention/sparse/block-layout.js';
import type { BlockSparseOptions } from '../../../src/attention/sparse/block-sparse-options.js';
import { denseLayout, layoutFromBlockMap } from '../../../src/attention/sparse/layout-builders.js';
import { adapterLabel, testGpu } from '../../gpu/harness.js';
import { gaussianQkv, type CaseDims } from '../cases.js';
import {
  assertMatchesOracle,
  maskedOracle,
  randomFixedLayout,
  randomVariableLayout,
} from './sparse-cases.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

/** Relative L1 vs the float64 oracle per tier (the dense GPU tests' bounds). */
const TOLERANCE: Record<GpuTier, number> = { f32: 1e-5, f16: 2e-3, 'subgroup-matrix': 2e-3 };

async function runGpu(
  qkv: { q: Tensor; k: Tensor; v: Tensor },
  layout: BlockSparseLayout,
  opts: BlockSparseOptions,
) {
  const [q, k, v] = [qkv.q, qkv.k, qkv.v].map((t) => upload(rt, t)) as GpuTensor[];
  const plan = planBlockSparseGpu(q, k, v, layout, { ...opts, returnLse: true });
  const res = blockSparseAttention(q, k, v, layout, { ...opts, returnLse: true, returnStats: true });
  const out = await download(res.out);
  const lse = await download(res.lse as GpuTensor);
  const stats = await readBlockSparseStats(res.stats);
  plan.destroyTemporaries();
  for (const t of [q, k, v, res.out, res.lse as GpuTensor, plan.out, plan.lse]) t.destroy();
  res.stats.pvCounts?.destroy();
  return { out, lse, stats, tileQ: plan.tileQ, tileK: plan.tileK };
}

interface GpuCase {
  name: string;
  dims: CaseDims;
  layout: (nq: number, nk: number) => BlockSparseLayout;
  opts?: BlockSparseOptions;
}

const cases: GpuCase[] = [
  {
    name: 'fixed 64×32 blocks, partial last blocks N100×Nk90',
    dims: { batch: 1, headsQ: 2, tokensQ: 100, tokensKv: 90, headDim: 32 },
    layout: (nq, nk) => randomFixedLayout({ batch: 1, heads: 2, nq, nk, blockQ: 64, blockK: 32 }, 0.5, 1),
  },
  {
    name: 'fixed blocks 16×48 (key block ≠ key tile), GQA, NHD',
    dims: { batch: 2, headsQ: 4, headsKv: 2, tokensQ: 70, headDim: 16, layout: 'NHD' },
    layout: (nq, nk) => randomFixedLayout({ batch: 2, heads: 4, nq, nk, blockQ: 16, blockK: 48 }, 0.5, 2),
    opts: { layout: 'NHD' },
  },
  {
    name: 'fixed 300-row blocks (chunked), causal, layout shared by heads',
    dims: { batch: 1, headsQ: 2, tokensQ: 330, headDim: 16 },
    layout: (nq, nk) => randomFixedLayout({ batch: 1, heads: 1, nq, nk, blockQ: 300, blockK: 40 }, 0.7, 3),
    opts: { causal: true },
  },
  {
    name: 'variable segments with empty ones',
    dims: { batch: 1, headsQ: 2, tokensQ: 150, tokensKv: 97, headDim: 16 },
    layout: (nq, nk) => randomVariableLayout({ batch: 1, heads: 2, nq, nk, cq: 5, ck: 9 }, 0.4, 4),
  },
  {
    name: 'shorter than a block',
    dims: { batch: 1, headsQ: 1, tokensQ: 5, tokensKv: 3, headDim: 8 },
    layout: (nq, nk) => denseLayout({ nq, nk, blockQ: 128, blockK: 64 }),
  },
];

for (const tier of ['f32', 'f16', 'subgroup-matrix'] as const) {
  test(
    `block-sparse attention on the ${tier} tier matches the masked oracle and the CPU kernel`,
    { skip },
    async (t) => {
      if (!rt.caps.tiers.includes(tier)) {
        t.skip(`tier ${tier} not offered by ${adapterLabel(rt)}`);
        return;
      }
      for (const c of cases) {
        if (tier === 'subgroup-matrix' && c.dims.headDim % 16 !== 0) continue;
        const qkv = gaussianQkv(c.dims, 5);
        const nq = c.dims.tokensQ;
        const nk = c.dims.tokensKv ?? nq;
        const layout = c.layout(nq, nk);
        const opts = { ...c.opts, tier };
        const got = await runGpu(qkv, layout, opts);
        assert.ok(!got.out.data.some(Number.isNaN), `${c.name}: NaN`);
        const ref = maskedOracle(qkv.q, qkv.k, qkv.v, layout, c.opts ?? {}, {
          batch: c.dims.batch,
          heads: c.dims.headsQ,
        });
        assertMatchesOracle(got, ref, `${c.name} [${tier}]`, TOLERANCE[tier], tier === 'f32' ? 1e-5 : 2e-3);
        assert.ok(got.stats.density > 0 && got.stats.density <= 1);
      }
    },
  );
}

test('query blocks with no kept block give zeros and LSE −∞ on the GPU', { skip }, async () => {
  const qkv = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 24, headDim: 8 }, 3);
  const layout = layoutFromBlockMap(tensor([1, 0, 0, 0, 0, 0, 0, 1, 1], [1, 1, 3, 3], 'bool'), {
    nq: 24,
    nk: 24,
    blockQ: 8,
    blockK: 8,
  });
  const got = await runGpu(qkv, layout, { tier: 'f32' });
  assert.deepEqual(Array.from(got.out.data.slice(64, 128)), new Array(64).fill(0));
  assert.deepEqual(Array.from(got.lse.data.slice(8, 16)), new Array(8).fill(-Infinity));
});

for (const tier of ['f32', 'subgroup-matrix'] as const) {
  test(
    `stage 2 on the ${tier} tier makes the CPU kernel's decisions at the GPU's tiles`,
    { skip },
    async (t) => {
      if (!rt.caps.tiers.includes(tier)) {
        t.skip(`tier ${tier} not offered by ${adapterLabel(rt)}`);
        return;
      }
      // a shared direction makes the first 32 keys dominate every row (≈ 9 log2 units above the rest),
      // so later key tiles never raise the running max and stage 2 has tiles to skip
      const dims = { batch: 1, headsQ: 2, tokensQ: 256, headDim: 32 };
      const base = gaussianQkv(dims, 8);
      const boost = (t: Tensor, rows: number) => {
        const x = t.toFloat64();
        for (let bh = 0; bh < x.length / (256 * 32); bh++)
          for (let j = 0; j < rows; j++) x[(bh * 256 + j) * 32] += 6;
        return tensor(x, t.shape, 'float32');
      };
      const qkv = { q: boost(base.q, 256), k: boost(base.k, 32), v: base.v };
      for (const [layout, extra] of [
        [denseLayout({ nq: 256, nk: 256, blockQ: 128, blockK: 64 }), {}],
        [denseLayout({ nq: 256, nk: 256, blockQ: 128, blockK: 64 }), { pvGroupRows: 32 }],
        [
          randomVariableLayout({ batch: 1, heads: 2, nq: 256, nk: 256, cq: 3, ck: 6 }, 0.8, 6),
          { pvExemptLast: 0 },
        ],
      ] as const) {
        const opts: BlockSparseOptions = { pvThreshold: [0.5, 3], ...extra, tier };
        const got = await runGpu(qkv, layout, opts);
        const cpu = blockSparseAttention(qkv.q, qkv.k, qkv.v, layout, {
          ...opts,
          tier: undefined,
          tileQ: got.tileQ,
          tileK: got.tileK,
          returnLse: true,
          returnStats: true,
        });
        assert.ok(got.stats.pvTested > 0, 'stage 2 took no test');
        assert.ok(got.stats.pvSkipped > 0, 'stage 2 skipped nothing: the case does not exercise it');
        assert.equal(got.stats.pvTested, cpu.stats.pvTested, 'tested tiles');
        assert.equal(got.stats.pvSkipped, cpu.stats.pvSkipped, 'skipped tiles');
        const err = metrics.relL1(got.out, cpu.out);
        assert.ok(err < TOLERANCE[tier], `GPU vs CPU relative L1 ${err}`);
      }
    },
  );
}

test('GPU block-sparse rejects CPU-only options and mixed tensors', { skip }, () => {
  const qkv = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 8, headDim: 8 }, 1);
  const [q, k, v] = [qkv.q, qkv.k, qkv.v].map((t) => upload(rt, t));
  const layout = denseLayout({ nq: 8, nk: 8, blockQ: 4, blockK: 4 });
  assert.throws(() => blockSparseAttention(q, k, v, layout, { tileK: 4 }), UnsupportedOptionError);
  assert.throws(() => blockSparseAttention(q, k, v, layout, { sage: 'sage3' }), UnsupportedOptionError);
  assert.throws(() => blockSparseAttention(q, k, v, layout, { nanPolicy: 'error' }), UnsupportedOptionError);
  assert.throws(() => blockSparseAttention(q, qkv.k as never, v, layout), UnsupportedOptionError);
  assert.throws(
    () => blockSparseAttention(q, k, v, layout, { pvThreshold: 1, pvGroupRows: 3 }),
    UnsupportedOptionError,
  );
  for (const t of [q, k, v]) t.destroy();
});

test(
  'Sage quantization in the GPU block-sparse kernel equals the CPU block-sparse Sage steps (sage1, sage2, sage2++, INT4; fixed and variable layouts; causal; odd head dim)',
  { skip },
  async () => {
    const configs: {
      name: string;
      dims: CaseDims;
      layout: (nq: number, nk: number) => BlockSparseLayout;
      opts: BlockSparseOptions;
    }[] = [
      {
        name: 'sage1, fixed 64×32',
        dims: { batch: 1, headsQ: 2, tokensQ: 150, tokensKv: 150, headDim: 64 },
        layout: (nq, nk) => randomFixedLayout({ batch: 1, heads: 2, nq, nk, blockQ: 64, blockK: 32 }, 0.5, 3),
        opts: { sage: 'sage1' },
      },
      {
        name: 'sage2, fixed, causal, GQA',
        dims: { batch: 1, headsQ: 4, headsKv: 2, tokensQ: 130, tokensKv: 130, headDim: 64 },
        layout: (nq, nk) => randomFixedLayout({ batch: 1, heads: 4, nq, nk, blockQ: 64, blockK: 64 }, 0.6, 4),
        opts: { sage: 'sage2', causal: true },
      },
      {
        name: 'sage2++, variable clusters',
        dims: { batch: 1, headsQ: 2, tokensQ: 120, tokensKv: 140, headDim: 64 },
        layout: (nq, nk) => randomVariableLayout({ batch: 1, heads: 2, nq, nk, cq: 5, ck: 7 }, 0.5, 5),
        opts: { sage: 'sage2++' },
      },
      {
        name: 'INT4 per-thread Q/K, head dim 40 (padded to 64)',
        dims: { batch: 1, headsQ: 2, tokensQ: 100, tokensKv: 100, headDim: 40 },
        layout: (nq, nk) => randomFixedLayout({ batch: 1, heads: 2, nq, nk, blockQ: 64, blockK: 32 }, 0.7, 6),
        opts: { sage: { preset: 'sage2', qk: { kind: 'int4', granularity: 'per-thread' } } },
      },
    ];
    for (const c of configs) {
      const qkv = gaussianQkv(c.dims, 21);
      const layout = c.layout(c.dims.tokensQ, c.dims.tokensKv ?? c.dims.tokensQ);
      const [q, k, v] = [qkv.q, qkv.k, qkv.v].map((t) => upload(rt, t)) as GpuTensor[];
      // the float plan of the same shape says which key tile the kernels step by
      const probe = planBlockSparseGpu(q, k, v, layout, { causal: c.opts.causal });
      const tileK = probe.tileK;
      probe.destroyTemporaries();
      for (const t of [probe.out, probe.lse]) t.destroy();
      const res = blockSparseAttention(q, k, v, layout, { ...c.opts, returnLse: true }) as AttentionWithLse<
        GpuTensor<'float32'>
      >;
      const out = await download(res.out);
      const lse = await download(res.lse);
      const cpu = blockSparseAttention(qkv.q, qkv.k, qkv.v, layout, {
        ...c.opts,
        sage:
          typeof c.opts.sage === 'string'
            ? { preset: c.opts.sage, pvAccum: 'fp32' }
            : { ...c.opts.sage, pvAccum: 'fp32' },
        returnLse: true,
        tileK,
      }) as AttentionWithLse<Tensor<'float32'>>;
      const err = metrics.relL1(out, cpu.out);
      assert.ok(err < 2e-3, `${c.name}: relative L1 to the CPU steps ${err} (${adapterLabel(rt)})`);
      // rows that see no kept key have LSE −∞ on both; the others agree to float rounding
      let lerr = 0;
      for (let i = 0; i < lse.size; i++) {
        const [a, b] = [lse.data[i] as number, cpu.lse.data[i] as number];
        if (b === -Infinity) assert.equal(a, -Infinity, `${c.name}: LSE row ${i}`);
        else lerr = Math.max(lerr, Math.abs(a - b) / Math.max(1, Math.abs(b)));
      }
      assert.ok(lerr < 1e-5, `${c.name}: LSE relative error ${lerr}`);
      // and the quantization is really there: the float kernel differs from it
      const float = blockSparseAttention(qkv.q, qkv.k, qkv.v, layout, {
        causal: c.opts.causal,
      }) as Tensor<'float32'>;
      assert.ok(metrics.relL1(out, float) > 1e-4, `${c.name}: no trace of quantization`);
      for (const t of [q, k, v, res.out, res.lse]) t.destroy();
    }
  },
);

test(
  'Sage in the GPU block-sparse kernel refuses what runs on the CPU only, with typed errors',
  { skip },
  () => {
    const dims = { batch: 1, headsQ: 1, tokensQ: 64, tokensKv: 64, headDim: 32 };
    const qkv = gaussianQkv(dims, 2);
    const layout = denseLayout({ batch: 1, heads: 1, nq: 64, nk: 64, blockQ: 64, blockK: 64 });
    const [q, k, v] = [qkv.q, qkv.k, qkv.v].map((t) => upload(rt, t)) as GpuTensor[];
    assert.throws(() => blockSparseAttention(q, k, v, layout, { sage: 'sage3' }), /INT8 or INT4 Q\/K/);
    assert.throws(
      () => blockSparseAttention(q, k, v, layout, { sage: { preset: 'sage2', smoothQ: true } }),
      /smoothQ/,
    );
    assert.throws(() => planBlockSparseGpu(q, k, v, layout, { sage: 'sage1' }), UnsupportedOptionError);
    for (const t of [q, k, v]) t.destroy();
  },
);
