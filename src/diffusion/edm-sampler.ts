/**
 * EDM's ODE/SDE samplers (Karras et al. 2022, Algorithms 1 and 2): along the σ grid of `edmSigmaGrid`
 * (σ_N = 0), step i optionally "churns" — raises σ_i to σ̂ = σ_i·(1 + γ_i) by adding fresh noise of
 * variance σ̂² − σ_i², with γ_i = min(S_churn/N, √2 − 1) for σ_i ∈ [S_tmin, S_tmax] and 0 otherwise —
 * then takes an Euler step of the PF-ODE dx/dσ = (x − D(x; σ))/σ from σ̂ to σ_{i+1}:
 *
 *   d = (x̂ − D(x̂; σ̂))/σ̂,   x_{i+1} = x̂ + (σ_{i+1} − σ̂)·d
 *
 * and, for Heun, corrects it with the slope at the end point, x_{i+1} = x̂ + (σ_{i+1} − σ̂)·(d + d′)/2,
 * except on the last step (σ_{i+1} = 0), where the slope is undefined and Euler is kept. So Euler
 * costs N network evaluations and Heun 2N − 1. Defaults are the paper's deterministic sampler
 * (S_churn = 0, S_tmin = 0, S_tmax = ∞, S_noise = 1); the start is x₀ ~ N(0, σ_max²·I).
 *
 * Randomness: the start from Rng.fromSeed(seed).split(0) (unless `noise` is given), step i's churn
 * noise from split(i + 1).
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { Rng, type Seed } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkBatch, checkFinite, checkInRange, checkSampleCount } from './checks.js';
import { EDM_RHO, EDM_SIGMA_MAX, EDM_SIGMA_MIN, edmSigmaGrid } from './edm.js';
import type { Denoiser } from './models.js';
import type { SampleResult } from './ddim.js';

export type EdmSolver = 'euler' | 'heun';

export interface EdmSampleOptions {
  /** Number of noise levels N (the grid has N + 1 values, the last 0). */
  steps: number;
  /** 'heun' (default, Algorithm 1) or 'euler'. */
  solver?: EdmSolver;
  sigmaMin?: number;
  sigmaMax?: number;
  rho?: number;
  /** Stochasticity (Algorithm 2); default 0 (deterministic). */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
  seed?: Seed;
  n?: number;
  dim?: number;
  /** Standard-normal start [n, d], scaled by σ_max here (default: drawn from the seed). */
  noise?: F64;
}

/** Samples along EDM's σ grid with Euler or Heun steps (module comment). */
export function edmSample(model: Denoiser, opts: EdmSampleOptions): SampleResult {
  const {
    steps,
    solver = 'heun',
    sigmaMin = EDM_SIGMA_MIN,
    sigmaMax = EDM_SIGMA_MAX,
    rho = EDM_RHO,
    sChurn = 0,
    sTmin = 0,
    sTmax = Infinity,
    sNoise = 1,
    seed = 0,
  } = opts;
  if (solver !== 'heun' && solver !== 'euler') {
    throw new UnsupportedOptionError(`EDM solver must be 'heun' or 'euler'; got ${JSON.stringify(solver)}`);
  }
  checkInRange('S_churn', sChurn, 0, Number.MAX_VALUE);
  checkInRange('S_noise', sNoise, 0, Number.MAX_VALUE);
  checkInRange('S_tmin', sTmin, 0, Number.MAX_VALUE);
  if (!(sTmax >= sTmin)) throw new UnsupportedOptionError(`S_tmax must be ≥ S_tmin = ${sTmin}; got ${sTmax}`);
  const grid = edmSigmaGrid({ steps, sigmaMin, sigmaMax, rho });
  const root = Rng.fromSeed(seed);
  let x: F64;
  if (opts.noise !== undefined) {
    checkBatch('initial noise', opts.noise);
    x = new Tensor(
      Float64Array.from(opts.noise.data, (v) => v * sigmaMax),
      opts.noise.shape,
      'float64',
    );
  } else {
    checkSampleCount(opts);
    const data = new Float64Array((opts.n as number) * (opts.dim as number));
    root.split(0).fillNormal(data, 0, sigmaMax);
    x = new Tensor(data, [opts.n as number, opts.dim as number], 'float64');
  }
  let calls = 0;
  const slope = (xs: F64, sigma: number): Float64Array => {
    const D = model.denoise(xs, sigma);
    calls++;
    checkFinite(`the denoiser's output at σ = ${sigma}`, D);
    const out = new Float64Array(xs.size);
    for (let i = 0; i < out.length; i++) out[i] = (xs.data[i] - D.data[i]) / sigma;
    return out;
  };
  const gammaMax = Math.SQRT2 - 1;
  for (let i = 0; i < steps; i++) {
    const cur = grid[i];
    const next = grid[i + 1];
    const gamma = sChurn > 0 && cur >= sTmin && cur <= sTmax ? Math.min(sChurn / steps, gammaMax) : 0;
    const hat = cur * (1 + gamma);
    let xHat = x;
    if (gamma > 0) {
      const z = new Float64Array(x.size);
      root.split(i + 1).fillNormal(z, 0, sNoise * Math.sqrt(hat * hat - cur * cur));
      xHat = new Tensor(
        Float64Array.from(x.data, (v, k) => v + z[k]),
        x.shape,
        'float64',
      );
    }
    const d = slope(xHat, hat);
    const h = next - hat;
    const euler = Float64Array.from(xHat.data, (v, k) => v + h * d[k]);
    if (solver === 'heun' && next !== 0) {
      const d2 = slope(new Tensor(euler, x.shape, 'float64'), next);
      for (let k = 0; k < euler.length; k++) euler[k] = xHat.data[k] + h * 0.5 * (d[k] + d2[k]);
    }
    x = new Tensor(euler, x.shape, 'float64');
  }
  return { samples: x, nfe: calls * model.nfePerCall };
}
