/**
 * Sum and mean over axes. The output gradient is broadcast back over the reduced axes (each input
 * element contributed once, so ∂sum/∂xᵢ = 1 and ∂mean/∂xᵢ = 1/n).
 */
import { type Shape, formatShape, shapeSize } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { broadcastIndex, f64 } from './broadcast.js';
import type { Var } from './var.js';

export interface ReduceOptions {
  /** Keep reduced axes as size 1 (default false). */
  keepdim?: boolean;
}

interface ReduceAttrs {
  axes: number[];
  keepdim: boolean;
  mean: boolean;
}

/** Axes normalised to [0, rank), sorted and unique; all axes when `axes` is undefined. */
export function normalizeAxes(axes: number | readonly number[] | undefined, shape: Shape): number[] {
  const rank = shape.length;
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new ShapeError(`axis ${a} is out of range for shape ${formatShape(shape)}`);
    }
    return a < 0 ? a + rank : a;
  });
  return [...new Set(out)].sort((a, b) => a - b);
}

for (const name of ['sum', 'mean']) {
  registerOp<ReduceAttrs>(name, 'cpu', {
    forward([x], { axes, keepdim, mean }) {
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const map = broadcastIndex(x.shape, kept);
      const out = new Float64Array(shapeSize(kept));
      for (let k = 0; k < map.length; k++) out[map[k]] += x.data[k];
      if (mean) {
        const n = x.size / out.length;
        for (let i = 0; i < out.length; i++) out[i] /= n;
      }
      const shape = keepdim ? kept : x.shape.filter((_, i) => !axes.includes(i));
      return { out: f64(out, shape), saved: map };
    },
    backward(g, { inputs: [x], saved, attrs: { mean } }) {
      const map = saved as Int32Array;
      const scale = mean ? g.size / x.size : 1;
      const gx = new Float64Array(x.size);
      for (let k = 0; k < gx.length; k++) gx[k] = g.data[map[k]] * scale;
      return [f64(gx, x.shape)];
    },
  });
}

/** Σ over `axes` (all when omitted). */
export function sum(x: Var, axes?: number | readonly number[], opts: ReduceOptions = {}): Var {
  return applyOp<ReduceAttrs>('sum', [x], {
    axes: normalizeAxes(axes, x.shape),
    keepdim: opts.keepdim ?? false,
    mean: false,
  });
}

/** Arithmetic mean over `axes` (all when omitted). */
export function mean(x: Var, axes?: number | readonly number[], opts: ReduceOptions = {}): Var {
  return applyOp<ReduceAttrs>('mean', [x], {
    axes: normalizeAxes(axes, x.shape),
    keepdim: opts.keepdim ?? false,
    mean: true,
  });
}
