/**
 * The options of `sageAttention` and their validation. A call names a preset (presets.ts) and may
 * override any single numeric step; `resolveSageOptions` turns that into the shared AttentionProblem
 * plus a complete SageConfig, rejecting unknown keys, bad values and combinations no kernel could run,
 * each with a message that says what to pass instead.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { defaultChannelScaleMax } from '../../quant/channel-quant.js';
import { MX_SCALE_RULES } from '../../quant/mxfp4.js';
import { QK_GRANULARITIES, assertQKTiling } from '../../quant/qk-scale-groups.js';
import type {
  PVFormat,
  QKQuant,
  QuantRounding,
  QuantizeQKOptions,
  QuantizeVOptions,
} from '../../quant/types.js';
import {
  type AttentionOptions,
  type AttentionProblem,
  type ShapedLike,
  resolveAttentionProblem,
} from '../options.js';
import { PV_ACCUMS, type PVAccum } from './accumulate.js';
import { P_SCALINGS, type PScaling } from './p-quant.js';
import { PRESET_CONFIGS, SAGE_PRESETS, type SageConfig, type SagePreset } from './presets.js';

export interface SageOptions extends AttentionOptions {
  /**
   * The SageAttention variant (default 'sage2'): 'sage1' (SA1 §4), 'sage2' (SA2 §3), 'sage2++'
   * (SA2++ §3) or 'sage3' (SA3 §3). See presets.ts for the table; every option below overrides one
   * step of it.
   */
  preset?: SagePreset;
  /**
   * How Q and K are quantized (sageattention.md §3.2, §4.2, §7.1): `{ kind: 'int8' | 'int4',
   * granularity: 'per-block' | 'per-warp' | 'per-thread' | 'per-token' }`, `{ kind: 'nvfp4' }`,
   * `{ kind: 'mxfp4' }` or `{ kind: 'none' }`. Preset default: INT8 per-block (sage1), INT8
   * per-thread (sage2, sage2++), NVFP4 (sage3).
   */
  qk?: QKQuant;
  /** Subtract the per-(batch, kv-head) token mean of K (SA1 §4.2, Eq. 6). Default true in every preset. */
  smoothK?: boolean;
  /**
   * Subtract each blockQ-token block's mean from Q and add ΔS = q̄·γ(K)ᵀ back to the logits (SA2 §3.1,
   * Eq. 2; SA3 §7.3). Default true for sage3 only (the released SA2 code smooths only K).
   */
  smoothQ?: boolean;
  /**
   * Subtract the token mean of V and add it back to O (SA2 §3.4). Default false. Exact with every
   * accumulation here; the reference honours it only with "fp32" / "fp16" accumulation (§1.1).
   */
  smoothV?: boolean;
  /**
   * Format of P̃ in the PV product (SA1 §4.4, SA2 §3.3, SA3 §3.2): 'fp16' (sage1), 'float8_e4m3fn'
   * with the static 448 (sage2, sage2++), 'float8_e5m2', 'int8' with the static 1/127, 'nvfp4'
   * two-level (sage3). Must be of V's kind: both fp16, both FP8, both INT8 or both NVFP4 (one MMA).
   */
  pFormat?: PVFormat;
  /**
   * How NVFP4 P̃ is scaled (SA3 §3.2; p-quant.ts PScaling): 'two-level' (default, every preset) or
   * 'direct', the single-level ablation of SA3 Table 1b. 'direct' needs pFormat 'nvfp4'.
   */
  pScaling?: PScaling;
  /** Format of V (SA1 §4.4, SA2 §3.3 / §4.4, SA3 §7.2), same values as pFormat. */
  vFormat?: PVFormat;
  /**
   * PV accumulation (SA2 §3.4, SA2++ §3; see accumulate.ts): 'fp32', 'fp16', 'fp32+fp16', 'fp22',
   * 'fp32+fp22'. Preset default: 'fp32+fp16' (sage1, sage2++), 'fp32+fp22' (sage2), 'fp32' (sage3).
   */
  pvAccum?: PVAccum;
  /**
   * Per-channel V range for FP8/INT8 V: δ_V = colmax|V| / vScaleMax (SA2 §4.4; SA2++ Eq. 2). Default
   * 448 for E4M3 (2.25 in sage2++, sageattention.md §5), 57344 for E5M2, 127 for INT8.
   */
  vScaleMax?: number;
  /**
   * Rounding of the integer quantizers (SA1 §4.3): 'nearest-even' (default, the CUDA quantizers'
   * `cvt.rni`) or 'half-away' (the Triton quantizers, bit for bit).
   */
  rounding?: QuantRounding;
  /** Q tokens per kernel tile and per-block scale group (SA1 §4.3: 128). */
  blockQ?: number;
  /** Q tokens per warp, the per-warp / per-thread Q group span (SA2 §3.2: 32 on sm80/sm89). */
  warpQ?: number;
  /** Keys per kernel tile, K scale block and PV accumulation block (SA1 §4.3: 64; SA3: 128). */
  blockK?: number;
  /** Keys per warp, the per-thread K group span (SA2 §3.2: 64 on sm80/sm89). */
  warpK?: number;
}

