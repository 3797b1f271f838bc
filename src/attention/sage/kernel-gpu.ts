/**
 * The SageAttention kernel step on WebGPU: attention from already-quantized Q, K and V (codes plus
 * scales in the reference layouts) on the same flash kernels as dense attention.
 * - INT8/INT4 Q and K (SA1 §4, SA2 §3): S = S_int32·δ_Q(row)·δ_K(col), times σ·log2e unless the Q
 *   scales fold it in (per-block Q, sageattention.md §2).
 * - NVFP4/MXFP4 Q and K (SA3 §3; §7.1–7.2): the codes are decoded to f16 with their group scales
 *   (exact, sage/fp4-operand-gpu.ts), so S = Q̂·K̂ᵀ·σ·log2e sums the CPU kernel's per-group terms;
 *   MXFP4's per-token powers of two multiply the logits as INT8 scales do.
 * - ΔS (Q smoothing, SA2 Eq. 2, SA3 Alg. 1 line 8) is added to each logit times σ·log2e.
 * - P̃ in fp16, E4M3, E5M2, INT8 (static ranges) or NVFP4 (two-level or direct, per 16 keys from each
 *   key tile's first key, SA3 §3.2); V as f16 values, FP8/INT8 codes with per-channel scales decoded
 *   to f16 (exactly) while staging, or NVFP4 codes with scales per 16 tokens, decoded to f16 (exactly)
 *   once per call by default (`vDecode`). PV accumulates in f32.
 * - NVFP4 Q/K decoded to f16 have token factors of 1, so the tensor-core kernel skips their per-element
 *   multiplies (dense-gpu.ts `unitFactors`); ΔS is staged per key tile in workgroup memory
 *   (flash-wgsl-mma.ts `deltaSStaging`).
 * The result is the kernel's: smoothing corrections (the LSE's σ·q·k̄ term, §6.4) are the caller's.
 *
 * Tiers: 'subgroup-matrix' (i8×i8→i32 16×16×32 for INT8 Q/K, f16×f16→f32 16×16×16 for the rest, head
 * dims that are multiples of 32), else the scalar kernel with `dot4I8Packed` for INT8 (or its exact
 * emulation where WGSL lacks packed_4x8_integer_dot_product) and f32 products of the decoded FP4.
 */
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { formatShape } from '../../core/tensor.js';
import { hasSubgroupMatrix, type GpuTier } from '../../gpu/capabilities.js';
import { emptyFloat16Like, recordCastToFloat16 } from '../../gpu/cast.js';
import type { GpuTensor } from '../../gpu/gpu-tensor.js';
import { NVFP4_GROUP_SIZE } from '../../quant/nvfp4.js';
import type { QKGranularity } from '../../quant/types.js';
import {
  buildFlashPlan,
  runPlanOnce,
  type FlashVariant,
  type GpuAttentionOptions,
  type GpuAttentionPlan,
} from '../dense-gpu.js';
import { layoutStrides, type ScaleGroupRule } from '../flash-params.js';
import { scalarBlockK } from '../flash-wgsl-scalar.js';
import { type AttentionOptions, type AttentionWithLse, resolveAttentionProblem } from '../options.js';
import {
  planDecodeFp4Gpu,
  planDecodeFp4VGpu,
  type Fp4DecodePlan,
  type Fp4VDecodePlan,
} from './fp4-operand-gpu.js';
import { P_SCALINGS, type PScaling } from './p-quant.js';

/**
 * Q or K for the kernel: int8/int4 codes with group scales [B, H, groups] (quantizeQK's int layouts),
 * or float4_e2m1fn codes with microscale scales [B, H, N, ⌈D/16⌉] / [B, H, N, ⌈D/32⌉] (`qkFormat`).
 */
export interface QKOperand {
  codes: GpuTensor;
  scales: GpuTensor;
}

/** The INT8 Q/K operand (kept as a name for callers that only pass INT8 codes). */
export type Int8Operand = QKOperand;

