import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor } from '../../../src/core/tensor.js';
import { Rng } from '../../../src/core/rng.js';
import { layoutDims, type Layout } from '../../../src/core/layout.js';
import { download, upload } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import type { GpuTier } from '../../../src/gpu/capabilities.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import { planSageKernelGpu, sageKernelGpu, scaleGroupRules } from '../../../src/attention/sage/kernel-gpu.js';
import type { QKGranularity } from '../../../src/quant/types.js';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { testGpu, adapterLabel } from '../../gpu/harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

const TILES = { blockQ: 128, warpQ: 32, blockK: 64, warpK: 64 };

interface Case {
  name: string;
  batch: number;
  headsQ: number;
  headsKv: number;
  tokensQ: number;
  tokensKv: number;
  headDim: number;
  layout: Layout;
  granularity: QKGranularity;
  causal?: boolean;
}

/** Random int8 codes and positive scales, and the float64 values they stand for. */
function int8Inputs(c: Case, seed: number) {
  const rng = Rng.fromSeed(seed);
  const shape = (h: number, n: number) =>
    c.layout === 'HND' ? [c.batch, h, n, c.headDim] : [c.batch, n, h, c.headDim];
  const codes = (h: number, n: number) => {
    const s = shape(h, n);
    const data = new Int8Array(s.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (rng.nextUint32() % 255) - 127;
    return new Tensor(data, s, 'int8');
  };
  const rules = scaleGroupRules(c.granularity, c.tokensQ, c.tokensKv, TILES);
  const scales = (h: number, groups: number) => {
    const data = new Float32Array(c.batch * h * groups);
    for (let i = 0; i < data.length; i++) data[i] = (0.5 + rng.uniform()) / 127;
    return new Tensor(data, [c.batch, h, groups], 'float32');
  };
  const qc = codes(c.headsQ, c.tokensQ);
  const kc = codes(c.headsKv, c.tokensKv);
  const qs = scales(c.headsQ, rules.q.groups);
  const ks = scales(c.headsKv, rules.k.groups);
  const v = tensor(
    Float32Array.from({ length: shape(c.headsKv, c.tokensKv).reduce((a, b) => a * b, 1) }, () =>
      rng.normal(),
    ),
    shape(c.headsKv, c.tokensKv),
    'float16',
  );
  // dequantized values: x = code · scale(group of its token); the per-block Q scales fold σ·log2e in
  const smScale = 1 / Math.sqrt(c.headDim);
  const fold = c.granularity === 'per-block' ? smScale * Math.LOG2E : 1;
  const dequant = (
    t: Tensor,
    s: Tensor,
    rule: { div: number; mul: number; mod8Div: number; groups: number },
    divide: number,
  ) => {
    const d = layoutDims(t.shape, c.layout);
    const out = new Float64Array(t.size);
    for (let b = 0; b < d.batch; b++)
      for (let h = 0; h < d.heads; h++)
        for (let n = 0; n < d.tokens; n++) {
          const g =
            Math.floor(n / rule.div) * rule.mul + (rule.mod8Div > 0 ? Math.floor((n % 8) / rule.mod8Div) : 0);
          const scale = (s.data as Float32Array)[(b * d.heads + h) * rule.groups + g] / divide;
          const base =
            c.layout === 'HND'
              ? ((b * d.heads + h) * d.tokens + n) * d.headDim
              : ((b * d.tokens + n) * d.heads + h) * d.headDim;
          for (let i = 0; i < d.headDim; i++) out[base + i] = t.data[base + i] * scale;
        }
    return new Tensor(out, t.shape, 'float64');
  };
  return {
    qc,
    kc,
    qs,
    ks,
    v,
    q64: dequant(qc, qs, rules.q, fold),
    k64: dequant(kc, ks, rules.k, 1),
  };
}

const CASES: Case[] = [
  {
    name: 'per-thread D64 N200',
    batch: 1,
    headsQ: 2,
    headsKv: 2,
    tokensQ: 200,
    tokensKv: 200,
    headDim: 64,
    layout: 'HND',
    granularity: 'per-thread',
  },
  {
    name: 'per-block D128 causal',
    batch: 1,
    headsQ: 2,
    headsKv: 1,
    tokensQ: 150,
    tokensKv: 150,
    headDim: 128,
    layout: 'HND',
    granularity: 'per-block',
    causal: true,
  },
  {
    name: 'per-warp NHD GQA Nq≠Nk',
    batch: 2,
    headsQ: 4,
    headsKv: 2,
    tokensQ: 70,
    tokensKv: 130,
    headDim: 64,
    layout: 'NHD',
    granularity: 'per-warp',
  },
  {
    name: 'per-token D32 N33',
    batch: 1,
    headsQ: 1,
    headsKv: 1,
    tokensQ: 33,
    tokensKv: 33,
    headDim: 32,
    layout: 'HND',
    granularity: 'per-token',
  },
];

for (const tier of ['f16', 'f32', 'subgroup-matrix'] as GpuTier[]) {
  test(
    `INT8 Q/K kernel on the ${tier} tier equals attention of the dequantized values`,
    { skip },
    async (t) => {
      if (!rt.caps.tiers.includes(tier)) {
        t.skip(`tier ${tier} not offered by ${adapterLabel(rt)}`);
        return;
      }
      for (const [i, c] of CASES.entries()) {
        if (tier === 'subgroup-matrix' && c.headDim % 32 !== 0) continue;
        const x = int8Inputs(c, 100 + i);
        const opts = { layout: c.layout, causal: c.causal ?? false, granularity: c.granularity, tier };
        const res = sageKernelGpu(
          { codes: upload(rt, x.qc), scales: upload(rt, x.qs) },
          { codes: upload(rt, x.kc), scales: upload(rt, x.ks) },
          upload(rt, x.v),
          { ...opts, returnLse: true },
        );
        const out = await download(res.out);
        const lse = await download(res.lse);
        const v64 = new Tensor(x.v.toFloat64(), x.v.shape, 'float64');
        const ref = attentionReference(x.q64, x.k64, v64, {
          layout: c.layout,
          causal: c.causal ?? false,
          returnLse: true,
        });
        const err = metrics.relL1(out, ref.out);
        // S is exact (int32) times f32 scales; P and V are f16 on the f16 and tensor-core tiers
        const tol = tier === 'f32' ? 1e-5 : 2e-3;
        assert.ok(err < tol, `${c.name} [${tier}]: relative L1 ${err}`);
        const lerr = metrics.relL1(lse, ref.lse);
        assert.ok(lerr < 1e-5, `${c.name} [${tier}]: LSE relative L1 ${lerr}`);
      }
    },
  );
}

test('INT8 Q/K kernel rejects bad operands with typed errors', { skip }, () => {
  const c = CASES[0];
  const x = int8Inputs(c, 7);
  const q = { codes: upload(rt, x.qc), scales: upload(rt, x.qs) };
  const k = { codes: upload(rt, x.kc), scales: upload(rt, x.ks) };
  const v = upload(rt, x.v);
  assert.throws(() => planSageKernelGpu(q, k, v, { granularity: 'per-block' }), ShapeError); // scales shaped per-thread
  assert.throws(() => planSageKernelGpu({ codes: v, scales: q.scales }, k, v), DTypeError);
  assert.throws(() => planSageKernelGpu(q, k, v, { warpQ: 12 }), UnsupportedOptionError);
  assert.throws(
    () => planSageKernelGpu(q, k, v, { granularity: 'per-row' as never }),
    UnsupportedOptionError,
  );
});

/**
 * The GPU kernel against sparq's CPU SageAttention kernel on the same quantized operands, with the
 * CPU stepping its online softmax every 32 keys as the GPU kernels do: INT8 Q/K of each granularity,
 * P in fp16 / E4M3 / E5M2 / INT8, V in fp16 or per-channel FP8/INT8 codes, with and without V
 * smoothing. The GPU accumulates PV in f32 where the CPU models the reference accumulators (FP22,
 * fp16) and its exp2 is approximate, so the two agree to float rounding, not bit for bit.
 */
test('INT8 Q/K kernel with quantized P and V equals the CPU SageAttention kernel', { skip }, async () => {
  const { quantizeQK } = await import('../../../src/attention/sage/quantize-qk.js');
  const { quantizeV } = await import('../../../src/attention/sage/quantize-v.js');
  const { sageKernelCpu } = await import('../../../src/attention/sage/kernel-cpu.js');
  const { randn: rn } = await import('../../../src/core/tensor.js');
  const configs = [
    {
      granularity: 'per-thread',
      pFormat: 'float8_e4m3fn',
      vFormat: 'float8_e4m3fn',
      smoothV: false,
      pvAccum: 'fp32+fp22',
    },
    { granularity: 'per-block', pFormat: 'fp16', vFormat: 'fp16', smoothV: false, pvAccum: 'fp32+fp16' },
    {
      granularity: 'per-warp',
      pFormat: 'float8_e5m2',
      vFormat: 'float8_e5m2',
      smoothV: true,
      pvAccum: 'fp32',
    },
    { granularity: 'per-token', pFormat: 'int8', vFormat: 'int8', smoothV: false, pvAccum: 'fp32' },
  ] as const;
  for (const [i, cfg] of configs.entries()) {
    const [B, H, N, D] = [1, 2, 160, 64];
    const q = rn([B, H, N, D], { seed: 40 + i });
    const k = rn([B, H, N, D], { seed: 50 + i });
    const vData = (rn([B, H, N, D], { seed: 60 + i }).data as Float32Array).map((x, j) => x + ((j % D) % 4));
    const v = tensor(vData, [B, H, N, D], 'float32');
    const qk = quantizeQK(q, k, { quant: { kind: 'int8', granularity: cfg.granularity } });
    const vq = quantizeV(v, { format: cfg.vFormat, smoothV: cfg.smoothV });
    const causal = i % 2 === 1;
    // the WebGPU kernels advance the running max (and the PV block) every 32 keys
    const cpu = sageKernelCpu(qk, vq, { pFormat: cfg.pFormat, pvAccum: cfg.pvAccum, causal, tileK: 32 });
    for (const tier of rt.caps.tiers) {
      if (tier === 'subgroup-matrix' && D % 32 !== 0) continue;
      const vOperand =
        cfg.vFormat === 'fp16'
          ? upload(rt, vq.codes)
          : { codes: upload(rt, vq.codes), scales: upload(rt, vq.scales), mean: upload(rt, vq.vMean) };
      const out = await download(
        sageKernelGpu(
          { codes: upload(rt, qk.q.codes), scales: upload(rt, qk.q.scales) },
          { codes: upload(rt, qk.k.codes), scales: upload(rt, qk.k.scales) },
          vOperand,
          { granularity: cfg.granularity, pFormat: cfg.pFormat, causal, tier },
        ),
      );
      const err = metrics.relL1(out, cpu);
      const cos = metrics.cosine(out, cpu);
      // fp16 P rounds against a different (lazily moved) reference max on the GPU: f16 rounding apart
      assert.ok(
        err < 1e-3 && cos > 0.999999,
        `${JSON.stringify(cfg)} [${tier}]: relative L1 ${err}, cosine ${cos}`,
      );
    }
  }
});
