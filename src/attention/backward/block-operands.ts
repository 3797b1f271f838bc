/**
 * The forward operands of SageBwd (SA3 Alg. 2 lines 1–2; sageattention.md §8.1): K smoothed, then Q, K
 * and V quantized to INT8 with one scale per FlashAttention block, s_X = max|X_block|/127 and
 * X̂ = round(X/s_X). V is per block too, not per channel as in inference SageAttention. The backward
 * reuses these same blocks (S recompute, dQ = dS·K̂, dK = dSᵀ·Q̂), so they are kept.
 *
 * The steps are the quant/ primitives the inference pipeline uses: subtractTokenMean for K smoothing
 * (float32 mean per (batch, head), SA1 §4.2) and quantizeIntGroups with 'per-block' groups (float32
 * arithmetic, δ = max(amax, 1e-7)/127 — the CUDA quantizer's guard, so an all-zero block has codes 0
 * and a tiny positive scale; only a block's valid tokens enter its amax, §6.2).
 *
 * With quant 'none' the same shapes hold the float64 values themselves with unit scales, and smoothing
 * subtracts a float64 mean, so the full-precision path runs the identical algorithm.
 */
import { Tensor } from '../../core/tensor.js';
import { quantizeIntGroups } from '../../quant/int-group-quant.js';
import { subtractTokenMean } from '../../quant/smoothing.js';
import type { QuantRounding } from '../../quant/types.js';

/** Problem sizes after flattening the leading (batch, head) axes into bh. */
export interface SageBwdDims {
  /** Number of independent (batch, head) attention problems. */
  readonly bh: number;
  readonly nq: number;
  readonly nk: number;
  /** Head dim of Q and K. */
  readonly d: number;
  /** Head dim of V and O. */
  readonly dv: number;
}

/**
 * A [bh, tokens, channels] operand split into blocks of `block` tokens: element (b, n, c) is
 * values[(b·tokens + n)·channels + c] × scales[b·blocks + ⌊n/block⌋].
 */
export interface BlockOperand {
  /** INT8 codes (as numbers) for quant 'int8'; the values themselves for 'none'. */
  readonly values: Float64Array;
  readonly scales: Float64Array;
  readonly block: number;
  readonly tokens: number;
  readonly channels: number;
  /** ⌈tokens / block⌉. */
  readonly blocks: number;
}

export interface BlockQuantOptions {
  readonly quant: 'int8' | 'none';
  readonly block: number;
  readonly rounding: QuantRounding;
}

/** x ([bh, tokens, channels], float64) as a block operand: INT8 per block, or as is. */
export function blockOperand(
  x: Float64Array,
  bh: number,
  tokens: number,
  channels: number,
  opts: BlockQuantOptions,
): BlockOperand {
  const blocks = Math.ceil(tokens / opts.block);
  if (opts.quant === 'none') {
    return {
      values: x,
      scales: new Float64Array(bh * blocks).fill(1),
      block: opts.block,
      tokens,
      channels,
      blocks,
    };
  }
  const b = opts.block;
  // One block size for both roles: per-block groups read only blockQ (role q) or blockK (role k).
  const q = quantizeIntGroups(new Tensor(x, [1, bh, tokens, channels], 'float64'), {
    role: 'k',
    bits: 8,
    granularity: 'per-block',
    tiling: { blockQ: b, warpQ: b, blockK: b, warpK: b },
    rounding: opts.rounding,
  });
  return {
    values: Float64Array.from(q.codes.data as Int8Array),
    scales: Float64Array.from(q.scales.data as Float32Array),
    block: b,
    tokens,
    channels,
    blocks,
  };
}

/**
 * K − mean_tokens(K) per (batch, head) (SA3 Alg. 2 line 1; SA1 §4.2, Eq. 6) and the mean K_m
 * [bh, channels]: quant/smoothing's float32 version for 'int8', a float64 one for 'none'.
 */
export function smoothTokens(
  x: Float64Array,
  bh: number,
  tokens: number,
  channels: number,
  quant: 'int8' | 'none',
): { smoothed: Float64Array; mean: Float64Array } {
  if (quant === 'int8') {
    const s = subtractTokenMean(new Tensor(x, [1, bh, tokens, channels], 'float64'));
    return { smoothed: Float64Array.from(s.smoothed.data), mean: Float64Array.from(s.mean.data) };
  }
  const mean = new Float64Array(bh * channels);
  const smoothed = new Float64Array(x.length);
  for (let b = 0; b < bh; b++) {
    for (let n = 0; n < tokens; n++) {
      for (let c = 0; c < channels; c++) mean[b * channels + c] += x[(b * tokens + n) * channels + c];
    }
    for (let c = 0; c < channels; c++) mean[b * channels + c] /= tokens;
    for (let n = 0; n < tokens; n++) {
      for (let c = 0; c < channels; c++) {
        const i = (b * tokens + n) * channels + c;
        smoothed[i] = x[i] - mean[b * channels + c];
      }
    }
  }
  return { smoothed, mean };
}

/**
 * The scaled logits of query row i against keys j0 … j0 + cols − 1 (all inside one K block), as both
 * passes compute them: S = (Σ_c q̂·k̂) × (δ_Q·δ_K·σ), the integer dot product exact in float64 (the
 * int32 MMA), so the backward's recompute reproduces the forward's logits bit for bit.
 */
export function rowLogits(
  q: BlockOperand,
  k: BlockOperand,
  b: number,
  i: number,
  j0: number,
  cols: number,
  sigma: number,
  out: Float64Array,
): void {
  const d = q.channels;
  const scale =
    q.scales[b * q.blocks + Math.floor(i / q.block)] *
    k.scales[b * k.blocks + Math.floor(j0 / k.block)] *
    sigma;
  const qRow = (b * q.tokens + i) * d;
  const qv = q.values;
  const kv = k.values;
  for (let c = 0; c < cols; c++) {
    const kRow = (b * k.tokens + j0 + c) * d;
    let dot = 0;
    for (let x = 0; x < d; x++) dot += qv[qRow + x] * kv[kRow + x];
    out[c] = dot * scale;
  }
}
