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

/**
 * op(A)·op(B), where op transposes when the flag is set; op(A) is m×k and op(B) is k×n.
 *
 * One kernel over strides serves all four transpositions: element (i, p) of op(A) is
 * a[i·sai + p·sap] and element (p, j) of op(B) is b[p·sbp + j·sbj]. It is blocked 2×4 — each
 * loaded element of op(A) and op(B) feeds several products held in locals — which runs the
 * transformer experiments' GEMMs about 3× faster in V8 than the plain triple loop. Every output is
 * one sum over p in ascending order starting from 0, so the result does not depend on the
 * blocking.
 */
export function gemm(a: Matrix, transA: boolean, b: Matrix, transB: boolean): Matrix {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const [sai, sap] = transA ? [1, a.cols] : [a.cols, 1];
  const [sbp, sbj] = transB ? [1, b.cols] : [b.cols, 1];
  const A = a.data;
  const B = b.data;
  const out = new Float64Array(m * n);
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const a0 = i * sai;
    const a1 = a0 + sai;
    let j = 0;
    for (; j + 3 < n; j += 4) {
      const b0 = j * sbj;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = A[a0 + p * sap];
        const x1 = A[a1 + p * sap];
        const q = b0 + p * sbp;
        const y0 = B[q];
        const y1 = B[q + sbj];
        const y2 = B[q + 2 * sbj];
        const y3 = B[q + 3 * sbj];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      const o0 = i * n + j;
      const o1 = o0 + n;
      out[o0] = s00;
      out[o0 + 1] = s01;
      out[o0 + 2] = s02;
      out[o0 + 3] = s03;
      out[o1] = s10;
      out[o1 + 1] = s11;
      out[o1 + 2] = s12;
      out[o1 + 3] = s13;
    }
    for (; j < n; j++) {
      let s0 = 0;
      let s1 = 0;
      for (let p = 0; p < k; p++) {
        const y = B[p * sbp + j * sbj];
        s0 += A[a0 + p * sap] * y;
        s1 += A[a1 + p * sap] * y;
      }
      out[i * n + j] = s0;
      out[(i + 1) * n + j] = s1;
    }
  }
  for (; i < m; i++) {
    const a0 = i * sai;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += A[a0 + p * sap] * B[p * sbp + j * sbj];
      out[i * n + j] = s;
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
