/**
 * DDIM sampling for the discrete VP process (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit
 * Models", Eq. 12 and Eq. 16): from x_t at timestep t to the previous timestep p of the sub-sequence,
 *
 *   x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t
 *   σ_η = η·√((1 − ᾱ_p)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_p)
 *   x_p = √ᾱ_p·x̂₀ + √(1 − ᾱ_p − σ_η²)·ε̂ + σ_η·z,   z ~ N(0, I)
 *
 * η = 0 is the deterministic DDIM ODE sampler; η = 1 is DDPM's ancestral sampler on the
 * sub-sequence. The last step lands on ᾱ = 1 (guided-diffusion's `alphas_cumprod_prev[0] = 1`), so it
 * returns x̂₀. x̂₀ is not clipped (clipping to [−1, 1] is an image prior; these are arbitrary data).
 *
 * Timestep spacing: 'trailing' (default) takes round(T − i·T/S) − 1 for i = 0 … S − 1, so the first
 * step is at t = T − 1; 'leading' takes i·⌊T/S⌋ (the DDIM code's `range(0, T, T // S)`, diffusers'
 * default), which never visits the last timesteps. Lin et al. 2024 ("Common Diffusion Noise Schedules
 * and Sample Steps are Flawed", §3.3, Table 2) show leading spacing starts from a noise level the
 * sampler's N(0, I) start does not match, badly so for few steps — hence trailing by default.
 *
 * Randomness: the start x_T ~ N(0, I) from Rng.fromSeed(seed).split(0) (unless `noise` is given) and
 * step k's z from split(k + 1), so the same seed gives the same samples.
 */
import { Rng, type Seed } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkBatch, checkFinite, checkInRange, checkInteger, checkSampleCount } from './checks.js';
import type { EpsModel } from './models.js';
import type { VpSchedule } from './vp.js';

export type TimestepSpacing = 'trailing' | 'leading';

/** numpy's np.round (half to even), which diffusers' trailing spacing uses. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The S decreasing timestep indices DDIM visits (see the module comment). */
export function ddimTimesteps(
  timesteps: number,
  steps: number,
  spacing: TimestepSpacing = 'trailing',
): Int32Array {
  checkInteger('DDIM steps', steps, 1, timesteps);
  const out = new Int32Array(steps);
  for (let i = 0; i < steps; i++) {
    out[i] =
      spacing === 'trailing'
        ? roundHalfEven(timesteps - (i * timesteps) / steps) - 1
        : (steps - 1 - i) * Math.floor(timesteps / steps);
  }
  return out;
}

export interface DdimOptions {
  schedule: VpSchedule;
  /** Number of sampling steps S, 1 ≤ S ≤ T. */
  steps: number;
  /** Stochasticity η ≥ 0 (default 0, deterministic). */
  eta?: number;
  spacing?: TimestepSpacing;
  seed?: Seed;
  /** Number of samples and their dimension, when `noise` is not given. */
  n?: number;
  dim?: number;
  /** The starting x_T [n, d] (default: N(0, I) drawn from the seed). */
  noise?: F64;
}

export interface SampleResult {
  samples: F64;
  /** Network evaluations per sample. */
  nfe: number;
}

function startNoise(opts: { noise?: F64; n?: number; dim?: number }, rng: Rng, scale: number): F64 {
  if (opts.noise !== undefined) {
    checkBatch('initial noise', opts.noise);
    return new Tensor(Float64Array.from(opts.noise.data), opts.noise.shape, 'float64');
  }
  checkSampleCount(opts);
  const n = opts.n as number;
  const d = opts.dim as number;
  const x = new Float64Array(n * d);
  rng.fillNormal(x, 0, scale);
  return new Tensor(x, [n, d], 'float64');
}

/** Samples with DDIM (module comment); `nfe` = S × model.nfePerCall. */
export function ddimSample(model: EpsModel, opts: DdimOptions): SampleResult {
  const { schedule, steps, eta = 0, spacing = 'trailing', seed = 0 } = opts;
  checkInRange('DDIM η', eta, 0, Number.MAX_VALUE);
  const ts = ddimTimesteps(schedule.timesteps, steps, spacing);
  const root = Rng.fromSeed(seed);
  let x = startNoise(opts, root.split(0), 1);
  const z = new Float64Array(x.size);
  for (let k = 0; k < ts.length; k++) {
    const t = ts[k];
    const prev = k + 1 < ts.length ? ts[k + 1] : -1;
    const eps = model.predict(x, t);
    checkFinite(`the model's ε-prediction at timestep ${t}`, eps);
    const aT = schedule.alphaBar(t);
    const aP = schedule.alphaBar(prev);
    const sigEta = eta * Math.sqrt((1 - aP) / (1 - aT)) * Math.sqrt(1 - aT / aP);
    const dirScale = Math.sqrt(Math.max(0, 1 - aP - sigEta * sigEta));
    const sqrtAT = Math.sqrt(aT);
    const sqrt1mAT = Math.sqrt(1 - aT);
    const sqrtAP = Math.sqrt(aP);
    if (sigEta > 0) root.split(k + 1).fillNormal(z);
    const out = new Float64Array(x.size);
    for (let i = 0; i < out.length; i++) {
      const x0 = (x.data[i] - sqrt1mAT * eps.data[i]) / sqrtAT;
      out[i] = sqrtAP * x0 + dirScale * eps.data[i] + (sigEta > 0 ? sigEta * z[i] : 0);
    }
    x = new Tensor(out, x.shape, 'float64');
  }
  return { samples: x, nfe: ts.length * model.nfePerCall };
}