/**
 * V for the kernel: float16/float32 values, or codes with their scales and, after smoothing, the
 * token mean [B, Hkv, D] (quantizeV's output): one-byte codes (float8_e4m3fn, float8_e5m2, int8) with
 * per-channel scales [B, Hkv, D], or float4_e2m1fn codes with NVFP4 scales [B, Hkv, ⌈Nk/16⌉, D].
 */
export type VOperand = GpuTensor | { codes: GpuTensor; scales?: GpuTensor; mean?: GpuTensor };

/** P̃ formats the GPU kernels round to (p-quant.ts). */
export const GPU_P_FORMATS = ['fp16', 'float8_e4m3fn', 'float8_e5m2', 'int8', 'nvfp4'] as const;

export interface SageKernelGpuOptions extends AttentionOptions {
  /** P̃'s format before PV (default 'fp16'; p-quant.ts). */
  pFormat?: (typeof GPU_P_FORMATS)[number];
  /** NVFP4 P̃'s scaling (default 'two-level', SA3 §3.2; 'direct' is SA3 Table 1b's ablation). */
  pScaling?: PScaling;
  /**
   * What Q's and K's codes are (default 'int8', which also takes int4 codes): 'nvfp4' or 'mxfp4' for
   * float4_e2m1fn codes with their microscale scales (quantizeQK's nvfp4 / mxfp4 output).
   */
  qkFormat?: 'int8' | 'nvfp4' | 'mxfp4';
  /**
   * ΔS [B, Hq, ⌈Nq/blockQ⌉, Nk] float32 from Q smoothing (quantizeQK's deltaS), in q·k units; blockQ
   * is its smoothing block.
   */
  deltaS?: GpuTensor;
  /** Scale granularity the INT8 codes were quantized with (default 'per-thread', SA2). */
  granularity?: QKGranularity;
  /** Reference tile sizes that define the scale groups (defaults 128, 32, 64, 64: sm80/sm89). */
  blockQ?: number;
  warpQ?: number;
  blockK?: number;
  warpK?: number;
  /** Whether the Q scales already hold σ·log2e (default: true for 'per-block', as its quantizer does). */
  qScalesFoldSmScale?: boolean;
  tier?: GpuAttentionOptions['tier'];
  mma?: GpuAttentionOptions['mma'];
  /**
   * When NVFP4 V is decoded to f16 (default 'once'): 'once' per call before the kernel
   * (fp4-operand-gpu.ts planDecodeFp4VGpu), so the kernel stages f16 V as dense attention does;
   * 'staging' in every workgroup while it stages each key tile (codes and 16-token scales loaded and
   * multiplied ⌈Nq/tileQ⌉ times). The values are the same bit for bit; 'staging' is kept for A/B
   * benchmarks and saves the 2-byte-per-element buffer.
   */
  vDecode?: 'once' | 'staging';
}

const EXTRA_KEYS = [
  'pFormat',
  'pScaling',
  'qkFormat',
  'deltaS',
  'granularity',
  'blockQ',
  'warpQ',
  'blockK',
  'warpK',
  'qScalesFoldSmScale',
  'tier',
  'mma',
  'vDecode',
];

/** The token → scale-group rules of Q and K for a granularity (sageattention.md §3.2, §4.2). */
export function scaleGroupRules(
  granularity: QKGranularity,
  tokensQ: number,
  tokensKv: number,
  t: { blockQ: number; warpQ: number; blockK: number; warpK: number },
): { q: ScaleGroupRule; k: ScaleGroupRule } {
  const qBlocks = Math.ceil(tokensQ / t.blockQ);
  const kBlocks = Math.ceil(tokensKv / t.blockK);
  const kPerBlock = { div: t.blockK, mul: 1, mod8Div: 0, groups: kBlocks };
  switch (granularity) {
    case 'per-block':
      return { q: { div: t.blockQ, mul: 1, mod8Div: 0, groups: qBlocks }, k: kPerBlock };
    case 'per-warp':
      // K stays per block: WARP_K = CTA_K in the reference kernels (#232)
      return {
        q: { div: t.warpQ, mul: 1, mod8Div: 0, groups: qBlocks * (t.blockQ / t.warpQ) },
        k: kPerBlock,
      };
    case 'per-thread':
      return {
        q: { div: t.warpQ, mul: 8, mod8Div: 1, groups: qBlocks * (t.blockQ / t.warpQ) * 8 },
        k: { div: t.warpK, mul: 4, mod8Div: 2, groups: kBlocks * (t.blockK / t.warpK) * 4 },
      };
    case 'per-token':
      return {
        q: { div: 1, mul: 1, mod8Div: 0, groups: tokensQ },
        k: { div: 1, mul: 1, mod8Div: 0, groups: tokensKv },
      };
  }
}

