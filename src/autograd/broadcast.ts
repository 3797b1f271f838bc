/**
 * NumPy broadcasting (numpy.org/doc/stable/user/basics.broadcasting.html): shapes are aligned at
 * their last axis; each pair of dimensions must be equal or one of them 1, and the result takes the
 * larger. Forward reads an input at the broadcast index; backward sums the output gradient over every
 * axis the input was broadcast along, back to the input's shape.
 */
import { Tensor, type Shape, formatShape, shapeSize } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import type { F64 } from './var.js';

export function f64(data: Float64Array, shape: Shape): F64 {
  return new Tensor(data, shape, 'float64');
}

export function broadcastShapes(a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (axis ${i - rank}: ${da} vs ${db})`,
      );
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** For each flat index of `outShape`, the flat index of the element of `inShape` broadcast there. */
export function broadcastIndex(outShape: Shape, inShape: Shape): Int32Array {
  const rank = outShape.length;
  const offset = rank - inShape.length;
  // Stride 0 along broadcast axes makes every position along them read the same input element.
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    if (inShape[i] !== 1) strides[i + offset] = s;
    s *= inShape[i];
  }
  const n = shapeSize(outShape);
  const map = new Int32Array(n);
  const idx = new Array<number>(rank).fill(0);
  let flat = 0;
  for (let k = 0; k < n; k++) {
    map[k] = flat;
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]++;
      flat += strides[ax];
      if (idx[ax] < outShape[ax]) break;
      flat -= strides[ax] * outShape[ax];
      idx[ax] = 0;
    }
  }
  return map;
}

/** Sums `grad` (of the broadcast shape) over the axes along which `shape` was broadcast. */
export function reduceToShape(grad: F64, shape: Shape): F64 {
  if (grad.shape.length === shape.length && grad.shape.every((d, i) => d === shape[i])) return grad;
  const map = broadcastIndex(grad.shape, shape);
  const out = new Float64Array(shapeSize(shape));
  for (let k = 0; k < map.length; k++) out[map[k]] += grad.data[k];
  return f64(out, shape);
}
