/**
 * Smoothing: subtracting a mean over tokens before quantization, so that a bias shared by all tokens
 * of a channel no longer sets the quantization range.
 *
 * - K (SA1 §4.2, Eq. 6; sageattention.md §3.1): γ(K) = K − mean_tokens(K) per (batch, kv head). Exact
 *   for attention: q·(k_j − k̄) = q·k_j − q·k̄, and the second term is the same for every key of a row,
 *   which softmax ignores.
 * - V (SA2 §3.4; sageattention.md §4.4): V − mean_tokens(V); the mean is added back to O, exact
 *   because every normalised row of P sums to 1.
 * - Q (SA2 §3.1, Eq. 2; SA3 Alg. 1; sageattention.md §4.1, §7.3): the mean of each block of Q tokens
 *   is removed, and ΔS = q̄_block·γ(K)ᵀ restores the logits (see quantize-qk.ts).
 *
 * Arithmetic: inputs are rounded to float32 first (token-rows.ts); each mean is accumulated in
 * float64 over the valid tokens only and rounded to float32; smoothed = fround(x − mean). A partial
 * last block averages only its valid tokens (SA3 zero-pads Q to a multiple of 128 and averages the
 * padding too; either way the algebra is exact, only the quantization error of that block differs).
 * An empty token range has mean 0. NaN/±inf propagate through IEEE arithmetic to every value of the
 * (batch, head) or block they fall in.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { type Layout, assertLayout } from '../core/layout.js';
import { Tensor } from '../core/tensor.js';
import { type TokenRows, readTokenRows, rowStart } from './token-rows.js';

export interface MeanSubtracted {
  /** x − mean in float32, in the input layout. */
  smoothed: Tensor<'float32'>;
  /** The means that were subtracted (shape documented per function). */
  mean: Tensor<'float32'>;
}

export interface SmoothingOptions {
  /** Layout of x and of `smoothed` (default 'HND'). */
  layout?: Layout;
}

/**
 * Subtracts the mean over all tokens of each (batch, head): K smoothing (SA1 §4.2, Eq. 6) and V
 * smoothing (SA2 §3.4). Returns the mean as [B, H, D].
 */
export function subtractTokenMean(x: Tensor, opts: SmoothingOptions = {}): MeanSubtracted {
  const layout = opts.layout ?? 'HND';
  assertLayout(layout);
  const rows = readTokenRows(x, layout, 'x');
  const { batch, heads, tokens, headDim } = rows.dims;
  const means = tokens === 0 ? new Float32Array(batch * heads * headDim) : subtractGroupMeans(rows, tokens);
  return {
    smoothed: new Tensor(rows.values, x.shape, 'float32'),
    mean: new Tensor(means, [batch, heads, headDim], 'float32'),
  };
}

/**
 * Subtracts the mean of each block of `blockSize` consecutive tokens per (batch, head): Q smoothing
 * with per-block means (SA2 §3.1, Eq. 2; SA3 `per_block_mean=True`, sageattention.md §7.3). Returns
 * the means as [B, H, ⌈N/blockSize⌉, D].
 */
export function subtractBlockMeans(
  x: Tensor,
  blockSize: number,
  opts: SmoothingOptions = {},
): MeanSubtracted {
  const layout = opts.layout ?? 'HND';
  assertLayout(layout);
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) {
    throw new UnsupportedOptionError(
      `subtractBlockMeans: blockSize must be a positive integer (the Q tile, e.g. 128); got ${String(blockSize)}`,
    );
  }
  const rows = readTokenRows(x, layout, 'x');
  const { batch, heads, tokens, headDim } = rows.dims;
  const means = subtractGroupMeans(rows, blockSize);
  return {
    smoothed: new Tensor(rows.values, x.shape, 'float32'),
    mean: new Tensor(means, [batch, heads, Math.ceil(tokens / blockSize), headDim], 'float32'),
  };
}

/** In place: subtracts each block's mean from its rows; returns the means [B, H, blocks, D]. */
function subtractGroupMeans(rows: TokenRows, blockSize: number): Float32Array {
  const { dims, layout, values } = rows;
  const { batch, heads, tokens, headDim } = dims;
  const blocks = Math.ceil(tokens / blockSize);
  const means = new Float32Array(batch * heads * blocks * headDim);
  const sum = new Float64Array(headDim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let blk = 0; blk < blocks; blk++) {
        const first = blk * blockSize;
        const end = Math.min(first + blockSize, tokens);
        sum.fill(0);
        for (let n = first; n < end; n++) {
          const r = rowStart(dims, layout, b, h, n);
          for (let d = 0; d < headDim; d++) sum[d] += values[r + d];
        }
        const m = ((b * heads + h) * blocks + blk) * headDim;
        for (let d = 0; d < headDim; d++) means[m + d] = sum[d] / (end - first);
        for (let n = first; n < end; n++) {
          const r = rowStart(dims, layout, b, h, n);
          for (let d = 0; d < headDim; d++) values[r + d] = values[r + d] - means[m + d];
        }
      }
    }
  }
  return means;
}
