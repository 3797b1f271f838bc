import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor } from '../../../src/core/tensor.js';
import { Rng } from '../../../src/core/rng.js';
import { layoutDims, type Layout } from '../../../src/core/layout.js';
import { type GpuTensor, download, upload } from '../../../src/gpu/gpu-tensor.js';
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

/**
 * SageAttention3's kernel step on the GPU against the CPU kernel on the same quantized operands:
 * NVFP4 / MXFP4 Q and K (decoded to f16 with their scales), ΔS from Q smoothing, P̃ in NVFP4 (two-level
 * and direct, per 16 keys of each 32-key tile) or E4M3, V in NVFP4 (groups of 16 tokens, decoded while
 * staging) or f16, causal and not, GQA with Nq ≠ Nk (partial key tiles and V groups). The CPU steps
 * its online softmax at the GPU kernel's key tile (plan.tileK). The GPU's logits and exp2 are f32 where
 * the CPU's are float64, so P̃ codes can flip where a value sits on a rounding boundary: agreement is to
 * float rounding on the scalar tiers, and to f16 rounding of P on the tensor-core tier (P is moved into
 * O's lazily rescaled frame there).
 */
test(
  'FP4 Q/K, ΔS and NVFP4 P/V kernel equals the CPU SageAttention kernel on every tier',
  { skip },
  async () => {
    const { quantizeQK } = await import('../../../src/attention/sage/quantize-qk.js');
    const { quantizeV } = await import('../../../src/attention/sage/quantize-v.js');
    const { sageKernelCpu } = await import('../../../src/attention/sage/kernel-cpu.js');
    const { runPlanOnce } = await import('../../../src/attention/dense-gpu.js');
    const { randn: rn } = await import('../../../src/core/tensor.js');
    const configs = [
      { qk: { kind: 'nvfp4' }, pFormat: 'nvfp4', pScaling: 'two-level', smoothQ: true, causal: false },
      { qk: { kind: 'nvfp4' }, pFormat: 'nvfp4', pScaling: 'direct', smoothQ: false, causal: true },
      { qk: { kind: 'mxfp4' }, pFormat: 'float8_e4m3fn', pScaling: 'two-level', smoothQ: true, causal: true },
      {
        qk: { kind: 'mxfp4', scaleRule: 'ocp' },
        pFormat: 'fp16',
        pScaling: 'two-level',
        smoothQ: false,
        causal: false,
      },
      {
        qk: { kind: 'int8', granularity: 'per-thread' },
        pFormat: 'nvfp4',
        pScaling: 'two-level',
        smoothQ: true,
        causal: false,
      },
    ] as const;
    const [B, H, Hkv, Nq, Nk, D] = [1, 4, 2, 100, 150, 64];
    for (const [i, cfg] of configs.entries()) {
      const q = rn([B, H, Nq, D], { seed: 70 + i });
      const kData = (rn([B, Hkv, Nk, D], { seed: 80 + i }).data as Float32Array).map(
        (x, j) => x + 2 * ((j % D) % 3),
      );
      const k = tensor(kData, [B, Hkv, Nk, D], 'float32');
      const v = rn([B, Hkv, Nk, D], { seed: 90 + i });
      const qk = quantizeQK(q, k, { quant: cfg.qk, smoothQ: cfg.smoothQ, blockQ: 64 });
      const vFormat = cfg.pFormat === 'nvfp4' ? 'nvfp4' : cfg.pFormat === 'fp16' ? 'fp16' : 'float8_e4m3fn';
      const vq = quantizeV(v, { format: vFormat });
      const fp4 = cfg.qk.kind !== 'int8';
      for (const tier of rt.caps.tiers) {
        const vOperand =
          vFormat === 'fp16'
            ? upload(rt, v)
            : { codes: upload(rt, vq.codes), scales: upload(rt, vq.scales), mean: upload(rt, vq.vMean) };
        const plan = planSageKernelGpu(
          { codes: upload(rt, qk.q.codes), scales: upload(rt, qk.q.scales) },
          { codes: upload(rt, qk.k.codes), scales: upload(rt, qk.k.scales) },
          vOperand,
          {
            qkFormat: fp4 ? (cfg.qk.kind as 'nvfp4' | 'mxfp4') : 'int8',
            pFormat: cfg.pFormat,
            pScaling: cfg.pScaling,
            deltaS: qk.deltaS ? upload(rt, qk.deltaS) : undefined,
            blockQ: 64,
            causal: cfg.causal,
            tier,
            returnLse: true,
          },
        );
        const cpu = sageKernelCpu(qk, vq, {
          pFormat: cfg.pFormat,
          pScaling: cfg.pScaling,
          pvAccum: 'fp32',
          causal: cfg.causal,
          tileK: plan.tileK,
          returnLse: true,
          q,
        });
        const res = runPlanOnce(plan) as { out: GpuTensor; lse: GpuTensor };
        const out = await download(res.out);
        const lse = (await download(res.lse)).data as Float32Array;
        const err = metrics.relL1(out, cpu.out);
        const tol = tier === 'subgroup-matrix' ? 2e-3 : cfg.pFormat === 'nvfp4' ? 2e-5 : 5e-4;
        assert.ok(err < tol, `${JSON.stringify(cfg)} [${tier}]: relative L1 ${err}`);
        // the kernel's LSE lacks the smoothK term σ·(q·k̄), which the pipeline adds (sage-attention-gpu.ts)
        const kernelLse = Float32Array.from(cpu.lse.data as Float32Array);
        const kMean = qk.kMean.data as Float32Array;
        for (let h = 0; h < H; h++)
          for (let n = 0; n < Nq; n++) {
            let dot = 0;
            for (let d = 0; d < D; d++)
              dot += (q.data as Float32Array)[(h * Nq + n) * D + d] * kMean[Math.floor(h / 2) * D + d];
            kernelLse[h * Nq + n] -= dot / Math.sqrt(D);
          }
        const lerr = metrics.relL1(lse, kernelLse);
        assert.ok(lerr < 1e-5, `${JSON.stringify(cfg)} [${tier}]: LSE relative L1 ${lerr}`);
      }
    }
  },
);

