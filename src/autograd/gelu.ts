/**
 * GELU, x·Φ(x) with Φ the standard normal CDF (Hendrycks & Gimpel 2016, "Gaussian Error Linear
 * Units", eq. 1 and §2's tanh approximation). The exact erf form is the default, as PyTorch's
 * `nn.GELU(approximate='none')`; `{ approximate: 'tanh' }` gives GPT-2/BERT's
 * 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { defineUnary } from './elementwise.js';
import type { Var } from './var.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const C = 0.044715;

/**
 * erf(x) to about 1e-15 relative: the Maclaurin series erf x = (2/√π) Σ (−1)ⁿ x²ⁿ⁺¹ / (n!(2n+1)) for
 * |x| < 2.5 (largest term ≈ 80, so cancellation costs under two digits), and the continued fraction
 * erfc x = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) beyond (Abramowitz & Stegun
 * 7.1.14), evaluated bottom-up. Accuracy matters here: the gradient check differences GELU at
 * step 1e-6, which would amplify a 1e-7 approximation (A&S 7.1.26) into an O(0.1) error.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** Φ(x) = (1 + erf(x/√2))/2; dGELU/dx = Φ(x) + x·φ(x). */
const geluErf = defineUnary('gelu', {
  f: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  df: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
});

/** With u = √(2/π)(x + 0.044715x³), t = tanh u: d/dx = (1 + t)/2 + (x/2)(1 − t²)·√(2/π)(1 + 3·0.044715x²). */
const geluTanh = defineUnary('gelu_tanh', {
  f: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + C * x * x * x))),
  df: (x) => {
    const t = Math.tanh(SQRT_2_OVER_PI * (x + C * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * C * x * x);
  },
});

export interface GeluOptions {
  /** 'none' (default): exact x·Φ(x) via erf; 'tanh': the tanh approximation. */
  approximate?: 'none' | 'tanh';
}

export function gelu(x: Var, opts: GeluOptions = {}): Var {
  const approximate = opts.approximate ?? 'none';
  if (approximate === 'none') return geluErf(x);
  if (approximate === 'tanh') return geluTanh(x);
  throw new UnsupportedOptionError(
    `gelu approximate must be 'none' or 'tanh'; got ${JSON.stringify(approximate)}`,
  );
}
