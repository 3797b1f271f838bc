/**
 * The SageAttention kernel step on WebGPU: attention from already-quantized INT8 Q and K (codes plus
 * scales in the reference layouts) and float16/float32 V, i.e. SA1's INT8 QKᵀ + FP16 PV
 * (sageattention.md §3) on the same flash kernels as dense attention. S = S_int32·δ_Q(row)·δ_K(col),
 * times σ·log2e unless the Q scales fold it in (per-block Q, §2). PV runs in f16 with f32
 * accumulation. The result is the kernel's: smoothing corrections (the LSE's σ·q·k̄ term, §6.4) are
 * the caller's.
 *
 * Tiers: 'subgroup-matrix' (i8×i8→i32 16×16×32 and f16×f16→f32 16×16×16 subgroup matrices, head dims
 * that are multiples of 32), else the scalar kernel with `dot4I8Packed` (or its exact emulation where
 * WGSL lacks packed_4x8_integer_dot_product).
 */
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { formatShape } from '../../core/tensor.js';
import { hasSubgroupMatrix, type GpuTier } from '../../gpu/capabilities.js';
import type { GpuTensor } from '../../gpu/gpu-tensor.js';
import type { QKGranularity } from '../../quant/types.js';
import {
  buildFlashPlan,
  runPlanOnce,
  type GpuAttentionOptions,
  type GpuAttentionPlan,
} from '../dense-gpu.js';
import type { ScaleGroupRule } from '../flash-params.js';
import { type AttentionOptions, type AttentionWithLse, resolveAttentionProblem } from '../options.js';

export interface Int8Operand {
  codes: GpuTensor;
  scales: GpuTensor;
}

/**
 * V for the kernel: float16/float32 values, or one-byte codes (float8_e4m3fn, float8_e5m2, int8) with
 * per-channel scales [B, Hkv, D] and, after smoothing, the token mean [B, Hkv, D] (quantizeV's output).
 */
export type VOperand = GpuTensor | { codes: GpuTensor; scales?: GpuTensor; mean?: GpuTensor };

export interface SageKernelGpuOptions extends AttentionOptions {
  /** P̃'s format before PV (default 'fp16'; p-quant.ts). NVFP4 P is not on the GPU yet. */
  pFormat?: 'fp16' | 'float8_e4m3fn' | 'float8_e5m2' | 'int8';
  /** Scale granularity the codes were quantized with (default 'per-thread', SA2). */
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
}