/**
 * The sage3 kernel's speed variants compute the same thing: NVFP4 V decoded once per call or while
 * staging (the same exact f16 values), ΔS staged per key tile in workgroup memory or read from storage
 * in the softmax, and NVFP4 Q/K's unit token factors multiplied or skipped (tensor-core tier). The
 * default (once, workgroup, skipped) must equal each baseline on every tier: bit for bit where only
 * the operand path differs, and to f32 rounding of the logit (FMA contraction) where the factor
 * multiply goes.
 */
test('sage3 kernel variants (V decode, ΔS staging, unit factors) agree on every tier', { skip }, async () => {
  const { quantizeQK } = await import('../../../src/attention/sage/quantize-qk.js');
  const { quantizeV } = await import('../../../src/attention/sage/quantize-v.js');
  const { runPlanOnce } = await import('../../../src/attention/dense-gpu.js');
  const { randn: rn } = await import('../../../src/core/tensor.js');
  const [B, H, Hkv, Nq, Nk, D] = [1, 4, 2, 100, 150, 64];
  const q = rn([B, H, Nq, D], { seed: 71 });
  const k = rn([B, Hkv, Nk, D], { seed: 81 });
  const v = rn([B, Hkv, Nk, D], { seed: 91 });
  const qk = quantizeQK(q, k, { quant: { kind: 'nvfp4' }, smoothQ: true, blockQ: 64 });
  const vq = quantizeV(v, { format: 'nvfp4' });
  const ops = {
    q: { codes: upload(rt, qk.q.codes), scales: upload(rt, qk.q.scales) },
    k: { codes: upload(rt, qk.k.codes), scales: upload(rt, qk.k.scales) },
    v: { codes: upload(rt, vq.codes), scales: upload(rt, vq.scales), mean: upload(rt, vq.vMean) },
    deltaS: upload(rt, qk.deltaS!),
  };
  for (const tier of rt.caps.tiers)
    for (const causal of [false, true]) {
      const run = async (extra: Record<string, unknown>) => {
        const plan = planSageKernelGpu(ops.q, ops.k, ops.v, {
          qkFormat: 'nvfp4',
          pFormat: 'nvfp4',
          deltaS: ops.deltaS,
          blockQ: 64,
          causal,
          tier,
          ...extra,
        });
        return (await download(runPlanOnce(plan) as GpuTensor)).data as Float32Array;
      };
      const base = await run({});
      const variants: [string, Record<string, unknown>][] = [
        ['vDecode staging', { vDecode: 'staging' }],
        ['ΔS from storage', { mma: { deltaSStaging: 'global' } }],
        ['factors multiplied', { mma: { qkScales: true } }],
        ['all baselines', { vDecode: 'staging', mma: { deltaSStaging: 'global', qkScales: true } }],
      ];
      for (const [name, extra] of variants) {
        const other = await run(extra);
        const exact = base.every((x, i) => Object.is(x, other[i]));
        const label = `${name} [${tier}${causal ? ', causal' : ''}]`;
        if (tier !== 'subgroup-matrix') assert.ok(exact, `${label}: differs from the default`);
        else
          assert.ok(metrics.relL1(base, other) < 1e-6, `${label}: relative L1 ${metrics.relL1(base, other)}`);
      }
    }
});