/** A validated `sageAttention` call: the shared attention problem and the complete configuration. */
export interface ResolvedSage {
  problem: AttentionProblem;
  config: SageConfig;
}

const SAGE_KEYS = [
  'preset',
  'qk',
  'smoothK',
  'smoothQ',
  'smoothV',
  'pFormat',
  'pScaling',
  'vFormat',
  'pvAccum',
  'vScaleMax',
  'rounding',
  'blockQ',
  'warpQ',
  'blockK',
  'warpK',
] as const;

export const PV_FORMATS: readonly PVFormat[] = ['fp16', 'float8_e4m3fn', 'float8_e5m2', 'int8', 'nvfp4'];

/** The MMA operand kinds: P and V meet in one tensor-core MMA, so they must be of one kind. */
function operandKind(format: PVFormat): 'fp16' | 'fp8' | 'int8' | 'nvfp4' {
  return format === 'float8_e4m3fn' || format === 'float8_e5m2' ? 'fp8' : format;
}

/** The accumulations a PV operand kind can run (see each rule's message for why). */
const ACCUMS_BY_KIND: Record<ReturnType<typeof operandKind>, readonly PVAccum[]> = {
  fp16: ['fp32', 'fp16', 'fp32+fp16'],
  fp8: PV_ACCUMS,
  int8: ['fp32'],
  nvfp4: ['fp32'],
};

/**
 * Validates q, k, v and the options of a `sageAttention` call and fills in every default from the
 * preset. Overrides combine with the preset step by step; where an override changes V's format and
 * vScaleMax is not given, vScaleMax becomes the new format's default (sage2++'s 2.25 stays with
 * E4M3). Throws ShapeError / DTypeError for the tensors and UnsupportedOptionError for options.
 */
export function resolveSageOptions(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  opts: SageOptions = {},
): ResolvedSage {
  const problem = resolveAttentionProblem(q, k, v, opts, SAGE_KEYS);
  const preset = opts.preset ?? 'sage2';
  if (!SAGE_PRESETS.includes(preset)) {
    throw new UnsupportedOptionError(
      `preset must be one of ${SAGE_PRESETS.map((p) => `'${p}'`).join(', ')}; got ${JSON.stringify(preset)}`,
    );
  }
  const base = PRESET_CONFIGS[preset];
  const vFormat = oneOf(opts.vFormat, PV_FORMATS, 'vFormat', base.vFormat);
  const config: SageConfig = {
    preset,
    qk: resolveQK(opts.qk ?? base.qk),
    smoothK: bool(opts.smoothK, 'smoothK', base.smoothK),
    smoothQ: bool(opts.smoothQ, 'smoothQ', base.smoothQ),
    smoothV: bool(opts.smoothV, 'smoothV', base.smoothV),
    pFormat: oneOf(opts.pFormat, PV_FORMATS, 'pFormat', base.pFormat),
    pScaling: oneOf(opts.pScaling, P_SCALINGS, 'pScaling', base.pScaling),
    vFormat,
    pvAccum: oneOf(opts.pvAccum, PV_ACCUMS, 'pvAccum', base.pvAccum),
    vScaleMax: resolveVScaleMax(opts.vScaleMax, vFormat, base),
    rounding: oneOf(opts.rounding, ['nearest-even', 'half-away'] as const, 'rounding', base.rounding),
    blockQ: opts.blockQ ?? base.blockQ,
    warpQ: opts.warpQ ?? base.warpQ,
    blockK: opts.blockK ?? base.blockK,
    warpK: opts.warpK ?? base.warpK,
  };
  assertQKTiling(config);
  if (config.rounding === 'half-away' && config.qk.kind !== 'int8' && config.qk.kind !== 'int4') {
    throw new UnsupportedOptionError(
      `rounding 'half-away' reproduces the Triton integer quantizers and needs int8/int4 Q and K; ` +
        `qk '${config.qk.kind}' rounds to nearest even. Remove rounding or choose an integer qk.`,
    );
  }
  assertPVCombination(config);
  return { problem, config };
}

