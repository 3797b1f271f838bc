/**
 * Float64 finite-difference gradient check. For f: inputs → output Var and a fixed random
 * cotangent r (shape of the output), compares the analytic vector–Jacobian product
 * ∂(Σ r⊙f)/∂xᵢ from `backward` with the central difference
 * (Σ r⊙f(x + h eᵢ) − Σ r⊙f(x − h eᵢ)) / 2h for every element of every input.
 *
 * Central differences have truncation error O(h²·f‴) and rounding error O(ε·|f|/h); with h = 1e-6
 * and ε ≈ 1.1e-16 both are ≲ 1e-9 for O(1) inputs, so the default bound
 * |analytic − numeric| ≤ 1e-6 · max(1, |analytic|, |numeric|) has a wide margin without masking
 * wrong formulas (a wrong term is O(1)).
 */
import { type Tensor, randn } from '../core/tensor.js';
import { backward } from './backward.js';
import { Var, noGrad, param, toF64 } from './var.js';

export interface GradCheckOptions {
  step?: number;
  tolerance?: number;
  seed?: number;
}

export interface GradCheckResult {
  /** Largest |analytic − numeric| / max(1, |analytic|, |numeric|) over all elements. */
  maxError: number;
  /** Which input and element gave it. */
  worst: { input: number; index: number; analytic: number; numeric: number };
  ok: boolean;
}

export function gradCheck(
  fn: (...xs: Var[]) => Var,
  inputs: readonly Tensor[],
  opts: GradCheckOptions = {},
): GradCheckResult {
  const h = opts.step ?? 1e-6;
  const tolerance = opts.tolerance ?? 1e-6;
  const values = inputs.map((t) => toF64(t));
  const vars = values.map((t) => param(t));
  const out = fn(...vars);
  const r = toF64(randn(out.shape, { seed: opts.seed ?? 1234, dtype: 'float64' }));
  backward(out, r);
  const objective = (): number =>
    noGrad(() => {
      const y = fn(...values.map((t) => new Var(t))).value.data;
      let s = 0;
      for (let i = 0; i < y.length; i++) s += r.data[i] * y[i];
      return s;
    });
  const result: GradCheckResult = {
    maxError: 0,
    worst: { input: -1, index: -1, analytic: 0, numeric: 0 },
    ok: true,
  };
  values.forEach((t, input) => {
    const grad = vars[input].grad;
    for (let index = 0; index < t.size; index++) {
      const x0 = t.data[index];
      t.data[index] = x0 + h;
      const fp = objective();
      t.data[index] = x0 - h;
      const fm = objective();
      t.data[index] = x0;
      const numeric = (fp - fm) / (2 * h);
      const analytic = grad === null ? 0 : grad.data[index];
      const err = Math.abs(analytic - numeric) / Math.max(1, Math.abs(analytic), Math.abs(numeric));
      if (err > result.maxError || result.worst.input < 0) {
        result.maxError = err;
        result.worst = { input, index, analytic, numeric };
      }
    }
  });
  result.ok = result.maxError <= tolerance;
  return result;
}
