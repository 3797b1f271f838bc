/**
 * Options of SageBwd, the 8-bit trainable attention (SA3 §4, Alg. 2–3; sageattention.md §8), and their
 * validation. Every default is the paper's choice where the paper states one; where it does not (the
 * tile sizes, the rounding, whether the smooth-K term is applied), the default and the reason are given
 * per option, and the option exists so the choice can be measured.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { assertOptionKeys, booleanOption } from '../../quant/option-checks.js';
import type { QuantRounding } from '../../quant/types.js';
import type { CausalAlignment } from '../options.js';

/**
 * - 'int8' (default): SageBwd. Q, K, V INT8 per block; P̃ INT8 per token in the forward; P, dO and dS
 *   INT8 per block in the backward (six of the seven matmuls, §8.2).
 * - 'none': every step in float64 with no quantization (the same tiled FlashAttention-2 algorithm, so
 *   the full-precision reference arm differs from SageBwd only in its quantizers).
 */
export type SageBwdQuant = 'int8' | 'none';

/**
 * Precision of dP = dO·Vᵀ in the backward (sageattention.md §8.2):
 * - 'fp16': dO and V rounded to IEEE half, products accumulated in fp32 per 16-wide MMA step (SA3's
 *   choice: quantizing dP drops dQ's cosine from 99.77 % to 97.47 %, SA3 Table 1c).
 * - 'int8': dO per block (the dV operand) times the forward's per-block V̂: SA3 Table 1c's ablation.
 * - 'float64': exact.
 */
export type SageBwdDpPrecision = 'fp16' | 'int8' | 'float64';

/**
 * Precision of the score gradient dS in dQ = dS·K and dK = dSᵀ·Q: 'int8' per block (SA3 Alg. 3), or
 * 'float64' — the ablation behind SB26's finding (sageattention.md §8.3) that most of SageBwd's gradient error comes from dS.
 */
export type SageBwdDsPrecision = 'int8' | 'float64';

export interface SageBwdOptions {
  /** Default 'int8'. */
  quant?: SageBwdQuant;
  /** Causal masking (default false). */
  causal?: boolean;
  /**
   * Diagonal of the causal mask when Nq ≠ Nk (default 'bottom-right': SA3's `col_limit_causal`, and
   * what autograd's scaledDotProductAttention uses, sageattention.md §6.3).
   */
  causalAlignment?: CausalAlignment;
  /** Softmax scale σ in S = σ·QKᵀ (default 1/√D). */
  smScale?: number;
  /**
   * Query tokens per block (default 128): one INT8 scale per block of Q, and the dO blocks and the
   * row extent of the P and dS tiles in the backward. SA3 does not state SageBwd's tiles; the default
   * is SA1's per-block Q tile (sageattention.md §3.2). A multiple of 8 (the MMA row octets).
   */
  blockQ?: number;
  /**
   * Key tokens per block (default 64): one INT8 scale per block of K and of V, the online-softmax step
   * whose running max defines P̃'s per-token scale, and the column extent of the P and dS tiles. SA1's
   * per-block K tile (§3.2); a multiple of 8.
   */
  blockK?: number;
  /** Subtract the token mean of K before quantizing it (default true; SA3 Alg. 2 line 1, SA1 §4.2). */
  smoothK?: boolean;
  /**
   * Add σ·rowsum(dS)·K_m to dQ (default true, as sageattention.md §8.2 states the term). It is the
   * exact difference between dS·K and dS·(K − K_m); it is zero whenever the rows of dS sum to zero,
   * which they do in exact arithmetic (see sage-bwd-backward.ts), so only quantization error decides
   * whether it helps — and the sagebwd evaluation measures that it does not: under a K channel bias
   * it re-injects the forward's O error scaled by |K_m| and raises dQ's relative L1 about 1.5×.
   * Ignored when smoothK is false.
   */
  smoothKCorrection?: boolean;
  /** Precision of dP = dO·Vᵀ (default 'fp16' with quant 'int8', 'float64' with quant 'none'). */
  dP?: SageBwdDpPrecision;
  /** Precision of dS in dQ and dK (default 'int8'; quant 'none' keeps everything float64). */
  dS?: SageBwdDsPrecision;
  /**
   * Rounding of every INT8 quantizer (default 'nearest-even', CUDA's `cvt.rni`; 'half-away' is the
   * Triton quantizers' formula). SA3 does not state SageBwd's rounding.
   */
  rounding?: QuantRounding;
}

export type ResolvedSageBwdOptions = Required<SageBwdOptions>;

const OPTION_KEYS: readonly (keyof SageBwdOptions)[] = [
  'quant',
  'causal',
  'causalAlignment',
  'smScale',
  'blockQ',
  'blockK',
  'smoothK',
  'smoothKCorrection',
  'dP',
  'dS',
  'rounding',
];

/** SA1's per-block tiles (sageattention.md §3.2). */
export const SAGE_BWD_BLOCK_Q = 128;
export const SAGE_BWD_BLOCK_K = 64;

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new UnsupportedOptionError(
      `${name} must be ${allowed.map((a) => `'${a}'`).join(' or ')}; got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

function blockSize(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 8 || value % 8 !== 0) {
    throw new UnsupportedOptionError(
      `${name} must be a positive multiple of 8 (default ${fallback}); got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Validates the options and fills in the defaults (σ = 1/√headDim unless given). */
export function resolveSageBwdOptions(
  opts: SageBwdOptions | undefined,
  headDim: number,
): ResolvedSageBwdOptions {
  assertOptionKeys(opts, OPTION_KEYS, 'sageAttentionTrainable');
  const o = opts ?? {};
  const quant = oneOf(o.quant, 'quant', ['int8', 'none'] as const, 'int8');
  const dP = oneOf(o.dP, 'dP', ['fp16', 'int8', 'float64'] as const, quant === 'int8' ? 'fp16' : 'float64');
  if (quant === 'none' && dP === 'int8') {
    throw new UnsupportedOptionError(
      "dP 'int8' multiplies the INT8 blocks of dO and V, which quant 'none' does not make; use quant 'int8' or dP 'fp16' / 'float64'",
    );
  }
  const smScale = o.smScale;
  if (smScale !== undefined && (typeof smScale !== 'number' || !Number.isFinite(smScale) || smScale <= 0)) {
    throw new UnsupportedOptionError(
      `smScale must be a finite number > 0 (default 1/sqrt(D)); got ${JSON.stringify(smScale)}`,
    );
  }
  return {
    quant,
    causal: booleanOption(o.causal, 'causal', false),
    causalAlignment: oneOf(
      o.causalAlignment,
      'causalAlignment',
      ['top-left', 'bottom-right'] as const,
      'bottom-right',
    ),
    smScale: smScale ?? 1 / Math.sqrt(headDim),
    blockQ: blockSize(o.blockQ, 'blockQ', SAGE_BWD_BLOCK_Q),
    blockK: blockSize(o.blockK, 'blockK', SAGE_BWD_BLOCK_K),
    smoothK: booleanOption(o.smoothK, 'smoothK', true),
    smoothKCorrection: booleanOption(o.smoothKCorrection, 'smoothKCorrection', true),
    dP,
    dS: oneOf(o.dS, 'dS', ['int8', 'float64'] as const, 'int8'),
    rounding: oneOf(o.rounding, 'rounding', ['nearest-even', 'half-away'] as const, 'nearest-even'),
  };
}
