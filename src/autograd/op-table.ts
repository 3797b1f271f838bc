/**
 * The op table: op name → backend → implementation. Ops call `applyOp(name, inputs, attrs)`; the
 * table picks the implementation for the active backend (falling back to `cpu`), runs its forward and,
 * when recording, wraps its backward in the output's node. The tape never sees a backend, so a WebGPU
 * kernel is added by registering it:
 *
 *   registerOp('matmul', 'webgpu', { forward: …, backward: … });
 *   withBackend('webgpu', () => loss = model(x));   // matmul runs the WebGPU entry; others fall back
 *
 * An implementation is first order: its backward maps tensors to tensors, it does not record ops.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { type F64, Var, isGradEnabled } from './var.js';

export interface OpResult {
  readonly out: F64;
  /** Whatever the backward needs beyond inputs and output (e.g. a softmax, a normaliser). */
  readonly saved?: unknown;
}

export interface OpImpl<A = unknown> {
  forward(inputs: readonly F64[], attrs: A): OpResult;
  /**
   * One gradient per input, each of the input's shape (null if that input needs none).
   * `needs[i]` says whether input i requires a gradient, so work for the others can be skipped.
   */
  backward(
    grad: F64,
    ctx: { inputs: readonly F64[]; out: F64; saved: unknown; attrs: A; needs: boolean[] },
  ): (F64 | null)[];
}

const table = new Map<string, Map<string, OpImpl<never>>>();
let activeBackend = 'cpu';

/** Registers (or replaces) `name`'s implementation on `backend`. */
export function registerOp<A>(name: string, backend: string, impl: OpImpl<A>): void {
  let byBackend = table.get(name);
  if (byBackend === undefined) table.set(name, (byBackend = new Map()));
  byBackend.set(backend, impl as OpImpl<never>);
}

/** The implementation `applyOp` would use now: the active backend's if registered, else `cpu`'s. */
export function lookupOp(name: string): OpImpl<unknown> {
  const byBackend = table.get(name);
  const impl = byBackend?.get(activeBackend) ?? byBackend?.get('cpu');
  if (impl === undefined) throw new UnsupportedOptionError(`no autograd op named '${name}' is registered`);
  return impl as OpImpl<unknown>;
}

/** Backends with an implementation of `name`. */
export function opBackends(name: string): string[] {
  return [...(table.get(name)?.keys() ?? [])];
}

/** Runs `fn` with `backend` preferred for every op that has an implementation there. */
export function withBackend<T>(backend: string, fn: () => T): T {
  const saved = activeBackend;
  activeBackend = backend;
  try {
    return fn();
  } finally {
    activeBackend = saved;
  }
}

/** Runs op `name` on `inputs`; the result records the op when grad is enabled and an input needs one. */
export function applyOp<A>(name: string, inputs: readonly Var[], attrs: A): Var {
  const impl = lookupOp(name) as OpImpl<A>;
  const values = inputs.map((v) => v.value);
  const { out, saved } = impl.forward(values, attrs);
  const needs = inputs.map((v) => v.requiresGrad);
  if (!isGradEnabled() || !needs.some(Boolean)) return new Var(out);
  return new Var(out, true, {
    op: name,
    inputs,
    backward: (grad) => impl.backward(grad, { inputs: values, out, saved, attrs, needs }),
  });
}
