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
  // Codes widened to float64 once; per k-block the integer dot products are exact in float64 in
  // any order, so the 2×4 register blocking below gives the same bits as one dot product per
  // element (and about 3× its speed in V8).
  const A = Float64Array.from(a.codes);
  const B = Float64Array.from(b.codes);
  const colBlock = Int32Array.from({ length: n }, (_, j) => Math.floor(j / block));
  const sa = a.scales;
  const sb = b.scales;
  const dot1 = (i: number, j: number, p0: number, p1: number): number => {
    let s = 0;
    for (let p = p0; p < p1; p++) s += A[i * k + p] * B[p * n + j];
    return s;
  };
  for (let kb = 0; kb < gridA; kb++) {
    const p0 = kb * block;
    const p1 = Math.min(k, p0 + block);
    const sbRow = kb * gridB;
    let i = 0;
    for (; i + 1 < m; i += 2) {
      const s0 = sa[Math.floor(i / block) * gridA + kb];
      const s1 = sa[Math.floor((i + 1) / block) * gridA + kb];
      if (s0 === 0 && s1 === 0) continue;
      const a0 = i * k;
      const a1 = a0 + k;
      let j = 0;
      for (; j + 3 < n; j += 4) {
        let c00 = 0;
        let c01 = 0;
        let c02 = 0;
        let c03 = 0;
        let c10 = 0;
        let c11 = 0;
        let c12 = 0;
        let c13 = 0;
        for (let p = p0; p < p1; p++) {
          const x0 = A[a0 + p];
          const x1 = A[a1 + p];
          const q = p * n + j;
          const y0 = B[q];
          const y1 = B[q + 1];
          const y2 = B[q + 2];
          const y3 = B[q + 3];
          c00 += x0 * y0;
          c01 += x0 * y1;
          c02 += x0 * y2;
          c03 += x0 * y3;
          c10 += x1 * y0;
          c11 += x1 * y1;
          c12 += x1 * y2;
          c13 += x1 * y3;
        }
        const t0 = sb[sbRow + colBlock[j]];
        const t1 = sb[sbRow + colBlock[j + 1]];
        const t2 = sb[sbRow + colBlock[j + 2]];
        const t3 = sb[sbRow + colBlock[j + 3]];
        const o0 = i * n + j;
        const o1 = o0 + n;
        // A zero scale marks an all-zero block (e.g. a residual outside its fallback blocks): skip it
        // so its (zero) contribution is not even added.
        if (s0 !== 0) {
          if (t0 !== 0) out[o0] += s0 * t0 * c00;
          if (t1 !== 0) out[o0 + 1] += s0 * t1 * c01;
          if (t2 !== 0) out[o0 + 2] += s0 * t2 * c02;
          if (t3 !== 0) out[o0 + 3] += s0 * t3 * c03;
        }
        if (s1 !== 0) {
          if (t0 !== 0) out[o1] += s1 * t0 * c10;
          if (t1 !== 0) out[o1 + 1] += s1 * t1 * c11;
          if (t2 !== 0) out[o1 + 2] += s1 * t2 * c12;
          if (t3 !== 0) out[o1 + 3] += s1 * t3 * c13;
        }
      }
      for (; j < n; j++) {
        const t = sb[sbRow + colBlock[j]];
        if (t === 0) continue;
        if (s0 !== 0) out[i * n + j] += s0 * t * dot1(i, j, p0, p1);
        if (s1 !== 0) out[(i + 1) * n + j] += s1 * t * dot1(i + 1, j, p0, p1);
      }
    }
    for (; i < m; i++) {
      const s0 = sa[Math.floor(i / block) * gridA + kb];
      if (s0 === 0) continue;
      for (let j = 0; j < n; j++) {
        const t = sb[sbRow + colBlock[j]];
        if (t !== 0) out[i * n + j] += s0 * t * dot1(i, j, p0, p1);
      }
    }
  }
  return { data: out, rows: m, cols: n };
}
