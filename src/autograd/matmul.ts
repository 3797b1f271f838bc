/**
 * Batched matrix product over the last two axes, with the leading (batch) axes broadcast as NumPy's
 * `matmul`. For C = A·B: ∂L/∂A = ∂L/∂C·Bᵀ and ∂L/∂B = Aᵀ·∂L/∂C per batch, summed over the batches
 * that shared an operand.
 */
import { formatShape, shapeSize } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { broadcastIndex, broadcastShapes, f64 } from './broadcast.js';
import type { Var } from './var.js';

interface Layout {
  m: number;
  k: number;
  n: number;
  batchA: Int32Array;
  batchB: Int32Array;
}

/**
 * out[oc + i·n + j] += Σ_p a[oa + i·k + p]·b[ob + p·n + j] for row-major A [m, k], B [k, n]. Blocked 2×4
 * so each loaded element of A and B feeds several products held in locals (≈ 3× the plain triple loop in
 * V8); every dot product is summed over p in ascending order from 0, so the result is bit-identical to
 * the plain loop's.
 */
function gemmAccumulate(
  a: Float64Array,
  oa: number,
  b: Float64Array,
  ob: number,
  out: Float64Array,
  oc: number,
  m: number,
  k: number,
  n: number,
): void {
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const a0 = oa + i * k;
    const a1 = a0 + k;
    const c0 = oc + i * n;
    const c1 = c0 + n;
    let j = 0;
    for (; j + 3 < n; j += 4) {
      let s00 = 0,
        s01 = 0,
        s02 = 0,
        s03 = 0,
        s10 = 0,
        s11 = 0,
        s12 = 0,
        s13 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = a[a0 + p];
        const x1 = a[a1 + p];
        const bp = ob + p * n + j;
        const b0 = b[bp],
          b1 = b[bp + 1],
          b2 = b[bp + 2],
          b3 = b[bp + 3];
        s00 += x0 * b0;
        s01 += x0 * b1;
        s02 += x0 * b2;
        s03 += x0 * b3;
        s10 += x1 * b0;
        s11 += x1 * b1;
        s12 += x1 * b2;
        s13 += x1 * b3;
      }
      out[c0 + j] += s00;
      out[c0 + j + 1] += s01;
      out[c0 + j + 2] += s02;
      out[c0 + j + 3] += s03;
      out[c1 + j] += s10;
      out[c1 + j + 1] += s11;
      out[c1 + j + 2] += s12;
      out[c1 + j + 3] += s13;
    }
    for (; j < n; j++) {
      let s0 = 0,
        s1 = 0;
      for (let p = 0; p < k; p++) {
        const bpj = b[ob + p * n + j];
        s0 += a[a0 + p] * bpj;
        s1 += a[a1 + p] * bpj;
      }
      out[c0 + j] += s0;
      out[c1 + j] += s1;
    }
  }
  for (; i < m; i++) {
    const a0 = oa + i * k;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[a0 + p] * b[ob + p * n + j];
      out[oc + i * n + j] += s;
    }
  }
}

/** Each [rows, cols] matrix of a batch-major buffer, transposed to [cols, rows]. */
function transposeBatches(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  const size = rows * cols;
  for (let o = 0; o < x.length; o += size) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[o + c * rows + r] = x[o + r * cols + c];
  }
  return out;
}

registerOp<undefined>('matmul', 'cpu', {
  forward([a, b]) {
    if (a.shape.length < 2 || b.shape.length < 2) {
      throw new ShapeError(
        `matmul needs rank ≥ 2 operands; got ${formatShape(a.shape)} and ${formatShape(b.shape)}`,
      );
    }
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k !== k2) {
      throw new ShapeError(
        `matmul inner dimensions differ: ${formatShape(a.shape)} · ${formatShape(b.shape)} (${k} vs ${k2})`,
      );
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batchA = broadcastIndex(batch, a.shape.slice(0, -2));
    const batchB = broadcastIndex(batch, b.shape.slice(0, -2));
    const out = new Float64Array(shapeSize(batch) * m * n);
    const ad = a.data as Float64Array;
    const bd = b.data as Float64Array;
    for (let t = 0; t < batchA.length; t++) {
      gemmAccumulate(ad, batchA[t] * m * k, bd, batchB[t] * k * n, out, t * m * n, m, k, n);
    }
    const saved: Layout = { m, k, n, batchA, batchB };
    return { out: f64(out, [...batch, m, n]), saved };
  },
  backward(g, { inputs: [a, b], saved, needs }) {
    const { m, k, n, batchA, batchB } = saved as Layout;
    const ga = needs[0] ? new Float64Array(a.size) : null;
    const gb = needs[1] ? new Float64Array(b.size) : null;
    const gd = g.data as Float64Array;
    // ∂A = G·Bᵀ and ∂B = Aᵀ·G through the same blocked kernel, on transposed copies of the operands.
    const bt = ga === null ? null : transposeBatches(b.data as Float64Array, k, n);
    const at = gb === null ? null : transposeBatches(a.data as Float64Array, m, k);
    const gt = gb === null ? null : transposeBatches(gd, m, n);
    for (let t = 0; t < batchA.length; t++) {
      const oa = batchA[t] * m * k;
      const ob = batchB[t] * k * n;
      const og = t * m * n;
      if (ga !== null && bt !== null) gemmAccumulate(gd, og, bt, ob, ga, oa, m, n, k);
      if (gb !== null && at !== null && gt !== null) gemmAccumulate(at, oa, gd, og, gb, ob, k, m, n);
    }
    return [ga === null ? null : f64(ga, a.shape), gb === null ? null : f64(gb, b.shape)];
  },
});

/** A·B over the last two axes: [..., m, k] · [..., k, n] → [broadcast batch..., m, n]. */
export function matmul(a: Var, b: Var): Var {
  return applyOp('matmul', [a, b], undefined);
}
