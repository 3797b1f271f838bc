/**
 * Softmax and log-softmax along the last axis, computed max-shifted so exp never overflows.
 * With y = softmax(x): ∂L/∂x = y ⊙ (g − Σ g⊙y). With y = log softmax(x) = x − logΣexp x:
 * ∂L/∂x = g − softmax(x)·Σ g (sums along the last axis).
 */
import { formatShape } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { f64 } from './broadcast.js';
import type { F64, Var } from './var.js';

/** Row-wise log-softmax of a [rows, n] view of `x` (n = last dimension). */
export function logSoftmaxRows(x: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += n) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, x[r + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[r + j] - max);
    const lse = max + Math.log(s);
    for (let j = 0; j < n; j++) out[r + j] = x[r + j] - lse;
  }
  return out;
}

function lastDim(x: F64, op: string): number {
  if (x.shape.length === 0) throw new ShapeError(`${op} needs rank ≥ 1; got shape ${formatShape(x.shape)}`);
  return x.shape[x.shape.length - 1];
}

registerOp<undefined>('softmax', 'cpu', {
  forward([x]) {
    const y = logSoftmaxRows(x.data, lastDim(x, 'softmax')).map(Math.exp);
    return { out: f64(y, x.shape) };
  },
  backward(g, { out: y }) {
    const n = lastDim(y, 'softmax');
    const gx = new Float64Array(y.size);
    for (let r = 0; r < y.size; r += n) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += g.data[r + j] * y.data[r + j];
      for (let j = 0; j < n; j++) gx[r + j] = y.data[r + j] * (g.data[r + j] - dot);
    }
    return [f64(gx, y.shape)];
  },
});

registerOp<undefined>('log_softmax', 'cpu', {
  forward([x]) {
    return { out: f64(logSoftmaxRows(x.data, lastDim(x, 'logSoftmax')), x.shape) };
  },
  backward(g, { out: y }) {
    const n = lastDim(y, 'logSoftmax');
    const gx = new Float64Array(y.size);
    for (let r = 0; r < y.size; r += n) {
      let gs = 0;
      for (let j = 0; j < n; j++) gs += g.data[r + j];
      for (let j = 0; j < n; j++) gx[r + j] = g.data[r + j] - Math.exp(y.data[r + j]) * gs;
    }
    return [f64(gx, y.shape)];
  },
});

export function softmax(x: Var): Var {
  return applyOp('softmax', [x], undefined);
}

export function logSoftmax(x: Var): Var {
  return applyOp('log_softmax', [x], undefined);
}