/** The quantizeQK options of a resolved call. */
export function quantizeQKOptions({ problem, config }: ResolvedSage): QuantizeQKOptions {
  return {
    layout: problem.layout,
    quant: config.qk,
    smoothK: config.smoothK,
    smoothQ: config.smoothQ,
    smScale: problem.smScale,
    blockQ: config.blockQ,
    warpQ: config.warpQ,
    blockK: config.blockK,
    warpK: config.warpK,
    rounding: config.rounding,
  };
}

/** The quantizeV options of a resolved call. */
export function quantizeVOptions({ problem, config }: ResolvedSage): QuantizeVOptions {
  const opts: QuantizeVOptions = { layout: problem.layout, format: config.vFormat, smoothV: config.smoothV };
  if (config.vScaleMax !== null) opts.scaleMax = config.vScaleMax;
  return opts;
}

function resolveQK(qk: unknown): QKQuant {
  const shape =
    `{ kind: 'int8' | 'int4', granularity: ${QK_GRANULARITIES.map((g) => `'${g}'`).join(' | ')} }, ` +
    `{ kind: 'mxfp4', scaleRule?: 'truncation-free' | 'ocp' } or { kind: 'nvfp4' | 'none' }`;
  const allowed: Record<string, readonly string[]> = {
    int8: ['kind', 'granularity'],
    int4: ['kind', 'granularity'],
    nvfp4: ['kind'],
    mxfp4: ['kind', 'scaleRule'],
    none: ['kind'],
  };
  const kind = (qk as { kind?: unknown } | null)?.kind;
  if (typeof qk !== 'object' || qk === null || typeof kind !== 'string' || !Object.hasOwn(allowed, kind)) {
    throw new UnsupportedOptionError(`qk must be ${shape}; got ${JSON.stringify(qk)}`);
  }
  const extra = Object.keys(qk).filter((key) => !allowed[kind].includes(key));
  if (extra.length > 0) {
    throw new UnsupportedOptionError(
      `qk { kind: '${kind}' } does not take ${extra.map((e) => `'${e}'`).join(', ')}; qk must be ${shape}`,
    );
  }
  const { granularity, scaleRule } = qk as { granularity?: unknown; scaleRule?: unknown };
  if ((kind === 'int8' || kind === 'int4') && !QK_GRANULARITIES.includes(granularity as never)) {
    throw new UnsupportedOptionError(
      `qk { kind: '${kind}' } needs a granularity, one of ${QK_GRANULARITIES.map((g) => `'${g}'`).join(', ')} ` +
        `(SA2 §3.2: 'per-thread' is as accurate as 'per-token' at per-block cost); got ${JSON.stringify(granularity)}`,
    );
  }
  if (kind === 'mxfp4' && scaleRule !== undefined && !MX_SCALE_RULES.includes(scaleRule as never)) {
    throw new UnsupportedOptionError(
      `qk { kind: 'mxfp4' } scaleRule must be 'truncation-free' (default) or 'ocp'; got ${JSON.stringify(scaleRule)}`,
    );
  }
  return { ...qk } as QKQuant;
}

