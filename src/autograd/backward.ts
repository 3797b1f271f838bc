/**
 * Reverse mode: d(loss)/d(v) for every Var `loss` depends on, by the chain rule applied to the graph
 * in reverse topological order, so a node's gradient is complete (summed over all its uses) before it
 * is passed on. Leaves with `requiresGrad` accumulate into `.grad` across calls, as in PyTorch; call
 * `zeroGrad()` between steps.
 */
import { Tensor, formatShape, shapeSize } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { type F64, Var, toF64 } from './var.js';

/**
 * Backpropagates from `loss`. A one-element loss is seeded with 1; any other needs `gradOutput`
 * (its shape), which computes the vector–Jacobian product gradOutputᵀ·∂loss/∂x.
 */
export function backward(loss: Var, gradOutput?: Tensor): void {
  let seed: F64;
  if (gradOutput === undefined) {
    if (loss.value.size !== 1) {
      throw new ShapeError(
        `backward() without gradOutput needs a one-element loss; shape is ${formatShape(loss.shape)}`,
      );
    }
    seed = new Tensor(new Float64Array([1]), loss.shape, 'float64');
  } else {
    seed = toF64(gradOutput);
    if (!sameShape(seed.shape, loss.shape)) {
      throw new ShapeError(
        `gradOutput shape ${formatShape(seed.shape)} differs from loss shape ${formatShape(loss.shape)}`,
      );
    }
  }
  if (!loss.requiresGrad) return;
  const grads = new Map<Var, F64>([[loss, seed]]);
  for (const v of reverseTopologicalOrder(loss)) {
    const g = grads.get(v);
    if (g === undefined) continue;
    if (v.node === null) {
      v.grad = v.grad === null ? g : addInto(v.grad, g);
      continue;
    }
    const inputGrads = v.node.backward(g);
    v.node.inputs.forEach((input, i) => {
      const gi = inputGrads[i];
      if (!input.requiresGrad || gi === null) return;
      if (!sameShape(gi.shape, input.shape)) {
        throw new ShapeError(
          `op '${v.node?.op}' returned a gradient of shape ${formatShape(gi.shape)} for an input of shape ${formatShape(input.shape)}`,
        );
      }
      const prev = grads.get(input);
      grads.set(input, prev === undefined ? gi : addInto(prev, gi));
    });
  }
}

/** Vars reachable from `root` that need a gradient, each after every Var that consumes it. */
function reverseTopologicalOrder(root: Var): Var[] {
  const order: Var[] = [];
  const seen = new Set<Var>();
  // Iterative post-order DFS: deep graphs (long training loops unrolled) would overflow recursion.
  const stack: [Var, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [v, next] = top;
    const inputs = v.node?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const child = inputs[next];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(v);
      stack.pop();
    }
  }
  return order.reverse();
}

/** a + b as a fresh tensor (neither argument is mutated: gradients may be shared between Vars). */
function addInto(a: F64, b: F64): F64 {
  const out = new Float64Array(shapeSize(a.shape));
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] + b.data[i];
  return new Tensor(out, a.shape, 'float64');
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
