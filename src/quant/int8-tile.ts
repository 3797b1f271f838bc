/**
 * INT8 with one scale per tile of a row-major matrix, for tensors whose magnitude is set by the loss
 * rather than by the data: the attention probabilities and gradients SageBwd quantizes in its
 * backward (P, dO and dS per block, SA3 Alg. 3, sageattention.md §8.2).
 *
 * δ = fround(amax/127) and codes round(fround(x/δ)) clamped to [−127, 127] (numerics' quantizeInt, so
 * the rounding and the float32 arithmetic are those of every other sparq INT8 quantizer).
 *
 * Unlike the Q/K quantizers (int-group-quant.ts), there is no 1e-7 floor on amax: the reference's floor
 * protects all-zero activation blocks, but a gradient tile can legitimately have amax ≪ 1e-7 (dS shrinks
 * with the sequence length and with the loss scale, SB26 §3), and a floor would crush it to a few
 * codes. An all-zero tile — or one whose amax/127 underflows float32 — gets δ = 0 and codes 0 instead,
 * so it dequantizes to exactly 0 and nothing is ever 0/0. A tile holding NaN or ±inf gets δ = NaN and
 * codes 0: everything that reads it becomes NaN and nothing else does.
 */
import { quantizeInt } from '../numerics/int-quant.js';
import type { QuantRounding } from './types.js';

/** A tile's codes (row-major, rows × cols) and its one scale. */
export interface Int8Tile {
  readonly codes: Int8Array;
  readonly scale: number;
}

export interface Int8TileView {
  /** Rows and columns of the tile. */
  readonly rows: number;
  readonly cols: number;
  /** Index of the tile's first element in `source`, and the distance between its rows (default cols). */
  readonly offset?: number;
  readonly stride?: number;
  /** Default 'nearest-even'. */
  readonly rounding?: QuantRounding;
}

/** δ = fround(amax/127) for a tile's largest magnitude; 0 for amax 0, NaN for a non-finite amax. */
export function int8TileScale(amax: number): number {
  if (!Number.isFinite(amax)) return NaN;
  return Math.fround(amax / 127);
}

/** Quantizes the tile `view` of `source` to INT8 with one scale (see the module comment). */
export function quantizeInt8Tile(source: ArrayLike<number>, view: Int8TileView): Int8Tile {
  const { rows, cols } = view;
  const offset = view.offset ?? 0;
  const stride = view.stride ?? cols;
  const values = new Float32Array(rows * cols);
  let amax = 0;
  let finite = true;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = Math.fround(source[offset + r * stride + c]);
      values[r * cols + c] = x;
      if (!Number.isFinite(x)) finite = false;
      else if (Math.abs(x) > amax) amax = Math.abs(x);
    }
  }
  const scale = finite ? int8TileScale(amax) : NaN;
  const codes = new Int8Array(rows * cols);
  if (scale > 0)
    quantizeInt(values, scale, { bits: 8, rounding: view.rounding ?? 'nearest-even', out: codes });
  return { codes, scale };
}