function resolveVScaleMax(value: unknown, vFormat: PVFormat, base: SageConfig): number | null {
  if (vFormat === 'fp16' || vFormat === 'nvfp4') {
    if (value !== undefined) {
      throw new UnsupportedOptionError(
        `vScaleMax sets the per-channel range of FP8/INT8 V; vFormat '${vFormat}' has no per-channel ` +
          `scale (${vFormat === 'fp16' ? 'V is cast unscaled' : 'NVFP4 scales each 16-token group by amax/6'}). ` +
          `Remove vScaleMax or choose an FP8/INT8 vFormat.`,
      );
    }
    return null;
  }
  const max = defaultChannelScaleMax(vFormat);
  if (value === undefined) return vFormat === base.vFormat && base.vScaleMax !== null ? base.vScaleMax : max;
  if (typeof value !== 'number' || !(value > 0 && value <= max)) {
    throw new UnsupportedOptionError(
      `vScaleMax must be a number in (0, ${max}] for vFormat '${vFormat}' (its largest code; SA2++ uses ` +
        `2.25 with fp16 accumulation, sageattention.md §5); got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Throws an UnsupportedOptionError unless P and V can meet in one MMA, pvAccum applies to them,
 * NVFP4 groups of 16 keys fit the key tile, and a 'direct' pScaling (default 'two-level') has NVFP4
 * P to apply to. Shared by resolveSageOptions and the kernel, which can be called with V from
 * quantizeV directly.
 */
export function assertPVCombination(
  c: Pick<SageConfig, 'pFormat' | 'vFormat' | 'pvAccum' | 'blockK'> & { pScaling?: PScaling },
): void {
  oneOf(c.pFormat, PV_FORMATS, 'pFormat', 'fp16');
  oneOf(c.vFormat, PV_FORMATS, 'vFormat', 'fp16');
  oneOf(c.pvAccum, PV_ACCUMS, 'pvAccum', 'fp32');
  if (oneOf(c.pScaling, P_SCALINGS, 'pScaling', 'two-level') === 'direct' && c.pFormat !== 'nvfp4') {
    throw new UnsupportedOptionError(
      `pScaling 'direct' drops the level-1 row scale of NVFP4 P (SA3 §3.2) and needs pFormat 'nvfp4'; ` +
        `pFormat '${c.pFormat}' has a static range (p-quant.ts). Remove pScaling or set pFormat 'nvfp4'.`,
    );
  }
  const pKind = operandKind(c.pFormat);
  const vKind = operandKind(c.vFormat);
  if (pKind !== vKind) {
    throw new UnsupportedOptionError(
      `pFormat '${c.pFormat}' and vFormat '${c.vFormat}' cannot meet in one MMA: P and V must both be fp16, ` +
        `both FP8 (E4M3/E5M2), both int8 or both nvfp4. Set pFormat and vFormat together.`,
    );
  }
  if (!ACCUMS_BY_KIND[pKind].includes(c.pvAccum)) {
    const why =
      pKind === 'fp16'
        ? 'FP22 models the FP8 tensor cores (SA2 §3.4); fp16 MMAs accumulate in true fp32 or in fp16'
        : pKind === 'int8'
          ? 'INT8 PV sums exactly in int32 before the fp32 O'
          : "FP4 MMAs accumulate in fp32 only (SA3 §3.2; each block's tile is merged in fp32)";
    throw new UnsupportedOptionError(
      `pvAccum '${c.pvAccum}' does not apply to ${c.pFormat} P and V: ${why}. ` +
        `Use ${ACCUMS_BY_KIND[pKind].map((a) => `'${a}'`).join(' or ')}.`,
    );
  }
  if ((c.pFormat === 'nvfp4' || c.vFormat === 'nvfp4') && c.blockK % 16 !== 0) {
    throw new UnsupportedOptionError(
      `blockK must be a multiple of 16 with NVFP4 P/V (16-key groups must not straddle a key tile, ` +
        `SA3 §3.1); got ${c.blockK}`,
    );
  }
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], name: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new UnsupportedOptionError(
      `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}; got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

function bool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new UnsupportedOptionError(`${name} must be true or false; got ${JSON.stringify(value)}`);
  }
  return value;
}
