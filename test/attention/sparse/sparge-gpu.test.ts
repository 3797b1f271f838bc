import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tensor, type Tensor } from '../../../src/core/tensor.js';
import { UnsupportedOptionError } from '../../../src/core/errors.js';
import { download, upload, type GpuTensor } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { metrics } from '../../../src/attention/metrics.js';
import {
  spargeAttention,
  type SpargeAttentionOptions,
} from '../../../src/attention/sparse/sparge-attention.js';
import { spargeBlockMap } from '../../../src/attention/sparse/sparge-block-map.js';
import { hilbertOrder3d } from '../../../src/attention/sparse/token-orders.js';
import { planBlockSparseGpu } from '../../../src/attention/sparse/block-sparse-gpu.js';
import { denseLayout } from '../../../src/attention/sparse/layout-builders.js';
import { testGpu } from '../../gpu/harness.js';
import { as, gaussianQkv, type CaseDims } from '../cases.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

/** Q with a shared direction per 16-token run so that blocks are similar and maps are not trivial. */
function structured(dims: CaseDims, seed: number, dtype: 'float32' | 'float16' = 'float32') {
  const g = gaussianQkv(dims, seed, 'float64');
  const bump = (t: Tensor) => {
    const x = t.toFloat64();
    const d = dims.headDim;
    for (let r = 0; r < x.length / d; r++) x[r * d + (Math.floor(r / 16) % d)] += 2;
    return as(tensor(x, t.shape, 'float64'), dtype);
  };
  return { q: bump(g.q), k: bump(g.k), v: as(g.v, dtype) };
}

const cases: { name: string; dims: CaseDims; opts: SpargeAttentionOptions; dtype?: 'float16' }[] = [
  {
    name: 'topk defaults, 64×32 blocks',
    dims: { batch: 1, headsQ: 2, tokensQ: 256, headDim: 16 },
    opts: { blockQ: 64, blockK: 32 },
  },
  {
    name: 'TopCdf exclusive, per-head θ, partial blocks',
    dims: { batch: 2, headsQ: 2, tokensQ: 200, tokensKv: 170, headDim: 16 },
    opts: { blockQ: 32, blockK: 16, cdfThreshold: [0.6, 0.9], simThreshold: [0.2, 0.4] },
  },
  {
    name: 'TopCdf inclusive, causal, sink, GQA',
    dims: { batch: 1, headsQ: 4, headsKv: 2, tokensQ: 192, headDim: 16 },
    opts: {
      blockQ: 32,
      blockK: 16,
      cdfThreshold: 0.7,
      cdfRule: 'inclusive',
      causal: true,
      attentionSink: true,
    },
  },
  {
    name: 'no K smoothing, NHD, float16 inputs',
    dims: { batch: 1, headsQ: 2, tokensQ: 128, headDim: 32, layout: 'NHD' },
    opts: { blockQ: 32, blockK: 32, smoothK: false, topk: 0.25, layout: 'NHD' },
    dtype: 'float16',
  },
];