test('FP4 kernel operands are checked: codes, scales, ΔS and the P/V pairing', { skip }, () => {
  const c = new Tensor(new Uint8Array(2 * 40 * 32), [1, 2, 40, 32], 'float4_e2m1fn');
  const s16 = tensor(new Float32Array(2 * 40 * 2), [1, 2, 40, 2], 'float32');
  const s32 = tensor(new Float32Array(2 * 40), [1, 2, 40, 1], 'float32');
  const q = { codes: upload(rt, c), scales: upload(rt, s16) };
  const v = upload(rt, tensor(new Float32Array(2 * 40 * 32), [1, 2, 40, 32], 'float16'));
  const vq = {
    codes: upload(rt, c),
    scales: upload(rt, tensor(new Float32Array(2 * 3 * 32), [1, 2, 3, 32], 'float32')),
  };
  // FP4 codes without qkFormat, NVFP4 scales read as MXFP4, INT8 codes as FP4
  assert.throws(() => planSageKernelGpu(q, q, v), DTypeError);
  assert.throws(() => planSageKernelGpu(q, q, v, { qkFormat: 'mxfp4' }), ShapeError);
  assert.doesNotThrow(() =>
    planSageKernelGpu({ ...q, scales: upload(rt, s32) }, { ...q, scales: upload(rt, s32) }, v, {
      qkFormat: 'mxfp4',
    }).destroyTemporaries(),
  );
  const i8 = {
    codes: upload(rt, new Tensor(new Int8Array(2 * 40 * 32), [1, 2, 40, 32], 'int8')),
    scales: q.scales,
  };
  assert.throws(() => planSageKernelGpu(i8, i8, v, { qkFormat: 'nvfp4' }), DTypeError);
  // NVFP4 P needs NVFP4 V and the reverse; 'direct' needs NVFP4 P; ΔS of the wrong shape
  assert.throws(
    () => planSageKernelGpu(q, q, v, { qkFormat: 'nvfp4', pFormat: 'nvfp4' }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => planSageKernelGpu(q, q, vq, { qkFormat: 'nvfp4', pFormat: 'float8_e4m3fn' }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => planSageKernelGpu(q, q, v, { qkFormat: 'nvfp4', pScaling: 'direct' }),
    UnsupportedOptionError,
  );
  const ds = upload(rt, tensor(new Float32Array(2 * 40), [1, 2, 1, 40], 'float32'));
  assert.throws(
    () => planSageKernelGpu(q, q, vq, { qkFormat: 'nvfp4', pFormat: 'nvfp4', deltaS: ds, blockQ: 32 }),
    ShapeError,
  );
  assert.doesNotThrow(() =>
    planSageKernelGpu(q, q, vq, {
      qkFormat: 'nvfp4',
      pFormat: 'nvfp4',
      deltaS: ds,
      blockQ: 64,
    }).destroyTemporaries(),
  );
});
