/**
 * Cross-entropy from logits with integer class targets, mean over the rows whose target is not
 * `ignoreIndex`: L = −(1/N) Σᵣ log softmax(xᵣ)[tᵣ]. Backward: ∂L/∂xᵣ = (softmax(xᵣ) − onehot(tᵣ))/N
 * for counted rows, 0 for ignored ones. With every row ignored N = 0 and L is NaN, as PyTorch.
 */
import { formatShape } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { f64 } from './broadcast.js';
import { logSoftmaxRows } from './softmax.js';
import type { Var } from './var.js';

export interface CrossEntropyOptions {
  /** Rows with this target contribute neither loss nor gradient (PyTorch's default is −100). */
  ignoreIndex?: number;
}

interface Attrs {
  targets: ArrayLike<number>;
  ignoreIndex: number | undefined;
}

registerOp<Attrs>('cross_entropy', 'cpu', {
  forward([x], { targets, ignoreIndex }) {
    const c = x.shape[x.shape.length - 1];
    const logp = logSoftmaxRows(x.data, c);
    let total = 0;
    let count = 0;
    for (let r = 0; r < targets.length; r++) {
      if (targets[r] === ignoreIndex) continue;
      total -= logp[r * c + targets[r]];
      count++;
    }
    return { out: f64(new Float64Array([total / count]), []), saved: { logp, count } };
  },
  backward(g, { inputs: [x], saved, attrs: { targets, ignoreIndex } }) {
    const { logp, count } = saved as { logp: Float64Array; count: number };
    const c = x.shape[x.shape.length - 1];
    const scale = g.data[0] / count;
    const gx = new Float64Array(x.size);
    for (let r = 0; r < targets.length; r++) {
      if (targets[r] === ignoreIndex) continue;
      for (let j = 0; j < c; j++) gx[r * c + j] = Math.exp(logp[r * c + j]) * scale;
      gx[r * c + targets[r]] -= scale;
    }
    return [f64(gx, x.shape)];
  },
});

/** Mean cross-entropy of logits [..., C] against one integer target per row (targets.length = rows). */
export function crossEntropy(logits: Var, targets: ArrayLike<number>, opts: CrossEntropyOptions = {}): Var {
  const shape = logits.shape;
  if (shape.length === 0)
    throw new ShapeError(`crossEntropy needs logits of rank ≥ 1; got ${formatShape(shape)}`);
  const c = shape[shape.length - 1];
  const rows = logits.value.size / c;
  if (targets.length !== rows) {
    throw new ShapeError(
      `crossEntropy: logits ${formatShape(shape)} have ${rows} rows; got ${targets.length} targets`,
    );
  }
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t !== opts.ignoreIndex && !(Number.isInteger(t) && t >= 0 && t < c)) {
      throw new ShapeError(`crossEntropy: target ${r} is ${t}; classes are 0..${c - 1}`);
    }
  }
  return applyOp<Attrs>('cross_entropy', [logits], { targets, ignoreIndex: opts.ignoreIndex });
}
