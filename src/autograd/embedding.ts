/**
 * Embedding lookup: out[i] = weight[ids[i]]. Backward scatter-adds each output row's gradient into
 * the row it was read from, so a token id used twice receives both gradients.
 */
import { type Shape, formatShape, shapeSize } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { f64 } from './broadcast.js';
import type { Var } from './var.js';

interface Attrs {
  ids: ArrayLike<number>;
  idsShape: Shape;
}

registerOp<Attrs>('embedding', 'cpu', {
  forward([w], { ids, idsShape }) {
    const d = w.shape[1];
    const out = new Float64Array(ids.length * d);
    for (let i = 0; i < ids.length; i++) out.set(w.data.subarray(ids[i] * d, ids[i] * d + d), i * d);
    return { out: f64(out, [...idsShape, d]) };
  },
  backward(g, { inputs: [w], attrs: { ids } }) {
    const d = w.shape[1];
    const gw = new Float64Array(w.size);
    for (let i = 0; i < ids.length; i++) {
      for (let j = 0; j < d; j++) gw[ids[i] * d + j] += g.data[i * d + j];
    }
    return [f64(gw, w.shape)];
  },
});

/** Rows of `weight` [V, D] at integer `ids` (shape `idsShape`, default [ids.length]) → [...idsShape, D]. */
export function embedding(weight: Var, ids: ArrayLike<number>, idsShape: Shape = [ids.length]): Var {
  if (weight.shape.length !== 2)
    throw new ShapeError(`embedding weight must be [V, D]; got ${formatShape(weight.shape)}`);
  if (shapeSize(idsShape) !== ids.length) {
    throw new ShapeError(`embedding: ids shape ${formatShape(idsShape)} does not hold ${ids.length} ids`);
  }
  const v = weight.shape[0];
  for (let i = 0; i < ids.length; i++) {
    if (!(Number.isInteger(ids[i]) && ids[i] >= 0 && ids[i] < v)) {
      throw new ShapeError(`embedding: id ${i} is ${ids[i]}; the table has rows 0..${v - 1}`);
    }
  }
  return applyOp<Attrs>('embedding', [weight], { ids, idsShape });
}