function positiveInt(x: unknown, name: string, fallback: number): number {
  const v = x ?? fallback;
  if (!Number.isInteger(v) || (v as number) <= 0) {
    throw new UnsupportedOptionError(`${name} must be a positive integer; got ${JSON.stringify(x)}`);
  }
  return v as number;
}

/**
 * Builds the kernel plan (nothing is submitted; FP4 Q/K are decoded each time the plan is recorded).
 * `variant` swaps in another kernel of the same generators over the same operands (the block-sparse
 * kernels: block-sparse-gpu.ts).
 */
export function planSageKernelGpu(
  q: QKOperand,
  k: QKOperand,
  vOperand: VOperand,
  opts: SageKernelGpuOptions = {},
  variant?: FlashVariant,
): GpuAttentionPlan {
  const v = 'codes' in vOperand ? vOperand.codes : vOperand;
  const vScales = 'codes' in vOperand ? vOperand.scales : undefined;
  const vMean = 'codes' in vOperand ? vOperand.mean : undefined;
  const pFormat = opts.pFormat ?? 'fp16';
  if (!GPU_P_FORMATS.includes(pFormat)) {
    throw new UnsupportedOptionError(
      `pFormat must be one of ${GPU_P_FORMATS.map((f) => `'${f}'`).join(', ')}; got ${JSON.stringify(pFormat)}`,
    );
  }
  const pScaling = opts.pScaling ?? 'two-level';
  if (!P_SCALINGS.includes(pScaling) || (pScaling === 'direct' && pFormat !== 'nvfp4')) {
    throw new UnsupportedOptionError(
      `pScaling must be 'two-level' or 'direct', and 'direct' needs pFormat 'nvfp4' (SA3 Table 1b); got ${JSON.stringify(opts.pScaling)} with pFormat '${pFormat}'`,
    );
  }
  const qkFormat = opts.qkFormat ?? 'int8';
  if (!['int8', 'nvfp4', 'mxfp4'].includes(qkFormat)) {
    throw new UnsupportedOptionError(
      `qkFormat must be 'int8', 'nvfp4' or 'mxfp4'; got ${JSON.stringify(opts.qkFormat)}`,
    );
  }
  const fp4 = qkFormat !== 'int8';
  // validation of shapes and options reads only shape and dtype; codes stand in as float16
  const asFloat = (t: GpuTensor) => ({ shape: t.shape, dtype: 'float16' as const });
  const p = resolveAttentionProblem(asFloat(q.codes), asFloat(k.codes), asFloat(v), opts, EXTRA_KEYS);
  const runtime = q.codes.runtime;
  for (const t of [q.scales, k.codes, k.scales, v, vScales, vMean, opts.deltaS]) {
    if (!t) continue;
    if (t.runtime !== runtime) throw new UnsupportedOptionError('all operands must live on one GPU runtime');
  }
  for (const [name, t] of [
    ['q.codes', q.codes],
    ['k.codes', k.codes],
  ] as const) {
    // int4 codes are stored one per byte like int8 (numerics' layout), so the same kernel multiplies them
    if (fp4 ? t.dtype !== 'float4_e2m1fn' : t.dtype !== 'int8' && t.dtype !== 'int4') {
      throw new DTypeError(
        `${name} must be ${fp4 ? `float4_e2m1fn codes for qkFormat '${qkFormat}'` : "int8 or int4 codes (or pass qkFormat 'nvfp4' / 'mxfp4' for FP4 codes)"}; got ${t.dtype}`,
      );
    }
  }
  const vFp4 = v.dtype === 'float4_e2m1fn';
  const vCodes = vFp4 || ['float8_e4m3fn', 'float8_e5m2', 'int8'].includes(v.dtype);
  if (v.dtype !== 'float16' && v.dtype !== 'float32' && !vCodes) {
    throw new DTypeError(
      `v must be float16/float32 values or float8_e4m3fn/float8_e5m2/int8/float4_e2m1fn codes on the GPU; got ${v.dtype}`,
    );
  }
  const vGroups = [p.batch, p.headsKv, Math.ceil(p.tokensKv / NVFP4_GROUP_SIZE), p.headDim];
  for (const [name, t, shape, what] of [
    [
      'v.scales',
      vScales,
      vFp4 ? vGroups : [p.batch, p.headsKv, p.headDim],
      vFp4 ? 'NVFP4 groups of 16 tokens' : 'per channel',
    ],
    ['v.mean', vMean, [p.batch, p.headsKv, p.headDim], 'per channel'],
  ] as const) {
    if (!t) continue;
    if (t.dtype !== 'float32' || t.shape.join() !== shape.join()) {
      throw new ShapeError(
        `${name} must be float32 ${formatShape(shape)} (${what}); got ${t.dtype} ${formatShape(t.shape)}`,
      );
    }
  }
  if (vCodes && !vScales) {
    throw new UnsupportedOptionError(`V codes (${v.dtype}) need their scales: pass { codes, scales }`);
  }
  if (pFormat === 'nvfp4' ? !vFp4 : vFp4) {
    throw new UnsupportedOptionError(
      `NVFP4 P and NVFP4 V go together (one FP4 MMA, SA3 §3.2); got pFormat '${pFormat}' with V ${v.dtype}`,
    );
  }
  if (p.headDim % 4 !== 0) {
    throw new ShapeError(
      `quantized Q/K need a head dim that is a multiple of 4 on the GPU; got ${p.headDim}. Pad Q and K with zeros.`,
    );
  }
  const granularity = opts.granularity ?? 'per-thread';
  if (!['per-block', 'per-warp', 'per-thread', 'per-token'].includes(granularity)) {
    throw new UnsupportedOptionError(
      `granularity must be 'per-block', 'per-warp', 'per-thread' or 'per-token'; got ${JSON.stringify(granularity)}`,
    );
  }
  const tiles = {
    blockQ: positiveInt(opts.blockQ, 'blockQ', 128),
    warpQ: positiveInt(opts.warpQ, 'warpQ', 32),
    blockK: positiveInt(opts.blockK, 'blockK', 64),
    warpK: positiveInt(opts.warpK, 'warpK', 64),
  };
  if (
    tiles.blockQ % tiles.warpQ !== 0 ||
    tiles.blockK % tiles.warpK !== 0 ||
    tiles.warpQ % 8 ||
    tiles.warpK % 8
  ) {
    throw new UnsupportedOptionError(
      `warpQ must divide blockQ and warpK divide blockK, both multiples of 8; got ${JSON.stringify(tiles)}`,
    );
  }
  if (opts.deltaS) {
    const shape = [p.batch, p.headsQ, Math.ceil(p.tokensQ / tiles.blockQ), p.tokensKv];
    if (opts.deltaS.dtype !== 'float32' || opts.deltaS.shape.join() !== shape.join()) {
      throw new ShapeError(
        `deltaS must be float32 ${formatShape(shape)} (one row per blockQ = ${tiles.blockQ} Q tokens); got ${opts.deltaS.dtype} ${formatShape(opts.deltaS.shape)}`,
      );
    }
    // ΔS is B·Hq·⌈Nq/blockQ⌉·Nk floats, as the reference's delta_s (SA3 §7.3): 1 GiB at B 2, H 16, N 32k
    const max = runtime.caps.limits.maxStorageBufferBindingSize;
    if (opts.deltaS.byteLength > max) {
      throw new ShapeError(
        `deltaS has ${opts.deltaS.byteLength} bytes, above this device's maxStorageBufferBindingSize (${max}); split the batch or heads`,
      );
    }
  }
  // FP4 Q/K: one factor per token (fp4-operand-gpu.ts), so the per-token rule of the INT8 scales
  const rules = fp4
    ? scaleGroupRules('per-token', p.tokensQ, p.tokensKv, tiles)
    : scaleGroupRules(granularity, p.tokensQ, p.tokensKv, tiles);
  // FP4 scales: one per 16 (NVFP4) or 32 (MXFP4) channels of each token
  const fp4Groups = Math.ceil(p.headDim / (qkFormat === 'nvfp4' ? 16 : 32));
  const expect = fp4
    ? ([
        ['q.scales', q.scales, [p.batch, p.headsQ, p.tokensQ, fp4Groups]],
        ['k.scales', k.scales, [p.batch, p.headsKv, p.tokensKv, fp4Groups]],
      ] as const)
    : ([
        ['q.scales', q.scales, [p.batch, p.headsQ, rules.q.groups]],
        ['k.scales', k.scales, [p.batch, p.headsKv, rules.k.groups]],
      ] as const);
  for (const [name, t, shape] of expect) {
    if (t.dtype !== 'float32') throw new DTypeError(`${name} must be float32; got ${t.dtype}`);
    if (t.shape.join() !== shape.join()) {
      throw new ShapeError(
        `${name} for ${fp4 ? qkFormat : granularity} scales must have shape ${formatShape(shape)}; got ${formatShape(t.shape)}`,
      );
    }
  }
  const fold = !fp4 && (opts.qScalesFoldSmScale ?? granularity === 'per-block');
  const caps = runtime.caps;
  const mmaOk =
    caps.tiers.includes('subgroup-matrix') &&
    (fp4 || hasSubgroupMatrix(caps, 'i8', 'i32', 16, 16, 32)) &&
    hasSubgroupMatrix(caps, 'f16', 'f32', 16, 16, 16) &&
    p.headDim % 32 === 0 &&
    p.headDim <= 256;
  let tier: GpuTier;
  if (opts.tier === undefined || opts.tier === 'auto')
    tier = mmaOk ? 'subgroup-matrix' : caps.tiers.includes('f16') ? 'f16' : 'f32';
  else if (!caps.tiers.includes(opts.tier) || (opts.tier === 'subgroup-matrix' && !mmaOk)) {
    throw new UnsupportedOptionError(
      `tier '${opts.tier}' cannot run this SageAttention kernel here (needs ${fp4 ? '' : 'i8 and '}f16 subgroup matrices and a head dim that is a multiple of 32 up to 256); use tier 'auto'`,
    );
  } else tier = opts.tier;

  // NVFP4 P quantizes groups of 16 keys inside one key tile (and, on the tensor-core tier, inside one
  // or two lanes' chunks of it: 48-key tiles would split groups)
  if (pFormat === 'nvfp4') {
    const bk =
      tier === 'subgroup-matrix'
        ? opts.mma?.blockK
        : scalarBlockK(p.headDim, tier === 'f16' ? 2 : 4, caps.limits.maxComputeWorkgroupStorageSize);
    if (bk !== undefined && (bk % 16 !== 0 || bk === 48)) {
      throw new UnsupportedOptionError(
        `NVFP4 P needs key tiles of 16, 32 or 64 keys (16-key groups, SA3 §3.2); this ${tier} kernel would step ${bk} keys` +
          (tier === 'subgroup-matrix'
            ? '. Use mma.blockK 16, 32 or 64.'
            : ` for head dim ${p.headDim}. Use a smaller head dim or another tier.`),
      );
    }
  }
  // FP4 Q/K become f16 operands (with room for the tensor-core tier's 16-row Q loads past the end)
  let decodes: Fp4DecodePlan[] = [];
  let qIn: GpuTensor = q.codes;
  let kIn: GpuTensor = k.codes;
  let qScales = q.scales as GpuTensor<'float32'>;
  let kScales = k.scales as GpuTensor<'float32'>;
  let vIn = v;
  let vScalesIn = vScales as GpuTensor<'float32'> | undefined;
  let castV: GpuTensor<'float16'> | undefined;
  const vDecodeMode = opts.vDecode ?? 'once';
  if (vDecodeMode !== 'once' && vDecodeMode !== 'staging') {
    throw new UnsupportedOptionError(
      `vDecode must be 'once' or 'staging'; got ${JSON.stringify(opts.vDecode)}`,
    );
  }
  let vDecode: Fp4VDecodePlan | undefined;
  if (vFp4 && vScales && vDecodeMode === 'once') {
    vDecode = planDecodeFp4VGpu(
      { codes: v, scales: vScales },
      p.layout,
      tier === 'subgroup-matrix' ? Math.max(512, v.size * 2) : 0,
    );
    vIn = vDecode.values;
    vScalesIn = undefined;
  }
  if (fp4) {
    const qSlack =
      tier === 'subgroup-matrix' ? 15 * layoutStrides(p.layout, p.headsQ, 1, p.headDim).token * 2 : 0;
    const minBytes = (t: GpuTensor, slack: number) =>
      tier === 'subgroup-matrix' ? Math.max(512, t.size * 2 + slack) : 0;
    decodes = [
      planDecodeFp4Gpu(q, qkFormat, p.layout, minBytes(q.codes, qSlack)),
      planDecodeFp4Gpu(k, qkFormat, p.layout, minBytes(k.codes, 0)),
    ];
    [qIn, kIn] = decodes.map((d) => d.values);
    [qScales, kScales] = decodes.map((d) => d.factors);
    // float V meets f16 Q and K in one kernel: the fp16 V the CPU steps use too (quantize-v.ts)
    if (v.dtype === 'float32') {
      castV = emptyFloat16Like(v);
      vIn = castV;
    }
  }
  const prologue = (pass: GPUComputePassEncoder) => {
    for (const d of decodes) d.record(pass);
    vDecode?.record(pass);
    if (castV) recordCastToFloat16(v, castV, pass);
  };
  const plan = buildFlashPlan(
    runtime,
    p,
    tier,
    [qIn, kIn, vIn],
    opts.mma,
    {
      qScales,
      kScales,
      qRule: rules.q,
      kRule: rules.k,
      qFactor: fold ? 1 : p.smScale * Math.LOG2E,
      operands: fp4 ? 'float16' : 'int8',
      unitFactors: qkFormat === 'nvfp4',
      deltaS: opts.deltaS ? { values: opts.deltaS as GpuTensor<'float32'>, blockQ: tiles.blockQ } : undefined,
    },
    {
      pFormat,
      pScaling,
      vScales: vScalesIn,
      vMean: vMean as GpuTensor<'float32'> | undefined,
    },
    variant,
  );
  if (!fp4 && !vDecode) return plan;
  return {
    ...plan,
    record(pass) {
      prologue(pass);
      plan.record(pass);
    },
    // the FP4 decode is part of the kernel step here: its inputs are the quantized codes
    recordKernel(pass) {
      prologue(pass);
      plan.recordKernel(pass);
    },
    destroyTemporaries() {
      plan.destroyTemporaries();
      for (const d of decodes) d.destroy();
      castV?.destroy();
      vDecode?.destroy();
      decodes = [];
      castV = undefined;
      vDecode = undefined;
    },
  };
}

/** Runs the kernel once; returns GPU tensors (float32 output in q's layout, optional LSE). */
export function sageKernelGpu(
  q: Int8Operand,
  k: Int8Operand,
  v: VOperand,
  opts: SageKernelGpuOptions & { returnLse: true },
): AttentionWithLse<GpuTensor<'float32'>>;
export function sageKernelGpu(
  q: Int8Operand,
  k: Int8Operand,
  v: VOperand,
  opts?: SageKernelGpuOptions & { returnLse?: false },
): GpuTensor<'float32'>;
export function sageKernelGpu(
  q: Int8Operand,
  k: Int8Operand,
  v: VOperand,
  opts?: SageKernelGpuOptions,
): GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>>;
export function sageKernelGpu(
  q: Int8Operand,
  k: Int8Operand,
  v: VOperand,
  opts: SageKernelGpuOptions = {},
): GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>> {
  return runPlanOnce(planSageKernelGpu(q, k, v, opts));
}
