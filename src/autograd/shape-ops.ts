/** Reshape and axis permutation: pure data movement, so backward applies the inverse movement. */
import { type Shape, formatShape, shapeSize } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { f64 } from './broadcast.js';
import type { Var } from './var.js';

registerOp<{ shape: Shape }>('reshape', 'cpu', {
  forward([x], { shape }) {
    return { out: f64(Float64Array.from(x.data), shape) };
  },
  backward(g, { inputs: [x] }) {
    return [f64(Float64Array.from(g.data), x.shape)];
  },
});

/** Same elements in row-major order, new shape; one dimension may be −1 (inferred). */
export function reshape(x: Var, shape: readonly number[]): Var {
  const known = shape.filter((d) => d !== -1);
  const free = shape.length - known.length;
  const knownSize = shapeSize(known);
  const resolved = shape.map((d) => (d === -1 ? x.value.size / knownSize : d));
  if (
    free > 1 ||
    !resolved.every((d) => Number.isInteger(d) && d >= 0) ||
    shapeSize(resolved) !== x.value.size
  ) {
    throw new ShapeError(
      `cannot reshape ${formatShape(x.shape)} (${x.value.size} elements) to ${formatShape(shape)}`,
    );
  }
  return applyOp('reshape', [x], { shape: resolved });
}

/** out[i₀…] = x[i at perm]: output axis j is input axis perm[j]. */
function permuteData(
  data: Float64Array,
  shape: Shape,
  perm: readonly number[],
): { data: Float64Array; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float64Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let k = 0; k < out.length; k++) {
    out[k] = data[src];
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]++;
      src += strides[ax];
      if (idx[ax] < outShape[ax]) break;
      src -= strides[ax] * outShape[ax];
      idx[ax] = 0;
    }
  }
  return { data: out, shape: outShape };
}

registerOp<{ perm: number[] }>('permute', 'cpu', {
  forward([x], { perm }) {
    const r = permuteData(x.data as Float64Array, x.shape, perm);
    return { out: f64(r.data, r.shape) };
  },
  backward(g, { attrs: { perm } }) {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, j) => (inverse[p] = j));
    const r = permuteData(g.data as Float64Array, g.shape, inverse);
    return [f64(r.data, r.shape)];
  },
});

/** Reorders axes: output axis j is input axis perm[j] (negative axes count from the end). */
export function permute(x: Var, perm: readonly number[]): Var {
  const rank = x.shape.length;
  const p = perm.map((a) => (a < 0 ? a + rank : a));
  if (
    p.length !== rank ||
    !p.every((a) => Number.isInteger(a) && a >= 0 && a < rank) ||
    new Set(p).size !== rank
  ) {
    throw new ShapeError(
      `permutation ${formatShape(perm)} does not reorder the ${rank} axes of ${formatShape(x.shape)}`,
    );
  }
  return applyOp('permute', [x], { perm: p });
}

/** Swaps two axes (default the last two, as a matrix transpose). */
export function transpose(x: Var, axis0 = -2, axis1 = -1): Var {
  const rank = x.shape.length;
  const a = axis0 < 0 ? axis0 + rank : axis0;
  const b = axis1 < 0 ? axis1 + rank : axis1;
  if (!(a >= 0 && a < rank && b >= 0 && b < rank)) {
    throw new ShapeError(
      `transpose axes ${axis0}, ${axis1} are out of range for shape ${formatShape(x.shape)}`,
    );
  }
  const perm = [...Array(rank).keys()];
  perm[a] = b;
  perm[b] = a;
  return applyOp('permute', [x], { perm });
}
