/**
 * What the samplers call: a network, or an exact oracle, evaluated on a batch at one noise level, and
 * how many network evaluations per sample one call costs (`nfePerCall`: 1 for a plain network, 2 for
 * classifier-free guidance, which runs the conditional and the unconditional branch). Samplers count
 * calls × nfePerCall and report it as the NFE per sample — the cost GFT halves (training_methods.md
 * §3.2).
 *
 * - `EpsModel`: ε̂(x_t, t) for the discrete VP process (t an integer timestep index).
 * - `ConditionalEpsModel`: ε̂(x_t, t | c) with one class label per row; the label `numClasses` is the
 *   null ("unconditional") token, DiT's convention (GFT `DiT/models.py` LabelEmbedder).
 * - `Denoiser`: D(x; σ) ≈ E[x₀ | x] for the EDM process.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import type { GaussianMixture } from './gaussian-mixture.js';
import type { VpSchedule } from './vp.js';

export interface EpsModel {
  readonly nfePerCall: number;
  predict(x: F64, t: number): F64;
}

export interface ConditionalEpsModel {
  readonly nfePerCall: number;
  /** Number of real classes; label `numClasses` is the null token. */
  readonly numClasses: number;
  predict(x: F64, t: number, labels: Int32Array): F64;
}

export interface Denoiser {
  readonly nfePerCall: number;
  denoise(x: F64, sigma: number): F64;
}

/** The exact ε-prediction of a Gaussian mixture under the VP schedule (one "perfect" evaluation per call). */
export function mixtureEpsModel(mixture: GaussianMixture, schedule: VpSchedule): EpsModel {
  return {
    nfePerCall: 1,
    predict: (x, t) => mixture.eps(x, { alpha: schedule.alpha(t), sigma: schedule.sigma(t) }),
  };
}

/**
 * The exact class-conditional ε-prediction: row i uses p(x₀ | labels[i]), or the whole mixture for
 * the null label. This is the analytic-score "ideal CFG sampler" of training_methods.md §3.5.
 */
export function mixtureConditionalEpsModel(
  mixture: GaussianMixture,
  schedule: VpSchedule,
): ConditionalEpsModel {
  const perClass = Array.from({ length: mixture.numClasses }, (_, c) => mixture.forClass(c));
  const C = mixture.numClasses;
  return {
    nfePerCall: 1,
    numClasses: C,
    predict(x, t, labels) {
      const scales = { alpha: schedule.alpha(t), sigma: schedule.sigma(t) };
      return byLabel(x, labels, C, (rows, c) => (c === C ? mixture : perClass[c]).eps(rows, scales));
    },
  };
}

/** The exact EDM denoiser of a Gaussian mixture, D(x; σ) = E[x₀ | x₀ + σε = x]. */
export function mixtureDenoiser(mixture: GaussianMixture): Denoiser {
  return { nfePerCall: 1, denoise: (x, sigma) => mixture.denoise(x, { alpha: 1, sigma }) };
}

/**
 * Applies `fn` to the rows of each label separately (labels in [0, numClasses], the last being null)
 * and scatters the results back in row order.
 */
export function byLabel(
  x: F64,
  labels: Int32Array,
  numClasses: number,
  fn: (rows: F64, label: number) => F64,
): F64 {
  const [n, d] = x.shape;
  if (labels.length !== n)
    throw new ShapeError(`labels needs ${n} entries (one per row); got ${labels.length}`);
  const groups: number[][] = Array.from({ length: numClasses + 1 }, () => []);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    if (!(c >= 0 && c <= numClasses)) {
      throw new UnsupportedOptionError(
        `label ${i} is ${c}; labels are 0..${numClasses - 1}, or ${numClasses} for the null (unconditional) token`,
      );
    }
    groups[c].push(i);
  }
  const out = new Float64Array(n * d);
  groups.forEach((idx, c) => {
    if (idx.length === 0) return;
    const rows = new Float64Array(idx.length * d);
    idx.forEach((i, r) => rows.set(x.data.subarray(i * d, i * d + d), r * d));
    const y = fn(new Tensor(rows, [idx.length, d], 'float64'), c);
    idx.forEach((i, r) => out.set(y.data.subarray(r * d, r * d + d), i * d));
  });
  return new Tensor(out, [n, d], 'float64');
}
