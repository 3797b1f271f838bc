/**
 * Which Q or K tokens share one integer scale, and where that scale sits in the scale tensor
 * (sageattention.md §3.2, §4.2; SA2 §3.2, App. A.6, Eq. 8). The groups follow the accumulator layout
 * of `mma.m16n8k32`: in a 16×8 tile of S, lane ℓ holds rows ℓ/4 and ℓ/4 + 8 and columns 2(ℓ%4) and
 * 2(ℓ%4) + 1, so per-thread groups give every thread exactly one δ_Q and one δ_K, and the kernel
 * dequantizes S_int32 × δ_Q(row) × δ_K(col) with one multiplier.
 *
 * Scale tensors are [B, H, count] (Q) and [B, Hkv, count] (K) with count = qkScaleCount(…):
 *
 * | granularity | Q: index of token n                     | Q count                        | K: index of token n                        | K count                        |
 * |-------------|-----------------------------------------|--------------------------------|--------------------------------------------|--------------------------------|
 * | per-block   | ⌊n/blockQ⌋                              | ⌈N/blockQ⌉                     | ⌊n/blockK⌋                                 | ⌈N/blockK⌉                     |
 * | per-warp    | ⌊n/warpQ⌋                               | ⌈N/blockQ⌉·(blockQ/warpQ)      | ⌊n/blockK⌋ (WARP_K = CTA_K, issue #232)    | ⌈N/blockK⌉                     |
 * | per-thread  | ⌊n/warpQ⌋·8 + n mod 8                   | ⌈N/blockQ⌉·(blockQ/warpQ)·8    | ⌊n/warpK⌋·4 + ⌊(n mod 8)/2⌋                | ⌈N/blockK⌉·(blockK/warpK)·4    |
 * | per-token   | n                                       | N                              | n                                          | N                              |
 *
 * So a per-thread Q group is the tokens t, t+8, t+16, … of one warpQ segment (warpQ/8 of them), and a
 * per-thread K group is the tokens whose index mod 8 is 2t or 2t+1 in one warpK segment (warpK/4 of
 * them). Counts cover whole tiles, as the reference allocates them; a group with no valid token (past
 * N in the last tile) still has a scale (see int-group-quant.ts). These are the index formulas of the
 * reference quantizers (`triton/quant_per_thread.py`, fused.cu `quant_per_warp_int8_cuda`) and of the
 * kernels (`qk_int_sv_f8_cuda_sm89.cuh`: Q index warp_q·8 + lane/4, K index warp_k·4 + lane%4).
 */
import { UnsupportedOptionError } from '../core/errors.js';
import type { QKGranularity } from './types.js';

export type QKRole = 'q' | 'k';

/** The kernel tile sizes that define the token groups (sageattention.md §6.1). */
export interface QKTiling {
  /** Q tokens per tile (CTA_Q). */
  blockQ: number;
  /** Q tokens per warp (WARP_Q). */
  warpQ: number;
  /** K tokens per tile (CTA_K). */
  blockK: number;
  /** K tokens per warp (WARP_K). */
  warpK: number;
}

/** The sm80/sm89 tiles, the reference defaults (`per_thread_int8`: BLKQ 128, WARPQ 32, BLKK 64, WARPK 64). */
export const DEFAULT_QK_TILING: Readonly<QKTiling> = Object.freeze({
  blockQ: 128,
  warpQ: 32,
  blockK: 64,
  warpK: 64,
});

export const QK_GRANULARITIES: readonly QKGranularity[] = [
  'per-block',
  'per-warp',
  'per-thread',
  'per-token',
];

/**
 * Throws an UnsupportedOptionError unless every size is a positive integer, warpQ divides blockQ,
 * warpK divides blockK, and both warps are multiples of 8 (an mma tile has 8 row pairs / 8 columns,
 * so the mod-8 groups of §4.2 need whole octets).
 */
export function assertQKTiling(tiling: QKTiling): void {
  for (const key of ['blockQ', 'warpQ', 'blockK', 'warpK'] as const) {
    const v = tiling[key];
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new UnsupportedOptionError(
        `${key} must be a positive integer (default ${DEFAULT_QK_TILING[key]}); got ${String(v)}`,
      );
    }
  }
  for (const [warp, block] of [
    ['warpQ', 'blockQ'],
    ['warpK', 'blockK'],
  ] as const) {
    if (tiling[warp] % 8 !== 0 || tiling[block] % tiling[warp] !== 0) {
      throw new UnsupportedOptionError(
        `${warp} must be a multiple of 8 that divides ${block} (sageattention.md §4.2: per-thread groups ` +
          `split each warp segment by token index mod 8); got ${warp} ${tiling[warp]} and ${block} ${tiling[block]}`,
      );
    }
  }
}

/** The number of scales per (batch, head) for `tokens` tokens (see the table above). */
export function qkScaleCount(
  role: QKRole,
  granularity: QKGranularity,
  tokens: number,
  tiling: QKTiling,
): number {
  const { blockQ, warpQ, blockK, warpK } = tiling;
  const block = role === 'q' ? blockQ : blockK;
  const tiles = Math.ceil(tokens / block);
  switch (checkGranularity(granularity)) {
    case 'per-block':
      return tiles;
    case 'per-warp':
      return role === 'q' ? tiles * (blockQ / warpQ) : tiles;
    case 'per-thread':
      return role === 'q' ? tiles * (blockQ / warpQ) * 8 : tiles * (blockK / warpK) * 4;
    case 'per-token':
      return tokens;
  }
}

/**
 * The scale index of token `token` within its (batch, head) row of the scale tensor: kernels read
 * δ = scales[(b·H + h)·count + qkScaleIndex(role, granularity, token, tiling)].
 */
export function qkScaleIndex(
  role: QKRole,
  granularity: QKGranularity,
  token: number,
  tiling: QKTiling,
): number {
  const { blockQ, warpQ, blockK, warpK } = tiling;
  switch (checkGranularity(granularity)) {
    case 'per-block':
      return Math.floor(token / (role === 'q' ? blockQ : blockK));
    case 'per-warp':
      return role === 'q' ? Math.floor(token / warpQ) : Math.floor(token / blockK);
    case 'per-thread':
      return role === 'q'
        ? Math.floor(token / warpQ) * 8 + (token % 8)
        : Math.floor(token / warpK) * 4 + Math.floor((token % 8) / 2);
    case 'per-token':
      return token;
  }
}

function checkGranularity(granularity: QKGranularity): QKGranularity {
  if (!QK_GRANULARITIES.includes(granularity)) {
    throw new UnsupportedOptionError(
      `granularity must be one of ${QK_GRANULARITIES.map((g) => `'${g}'`).join(', ')}; got ${JSON.stringify(granularity)}`,
    );
  }
  return granularity;
}
