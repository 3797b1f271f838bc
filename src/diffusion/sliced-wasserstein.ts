/**
 * Sliced-Wasserstein distance between two point clouds (Bonneel et al. 2015, "Sliced and Radon
 * Wasserstein Barycenters of Measures", §2.2): SW_p(X, Y) = (E_θ W_p^p(θᵀX, θᵀY))^{1/p} with θ uniform
 * on the unit sphere, estimated with L seeded random directions. Each 1-D W_p^p between the empirical
 * distributions is exact for any sample sizes n and m: ∫₀¹ |F⁻¹(u) − G⁻¹(u)|^p du over the merged
 * breakpoints i/n and j/m of the two sorted projections.
 *
 * Defaults follow POT's `ot.sliced_wasserstein_distance` (n_projections = 50, p = 2); directions are
 * normalised Gaussians from Rng.fromSeed(seed), so the same seed gives the same directions and two
 * calls with one seed compare like with like.
 */
import { ShapeError } from '../core/errors.js';
import { Rng, type Seed } from '../core/rng.js';
import { formatShape } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkBatch, checkInRange, checkInteger } from './checks.js';

export interface SlicedWassersteinOptions {
  /** Number of random directions L (default 50). */
  projections?: number;
  /** Order p ≥ 1 (default 2). */
  p?: number;
  seed?: Seed;
}

/** Exact W_p^p between two sorted 1-D empirical distributions with uniform weights. */
export function wassersteinSorted1d(a: Float64Array, b: Float64Array, p: number): number {
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let prev = 0;
  let total = 0;
  // Breakpoints in units of 1/(n·m) keep the merge exact (integers, no float comparisons).
  while (i < n && j < m) {
    const ni = (i + 1) * m;
    const mj = (j + 1) * n;
    const next = Math.min(ni, mj);
    total += ((next - prev) / (n * m)) * Math.abs(a[i] - b[j]) ** p;
    prev = next;
    if (ni === next) i++;
    if (mj === next) j++;
  }
  return total;
}

/** SW_p between point clouds x [n, d] and y [m, d] (module comment). */
export function slicedWasserstein(x: F64, y: F64, opts: SlicedWassersteinOptions = {}): number {
  const { projections = 50, p = 2, seed = 0 } = opts;
  const { n, d } = checkBatch('x', x);
  const { n: m } = checkBatch('y', y);
  if (y.shape[1] !== d) {
    throw new ShapeError(
      `x and y must have the same dimension; got ${formatShape(x.shape)} and ${formatShape(y.shape)}`,
    );
  }
  checkInteger('x sample count', n, 1);
  checkInteger('y sample count', m, 1);
  checkInteger('projections', projections, 1);
  checkInRange('p', p, 1, Number.MAX_VALUE);
  const rng = Rng.fromSeed(seed);
  const theta = new Float64Array(d);
  const px = new Float64Array(n);
  const py = new Float64Array(m);
  let sum = 0;
  for (let l = 0; l < projections; l++) {
    let norm = 0;
    do {
      rng.fillNormal(theta);
      norm = Math.hypot(...theta);
    } while (norm === 0);
    for (let j = 0; j < d; j++) theta[j] /= norm;
    project(x.data as Float64Array, theta, px);
    project(y.data as Float64Array, theta, py);
    px.sort();
    py.sort();
    sum += wassersteinSorted1d(px, py, p);
  }
  return (sum / projections) ** (1 / p);
}

function project(data: Float64Array, theta: Float64Array, out: Float64Array): void {
  const d = theta.length;
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += data[i * d + j] * theta[j];
    out[i] = s;
  }
}
