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
    for (let t = 0; t < batchA.length; t++) {
      const oa = batchA[t] * m * k;
      const ob = batchB[t] * k * n;
      const oc = t * m * n;
      for (let i = 0; i < m; i++) {
        for (let p = 0; p < k; p++) {
          const aip = a.data[oa + i * k + p];
          for (let j = 0; j < n; j++) out[oc + i * n + j] += aip * b.data[ob + p * n + j];
        }
      }
    }
    const saved: Layout = { m, k, n, batchA, batchB };
    return { out: f64(out, [...batch, m, n]), saved };
  },
  backward(g, { inputs: [a, b], saved, needs }) {
    const { m, k, n, batchA, batchB } = saved as Layout;
    const ga = needs[0] ? new Float64Array(a.size) : null;
    const gb = needs[1] ? new Float64Array(b.size) : null;
    for (let t = 0; t < batchA.length; t++) {
      const oa = batchA[t] * m * k;
      const ob = batchB[t] * k * n;
      const og = t * m * n;
      for (let i = 0; i < m; i++) {
        for (let p = 0; p < k; p++) {
          let acc = 0;
          const aip = a.data[oa + i * k + p];
          for (let j = 0; j < n; j++) {
            const gij = g.data[og + i * n + j];
            acc += gij * b.data[ob + p * n + j];
            if (gb !== null) gb[ob + p * n + j] += aip * gij;
          }
          if (ga !== null) ga[oa + i * k + p] += acc;
        }
      }
    }
    return [ga === null ? null : f64(ga, a.shape), gb === null ? null : f64(gb, b.shape)];
  },
});

/** A·B over the last two axes: [..., m, k] · [..., k, n] → [broadcast batch..., m, n]. */
export function matmul(a: Var, b: Var): Var {
  return applyOp('matmul', [a, b], undefined);
}
