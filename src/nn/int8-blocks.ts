/**
 * Jetfire per-block INT8 (training_methods.md §2.2; code `thu-ml/Jetfire-INT8Training`): a matrix is
 * tiled into B×B square blocks (B = 32 in Jetfire's `igemm_BlockSquare32*` kernels), each with one
 * scale s = max|block| / 127 and codes q = round(x / s) ∈ [−127, 127]. Square blocks serve both
 * orientations of a GEMM operand, so one quantized tensor is valid for the forward and the backward
 * products (W in Y = X·Wᵀ and in ∂X = ∂Y·W; ∂Y in ∂X and in ∂W = ∂Yᵀ·X).
 *
 * The GEMM multiplies codes exactly in integers per block pair (|Σ q_a·q_b| ≤ 32·127² is exact in
 * float64, as int32 accumulation is on the GPU) and rescales by s_a·s_b.
 *
 * Arithmetic is float64 throughout (the autograd layer's precision), so codes are round(x / s) of the
 * float64 value; roundToInteger supplies both roundings.
 */
import type { Rng } from '../core/rng.js';
import { roundToInteger } from '../numerics/int-quant.js';
import type { Matrix } from './matrix.js';

/** Jetfire's block edge. */
export const INT8_BLOCK_SIZE = 32;

/** 'nearest-even' for forward operands, 'stochastic' (E[deq] = x) for gradients (Jetfire §2.2). */
export type Int8BlockRounding = 'nearest-even' | 'stochastic';

export interface Int8Blocks {
  readonly rows: number;
  readonly cols: number;
  readonly block: number;
  /** Codes in the matrix's row-major layout. */
  readonly codes: Int8Array;
  /** One scale per block, row-major over the ⌈rows/B⌉ × ⌈cols/B⌉ block grid; 0 for an all-zero block. */
  readonly scales: Float64Array;
}

export interface QuantizeInt8BlocksOptions {
  rounding: Int8BlockRounding;
  /** Required for 'stochastic': one uint32 per element, drawn in row-major order. */
  rng?: Rng;
  /** Block edge B (default 32). */
  block?: number;
}

/** Number of B-sized tiles covering n. */
function blockCount(n: number, block: number): number {
  return Math.ceil(n / block);
}

/** Largest |x| of each block, row-major over the block grid. */
export function blockAbsMax(x: Matrix, block: number): Float64Array {
  const gridCols = blockCount(x.cols, block);
  const out = new Float64Array(blockCount(x.rows, block) * gridCols);
  for (let i = 0; i < x.rows; i++) {
    const rowBase = Math.floor(i / block) * gridCols;
    for (let j = 0; j < x.cols; j++) {
      const b = rowBase + Math.floor(j / block);
      const a = Math.abs(x.data[i * x.cols + j]);
      if (a > out[b]) out[b] = a;
    }
  }
  return out;
}

/** Per-block INT8 with s = absmax / 127 (Jetfire, §2.2); an all-zero block gets s = 0 and zero codes. */
export function quantizeInt8Blocks(x: Matrix, opts: QuantizeInt8BlocksOptions): Int8Blocks {
  const block = opts.block ?? INT8_BLOCK_SIZE;
  if (opts.rounding === 'stochastic' && opts.rng === undefined) {
    throw new RangeError("quantizeInt8Blocks: 'stochastic' rounding needs an rng");
  }
  const s = blockAbsMax(x, block).map((m) => m / 127);
  const gridCols = blockCount(x.cols, block);
  const codes = new Int8Array(x.rows * x.cols);
  for (let i = 0; i < x.rows; i++) {
    const rowBase = Math.floor(i / block) * gridCols;
    for (let j = 0; j < x.cols; j++) {
      const scale = s[rowBase + Math.floor(j / block)];
      const bits = opts.rng === undefined ? undefined : opts.rng.nextUint32();
      if (scale === 0) continue;
      const q = roundToInteger(x.data[i * x.cols + j] / scale, opts.rounding, bits);
      codes[i * x.cols + j] = Math.max(-127, Math.min(127, q));
    }
  }
  return { rows: x.rows, cols: x.cols, block, codes, scales: s };
}

/** codes × block scale, as a float64 matrix. */
export function dequantizeInt8Blocks(q: Int8Blocks): Matrix {
  const gridCols = blockCount(q.cols, q.block);
  const data = new Float64Array(q.rows * q.cols);
  for (let i = 0; i < q.rows; i++) {
    const rowBase = Math.floor(i / q.block) * gridCols;
    for (let j = 0; j < q.cols; j++) {
      data[i * q.cols + j] = q.codes[i * q.cols + j] * q.scales[rowBase + Math.floor(j / q.block)];
    }
  }
  return { data, rows: q.rows, cols: q.cols };
}

/** The same blocks, transposed (codes and block grid). */
export function transposeInt8Blocks(q: Int8Blocks): Int8Blocks {
  const codes = new Int8Array(q.codes.length);
  for (let i = 0; i < q.rows; i++) {
    for (let j = 0; j < q.cols; j++) codes[j * q.rows + i] = q.codes[i * q.cols + j];
  }
  const gr = blockCount(q.rows, q.block);
  const gc = blockCount(q.cols, q.block);
  const scales = new Float64Array(q.scales.length);
  for (let bi = 0; bi < gr; bi++)
    for (let bj = 0; bj < gc; bj++) scales[bj * gr + bi] = q.scales[bi * gc + bj];
  return { rows: q.cols, cols: q.rows, block: q.block, codes, scales };
}

/**
 * A·B for block-quantized A (m×k) and B (k×n) with equal block sizes: for every output element and
 * every k-block, the integer dot product of the codes times s_A·s_B (Jetfire's int32-accumulating
 * block GEMM). Block pairs with a zero scale are skipped, so a residual tensor that is zero outside
 * its fallback blocks costs only those blocks.
 */
export function int8BlockMatmul(a: Int8Blocks, b: Int8Blocks): Matrix {
  const { rows: m, cols: k, block } = a;
  const n = b.cols;
  const gridA = blockCount(k, block);
  const gridB = blockCount(n, block);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const rowA = Math.floor(i / block) * gridA;
    for (let kb = 0; kb < gridA; kb++) {
      const sa = a.scales[rowA + kb];
      if (sa === 0) continue;
      const p1 = Math.min(k, (kb + 1) * block);
      for (let j = 0; j < n; j++) {
        const sb = b.scales[kb * gridB + Math.floor(j / block)];
        if (sb === 0) continue;
        let acc = 0;
        for (let p = kb * block; p < p1; p++) acc += a.codes[i * k + p] * b.codes[p * n + j];
        out[i * n + j] += sa * sb * acc;
      }
    }
  }
  return { data: out, rows: m, cols: n };
}