for (const tier of ['f32', 'subgroup-matrix'] as const) {
  test(
    `the GPU predictor writes the CPU predictor’s block map; SpargeAttn on the ${tier} tier matches the CPU`,
    { skip },
    async (t) => {
      if (!rt.caps.tiers.includes(tier)) {
        t.skip(`tier ${tier} not offered here`);
        return;
      }
      for (const c of cases) {
        const host = structured(c.dims, 3, c.dtype);
        const cpuMap = spargeBlockMap(host.q, host.k, {
          blockQ: c.opts.blockQ,
          blockK: c.opts.blockK,
          layout: c.opts.layout,
          smoothK: c.opts.smoothK,
          simThreshold: c.opts.simThreshold,
          cdfThreshold: c.opts.cdfThreshold,
          cdfRule: c.opts.cdfRule,
          topk: c.opts.topk,
          causal: c.opts.causal,
          attentionSink: c.opts.attentionSink,
        });
        const [q, k, v] = [host.q, host.k, host.v].map((t) => upload(rt, t)) as GpuTensor[];
        const res = await spargeAttention(q, k, v, {
          ...c.opts,
          tier,
          returnStats: true,
          returnLse: true,
        });
        assert.deepEqual(Array.from(res.blockMap.data), Array.from(cpuMap.map.data), `${c.name}: block map`);
        assert.deepEqual(res.blockMap.shape, cpuMap.map.shape);
        assert.ok(Math.abs(res.stats.map.density - cpuMap.stats.density) < 1e-12, `${c.name}: density`);
        assert.equal(res.stats.map.qSimilar, cpuMap.stats.qSimilar, `${c.name}: qSimilar`);
        assert.equal(res.stats.map.kSimilar, cpuMap.stats.kSimilar, `${c.name}: kSimilar`);
        const out = await download(res.out);
        const cpu = spargeAttention(host.q, host.k, host.v, {
          ...c.opts,
          returnStats: false,
          returnLse: false,
        });
        assert.ok(!out.data.some(Number.isNaN));
        const err = metrics.relL1(out, cpu);
        assert.ok(
          err < (c.dtype || tier !== 'f32' ? 2e-3 : 1e-5),
          `${c.name} [${tier}]: GPU vs CPU relative L1 ${err}`,
        );
        for (const x of [q, k, v, res.out, res.lse as GpuTensor]) x.destroy();
        res.stats.kernel.pvCounts?.destroy();
      }
    },
  );
}

test('GPU SpargeAttn without stats returns GPU tensors; token orders are host-only', { skip }, async () => {
  const host = {
    q: randn([1, 1, 64, 8], { seed: 1 }),
    k: randn([1, 1, 64, 8], { seed: 2 }),
    v: randn([1, 1, 64, 8], { seed: 3 }),
  };
  const [q, k, v] = [host.q, host.k, host.v].map((t) => upload(rt, t));
  const out = (await spargeAttention(q, k, v, { blockQ: 16, blockK: 16, tier: 'f32' })) as GpuTensor;
  assert.deepEqual(out.shape, [1, 1, 64, 8]);
  const cpu = spargeAttention(host.q, host.k, host.v, { blockQ: 16, blockK: 16 });
  assert.ok(metrics.relL1(await download(out), cpu) < 1e-5);
  await assert.rejects(
    () => spargeAttention(q, k, v, { tokenOrder: hilbertOrder3d(4, 4, 4) }),
    UnsupportedOptionError,
  );
  for (const t of [q, k, v, out]) t.destroy();
});

test(
  'GPU SpargeAttn with Sage quantization (sage1, sage2) equals the CPU SpargeAttn with the same quantization',
  { skip },
  async () => {
    const dims: CaseDims = { batch: 1, headsQ: 2, tokensQ: 256, headDim: 64 };
    const host = structured(dims, 5);
    const [q, k, v] = [host.q, host.k, host.v].map((t) => upload(rt, t)) as GpuTensor[];
    // the key tile the GPU kernels step by, from the float plan of the same shape (stage 2 decides per tile)
    const probe = planBlockSparseGpu(
      q,
      k,
      v,
      denseLayout({ batch: 1, heads: 2, nq: 256, nk: 256, blockQ: 64, blockK: 32 }),
    );
    const tileK = probe.tileK;
    probe.destroyTemporaries();
    for (const t of [probe.out, probe.lse]) t.destroy();
    for (const preset of ['sage1', 'sage2'] as const) {
      const opts = { blockQ: 64, blockK: 32 } as const;
      const res = await spargeAttention(q, k, v, { ...opts, sage: preset, returnStats: true });
      const out = await download(res.out);
      const cpu = spargeAttention(host.q, host.k, host.v, {
        ...opts,
        sage: { preset, pvAccum: 'fp32' },
        tileK,
      });
      const err = metrics.relL1(out, cpu);
      assert.ok(err < 2e-3, `${preset}: GPU vs CPU relative L1 ${err}`);
      const float = spargeAttention(host.q, host.k, host.v, opts);
      assert.ok(metrics.relL1(out, float) > 1e-4, `${preset}: no trace of quantization`);
      res.out.destroy();
      res.stats.kernel.pvCounts?.destroy();
    }
    for (const t of [q, k, v]) t.destroy();
  },
);
