/**
 * `Var`: a float64 value that remembers how it was made. A Var made by an op holds the op's name, its
 * input Vars and a closure that maps the output gradient to input gradients; `backward` walks these
 * links in reverse topological order (micrograd's design: the graph is the tape).
 *
 * Values and gradients are float64 host tensors: this layer is the CPU oracle that quantized training
 * is measured against, so it keeps full precision. float32 inputs are widened on entry.
 */
import { Tensor, type Shape, formatShape } from '../core/tensor.js';
import { DTypeError } from '../core/errors.js';

export type F64 = Tensor<'float64'>;

/** Maps the gradient of an op's output to one gradient per input (null where an input needs none). */
export type BackwardFn = (grad: F64) => (F64 | null)[];

export interface Node {
  readonly op: string;
  readonly inputs: readonly Var[];
  readonly backward: BackwardFn;
}

let gradEnabled = true;

/** Whether ops called now record their inputs for `backward`. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording: Vars it makes have no node and need no gradient. */
export function noGrad<T>(fn: () => T): T {
  const saved = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = saved;
  }
}

/** A float64 tensor as is; float32/float64 host tensors otherwise widened (a copy). */
export function toF64(t: Tensor): F64 {
  if (t.dtype === 'float64') return t as F64;
  if (t.dtype !== 'float32') {
    throw new DTypeError(
      `autograd values are float32 or float64 tensors; got ${t.dtype}. Convert with toFloat64().`,
    );
  }
  return new Tensor(t.toFloat64(), t.shape, 'float64');
}

export class Var {
  readonly value: F64;
  /** Accumulated d(loss)/d(this) after `backward`, for Vars with `requiresGrad`; null before. */
  grad: F64 | null = null;
  readonly requiresGrad: boolean;
  /** How this Var was made; null for leaves (parameters, constants) and for Vars made under noGrad. */
  readonly node: Node | null;

  constructor(value: Tensor, requiresGrad = false, node: Node | null = null) {
    this.value = toF64(value);
    this.requiresGrad = requiresGrad;
    this.node = node;
  }

  get shape(): Shape {
    return this.value.shape;
  }

  /** The single value of a one-element Var (a loss). */
  item(): number {
    if (this.value.size !== 1)
      throw new DTypeError(`item() needs a one-element Var; shape is ${formatShape(this.shape)}`);
    return this.value.data[0];
  }

  /** Same value, cut from the graph: gradients do not flow through the result. */
  detach(): Var {
    return new Var(this.value);
  }

  zeroGrad(): void {
    this.grad = null;
  }
}

/** A leaf whose gradient `backward` accumulates (a trainable parameter). */
export function param(value: Tensor): Var {
  return new Var(value, true);
}

/** A leaf that needs no gradient (data, targets, masks). */
export function constant(value: Tensor): Var {
  return new Var(value, false);
}

/** Same value as `x`, cut from the graph. */
export function detach(x: Var): Var {
  return x.detach();
}
