/**
 * The denoising loss of DDPM with ε-prediction (Ho et al. 2020, Alg. 1 / Eq. 14, "L_simple") and the
 * label dropout that trains a classifier-free-guidance model (Ho & Salimans 2022, Alg. 1): for clean
 * x₀ with labels c, draw t ~ U{0, …, T − 1} and ε ~ N(0, I), replace each label by the null token with
 * probability p_uncond (0.1, GFT's and DiT's `class_dropout_prob`), and minimise
 * mean ‖ε_θ(√ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, t, c) − ε‖² (mean over batch and coordinates, guided-diffusion's
 * `mean_flat` then the batch mean).
 *
 * Random streams: t from rng.split(0), ε from split(1), the dropout coins from split(2) — the same
 * streams `gftLoss` uses, so a CFG and a GFT run with one seed see the same t, ε and dropped labels.
 */
import { Tensor } from '../core/tensor.js';
import type { Rng } from '../core/rng.js';
import { mean } from '../autograd/reduce.js';
import { mul, sub } from '../autograd/elementwise.js';
import { type F64, type Var, constant } from '../autograd/var.js';
import { checkBatch, checkInRange } from './checks.js';
import type { VpSchedule } from './vp.js';
import { ShapeError } from '../core/errors.js';

/** ε_θ(x_t, t | labels): t as float timestep indices, labels with `numClasses` the null token. */
export type EpsNetwork = (xt: Var, t: Float64Array, labels: Int32Array) => Var;

/** One noised batch: x_t, the noise ε that made it, and the timesteps. */
export interface NoisedBatch {
  xt: F64;
  eps: F64;
  t: Float64Array;
}

/** x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε with t ~ U{0…T−1} (rng.split(0)) and ε ~ N(0, I) (rng.split(1)). */
export function noiseBatch(x0: F64, schedule: VpSchedule, rng: Rng): NoisedBatch {
  const { n, d } = checkBatch('x₀', x0);
  const tRng = rng.split(0);
  const t = Float64Array.from({ length: n }, () =>
    Math.min(schedule.timesteps - 1, Math.floor(tRng.uniform() * schedule.timesteps)),
  );
  const eps = new Float64Array(n * d);
  rng.split(1).fillNormal(eps);
  const xt = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const a = schedule.alpha(t[i]);
    const s = schedule.sigma(t[i]);
    for (let j = 0; j < d; j++) xt[i * d + j] = a * x0.data[i * d + j] + s * eps[i * d + j];
  }
  return { xt: new Tensor(xt, [n, d], 'float64'), eps: new Tensor(eps, [n, d], 'float64'), t };
}

/** Which rows drop their label (probability p, rng.split(2)), and the labels with those set to null. */
export function dropLabels(
  labels: Int32Array,
  numClasses: number,
  p: number,
  rng: Rng,
): { labels: Int32Array; dropped: Uint8Array } {
  checkInRange('label dropout probability', p, 0, 1);
  const coin = rng.split(2);
  const dropped = new Uint8Array(labels.length);
  const out = Int32Array.from(labels);
  for (let i = 0; i < labels.length; i++) {
    if (coin.uniform() < p) {
      dropped[i] = 1;
      out[i] = numClasses;
    }
  }
  return { labels: out, dropped };
}

/** mean((a − b)²) over every element. */
export function meanSquaredError(a: Var, b: Var): Var {
  const diff = sub(a, b);
  return mean(mul(diff, diff));
}

export interface EpsilonLossOptions {
  schedule: VpSchedule;
  numClasses: number;
  /** Probability of replacing a label by the null token (default 0.1). */
  labelDropout?: number;
}

/** The CFG training loss of the module comment. */
export function epsilonLoss(
  net: EpsNetwork,
  x0: F64,
  labels: Int32Array,
  rng: Rng,
  opts: EpsilonLossOptions,
): Var {
  if (labels.length !== x0.shape[0])
    throw new ShapeError(`labels needs ${x0.shape[0]} entries; got ${labels.length}`);
  const { xt, eps, t } = noiseBatch(x0, opts.schedule, rng);
  const dropped = dropLabels(labels, opts.numClasses, opts.labelDropout ?? 0.1, rng);
  return meanSquaredError(net(constant(xt), t, dropped.labels), constant(eps));
}
