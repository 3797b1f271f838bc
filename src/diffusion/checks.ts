/**
 * Argument checks shared by the diffusion layer. Every check throws a typed error whose message says
 * what was expected, what was given and what to do: a noise level, guidance weight or step count out
 * of range is an `UnsupportedOptionError`; NaN or ±inf in a batch (data, initial noise or a network's
 * output fed back into a sampler) is a `NonFiniteInputError`; a batch of the wrong shape is a
 * `ShapeError`.
 */
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { type Tensor, formatShape } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';

/** `x` is a finite number in [lo, hi] (either bound open when `open` says so). */
export function checkInRange(
  name: string,
  x: number,
  lo: number,
  hi: number,
  open: { lo?: boolean; hi?: boolean } = {},
): void {
  const okLo = open.lo ? x > lo : x >= lo;
  const okHi = open.hi ? x < hi : x <= hi;
  if (!(Number.isFinite(x) && okLo && okHi)) {
    const l = open.lo ? '(' : '[';
    const r = open.hi ? ')' : ']';
    throw new UnsupportedOptionError(`${name} must be a finite number in ${l}${lo}, ${hi}${r}; got ${x}`);
  }
}

/** `x` is a finite number > 0. */
export function checkPositive(name: string, x: number): void {
  if (!(Number.isFinite(x) && x > 0)) {
    throw new UnsupportedOptionError(`${name} must be a finite number > 0; got ${x}`);
  }
}

/** `x` is an integer in [lo, hi]. */
export function checkInteger(name: string, x: number, lo: number, hi = Number.MAX_SAFE_INTEGER): void {
  if (!(Number.isSafeInteger(x) && x >= lo && x <= hi)) {
    throw new UnsupportedOptionError(
      `${name} must be an integer in [${lo}, ${hi === Number.MAX_SAFE_INTEGER ? '∞' : hi}]; got ${x}`,
    );
  }
}

/** A float64 batch [n, d] of finite values; returns (n, d). */
export function checkBatch(name: string, x: Tensor, dim?: number): { n: number; d: number } {
  if (x.dtype !== 'float64' || x.shape.length !== 2 || (dim !== undefined && x.shape[1] !== dim)) {
    throw new ShapeError(
      `${name} must be a float64 batch [n, ${dim ?? 'd'}]; got ${x.dtype} ${formatShape(x.shape)}`,
    );
  }
  checkFinite(name, x as F64);
  return { n: x.shape[0], d: x.shape[1] };
}

/** No NaN or ±inf in `x`. */
export function checkFinite(name: string, x: F64): void {
  const v = x.data;
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) {
      throw new NonFiniteInputError(
        `${name} holds a non-finite value (${v[i]}) at flat index ${i}; diffusion inputs must be finite — ` +
          'check the data, the initial noise, or the network for a diverged weight',
      );
    }
  }
}

/** A sampler drawing its own start needs n ≥ 1 samples of dimension dim ≥ 1. */
export function checkSampleCount(opts: { n?: number; dim?: number }): void {
  if (opts.n === undefined || opts.dim === undefined) {
    throw new UnsupportedOptionError(
      `a sampler needs either its start noise ('noise') or the number of samples and their dimension ('n', 'dim'); got n = ${opts.n}, dim = ${opts.dim}`,
    );
  }
  checkInteger('number of samples n', opts.n, 1);
  checkInteger('sample dimension dim', opts.dim, 1);
}
