/**
 * Row-major float64 matrices and the plain GEMMs the linear layer's fp32 mode and fake-quantized
 * MXFP4 mode use. Kept separate from the autograd `matmul` op because these run inside one op's
 * forward/backward and must not record anything.
 */
export interface Matrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** op(A)·op(B), where op transposes when the flag is set; op(A) is m×k and op(B) is k×n. */
export function gemm(a: Matrix, transA: boolean, b: Matrix, transB: boolean): Matrix {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const out = new Float64Array(m * n);
  const [aRow, aCol] = transA ? [1, a.cols] : [a.cols, 1];
  const [bRow, bCol] = transB ? [1, b.cols] : [b.cols, 1];
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a.data[i * aRow + p * aCol];
      if (aip === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aip * b.data[p * bRow + j * bCol];
    }
  }
  return { data: out, rows: m, cols: n };
}

/** Sums of each column (the bias gradient: ∂L/∂b = Σ_tokens ∂L/∂Y). */
export function columnSums(a: Matrix): Float64Array {
  const out = new Float64Array(a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j] += a.data[i * a.cols + j];
  return out;
}