const EXTRA_KEYS = [
  'pFormat',
  'granularity',
  'blockQ',
  'warpQ',
  'blockK',
  'warpK',
  'qScalesFoldSmScale',
  'tier',
  'mma',
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

/** Builds the INT8-QK kernel plan (nothing is submitted). */
export function planSageKernelGpu(
  q: Int8Operand,
  k: Int8Operand,
  vOperand: VOperand,
  opts: SageKernelGpuOptions = {},
): GpuAttentionPlan {
  const v = 'codes' in vOperand ? vOperand.codes : vOperand;
  const vScales = 'codes' in vOperand ? vOperand.scales : undefined;
  const vMean = 'codes' in vOperand ? vOperand.mean : undefined;
  const pFormat = opts.pFormat ?? 'fp16';
  if (!['fp16', 'float8_e4m3fn', 'float8_e5m2', 'int8'].includes(pFormat)) {
    throw new UnsupportedOptionError(
      `pFormat on the GPU must be 'fp16', 'float8_e4m3fn', 'float8_e5m2' or 'int8'; got ${JSON.stringify(pFormat)} (NVFP4 P runs on the CPU backend)`,
    );
  }
  // validation of shapes and options reads only shape and dtype; codes stand in as float16
  const asFloat = (t: GpuTensor) => ({ shape: t.shape, dtype: 'float16' as const });
  const p = resolveAttentionProblem(asFloat(q.codes), asFloat(k.codes), asFloat(v), opts, EXTRA_KEYS);
  const runtime = q.codes.runtime;
  for (const t of [q.scales, k.codes, k.scales, v, vScales, vMean]) {
    if (!t) continue;
    if (t.runtime !== runtime) throw new UnsupportedOptionError('all operands must live on one GPU runtime');
  }
  for (const [name, t] of [
    ['q.codes', q.codes],
    ['k.codes', k.codes],
  ] as const) {
    // int4 codes are stored one per byte like int8 (numerics' layout), so the same kernel multiplies them
    if (t.dtype !== 'int8' && t.dtype !== 'int4') {
      throw new DTypeError(`${name} must be int8 or int4 codes; got ${t.dtype}`);
    }
  }
  const vCodes = ['float8_e4m3fn', 'float8_e5m2', 'int8'].includes(v.dtype);
  if (v.dtype !== 'float16' && v.dtype !== 'float32' && !vCodes) {
    throw new DTypeError(
      `v must be float16/float32 values or float8_e4m3fn/float8_e5m2/int8 codes on the GPU; got ${v.dtype}`,
    );
  }
  for (const [name, t] of [
    ['v.scales', vScales],
    ['v.mean', vMean],
  ] as const) {
    if (!t) continue;
    if (t.dtype !== 'float32' || t.shape.join() !== [p.batch, p.headsKv, p.headDim].join()) {
      throw new ShapeError(
        `${name} must be float32 [${p.batch}, ${p.headsKv}, ${p.headDim}] (per channel); got ${t.dtype} ${formatShape(t.shape)}`,
      );
    }
  }
  if (vCodes && !vScales) {
    throw new UnsupportedOptionError(
      `V codes (${v.dtype}) need their per-channel scales: pass { codes, scales }`,
    );
  }
  if (p.headDim % 4 !== 0) {
    throw new ShapeError(
      `INT8 Q/K need a head dim that is a multiple of 4; got ${p.headDim}. Pad Q and K with zeros.`,
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
  const rules = scaleGroupRules(granularity, p.tokensQ, p.tokensKv, tiles);
  const expect = [
    ['q.scales', q.scales, [p.batch, p.headsQ, rules.q.groups]],
    ['k.scales', k.scales, [p.batch, p.headsKv, rules.k.groups]],
  ] as const;
  for (const [name, t, shape] of expect) {
    if (t.dtype !== 'float32') throw new DTypeError(`${name} must be float32; got ${t.dtype}`);
    if (t.shape.join() !== shape.join()) {
      throw new ShapeError(
        `${name} for ${granularity} scales must have shape ${formatShape(shape)}; got ${formatShape(t.shape)}`,
      );
    }
  }
  const fold = opts.qScalesFoldSmScale ?? granularity === 'per-block';
  const caps = runtime.caps;
  const mmaOk =
    caps.tiers.includes('subgroup-matrix') &&
    hasSubgroupMatrix(caps, 'i8', 'i32', 16, 16, 32) &&
    p.headDim % 32 === 0 &&
    p.headDim <= 256;
  let tier: GpuTier;
  if (opts.tier === undefined || opts.tier === 'auto')
    tier = mmaOk ? 'subgroup-matrix' : caps.tiers.includes('f16') ? 'f16' : 'f32';
  else if (!caps.tiers.includes(opts.tier) || (opts.tier === 'subgroup-matrix' && !mmaOk)) {
    throw new UnsupportedOptionError(
      `tier '${opts.tier}' cannot run INT8 Q/K here (needs i8 and f16 subgroup matrices and a head dim that is a multiple of 32 up to 256); use tier 'auto'`,
    );
  } else tier = opts.tier;
  return buildFlashPlan(
    runtime,
    p,
    tier,
    [q.codes, k.codes, v],
    opts.mma,
    {
      qScales: q.scales as GpuTensor<'float32'>,
      kScales: k.scales as GpuTensor<'float32'>,
      qRule: rules.q,
      kRule: rules.k,
      qFactor: fold ? 1 : p.smScale * Math.LOG2E,
    },
    {
      pFormat,
      vScales: vScales as GpuTensor<'float32'> | undefined,
      vMean: vMean as GpuTensor<'float32'> | undefined,
    },
  );
}

/** Runs the INT8-QK kernel once; returns GPU tensors (float32 output in q's layout, optional LSE). */
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
