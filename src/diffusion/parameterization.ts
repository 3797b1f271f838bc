/**
 * What a diffusion network predicts, and the exact conversions between the three common targets for
 * x_t = α·x₀ + σ·ε (VP: α = √ᾱ_t, σ = √(1 − ᾱ_t); EDM: α = 1, σ the noise level):
 *
 * - 'eps' (DDPM, Ho et al. 2020 Eq. 14; GFT's DiT, training_methods.md §3.1): ε̂.
 * - 'x0' (the denoiser D = E[x₀ | x_t] of EDM, Karras et al. 2022 §2): x̂₀.
 * - 'v' (Salimans & Ho 2022, "Progressive Distillation", §4 and App. D): v = α·ε − σ·x₀.
 *
 * The pair (x_t, any one target) fixes the other two: x₀ = (x_t − σ·ε)/α and ε = (x_t − α·x₀)/σ;
 * solving [α σ; −σ α]·[x₀; ε] = [x_t; v] gives x₀ = (α·x_t − σ·v)/(α² + σ²) and
 * ε = (σ·x_t + α·v)/(α² + σ²), which reduce to Salimans & Ho's α·x_t − σ·v and σ·x_t + α·v when
 * α² + σ² = 1 (VP). A conversion that would divide by zero (x₀ from ε at α = 0, ε from x₀ at σ = 0) is
 * an UnsupportedOptionError rather than an inf.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';

export type Parameterization = 'eps' | 'x0' | 'v';

export const PARAMETERIZATIONS: readonly Parameterization[] = ['eps', 'x0', 'v'];

/** Signal and noise scales, one pair for the whole batch or one per row. */
export interface NoiseScales {
  alpha: number | Float64Array;
  sigma: number | Float64Array;
}

function scaleAt(s: number | Float64Array, row: number): number {
  return typeof s === 'number' ? s : s[row];
}

/**
 * `pred` (a `from` prediction for the noisy batch `x`, both [n, d]) expressed as a `to` prediction.
 * `from === to` returns a copy.
 */
export function convertPrediction(
  pred: F64,
  x: F64,
  from: Parameterization,
  to: Parameterization,
  scales: NoiseScales,
): F64 {
  for (const p of [from, to]) {
    if (!PARAMETERIZATIONS.includes(p)) {
      throw new UnsupportedOptionError(
        `parameterization must be one of ${PARAMETERIZATIONS.join(', ')}; got ${JSON.stringify(p)}`,
      );
    }
  }
  if (
    pred.shape.length !== 2 ||
    x.shape.length !== 2 ||
    pred.size !== x.size ||
    pred.shape[0] !== x.shape[0]
  ) {
    throw new ShapeError(
      `prediction and x must both be [n, d]; got ${formatShape(pred.shape)} and ${formatShape(x.shape)}`,
    );
  }
  const [n, d] = x.shape;
  for (const s of [scales.alpha, scales.sigma]) {
    if (typeof s !== 'number' && s.length !== n) {
      throw new ShapeError(`per-row scales need ${n} values (one per row); got ${s.length}`);
    }
  }
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const a = scaleAt(scales.alpha, i);
    const s = scaleAt(scales.sigma, i);
    const norm = a * a + s * s;
    if ((from === 'eps' && to !== 'eps' && a === 0) || (from === 'x0' && to !== 'x0' && s === 0)) {
      throw new UnsupportedOptionError(
        `converting ${from} to ${to} divides by ${from === 'eps' ? 'α' : 'σ'} = 0 at row ${i}; ` +
          'that noise level determines only one of x₀ and ε',
      );
    }
    if (from === 'v' && to !== 'v' && norm === 0) {
      throw new UnsupportedOptionError(`converting v needs α² + σ² > 0; row ${i} has α = σ = 0`);
    }
    for (let j = 0; j < d; j++) {
      const k = i * d + j;
      const xt = x.data[k];
      const p = pred.data[k];
      let x0: number;
      let eps: number;
      if (from === 'eps') {
        eps = p;
        x0 = to === 'eps' ? NaN : (xt - s * p) / a;
      } else if (from === 'x0') {
        x0 = p;
        eps = to === 'x0' ? NaN : (xt - a * p) / s;
      } else {
        x0 = (a * xt - s * p) / norm;
        eps = (s * xt + a * p) / norm;
      }
      out[k] = to === 'eps' ? eps : to === 'x0' ? x0 : from === 'v' ? p : a * eps - s * x0;
    }
  }
  return new Tensor(out, [n, d], 'float64');
}
