/**
 * Gaussian mixtures with isotropic components, p(x₀) = Σ_k π_k·N(μ_k, s_k²·I), and everything a
 * diffusion model needs from them in closed form — the "perfect network" the tests and toy
 * experiments compare trained networks against (training_methods.md §3.5, §5.5).
 *
 * Under x_t = α·x₀ + σ·ε (VP: α = √ᾱ_t; EDM: α = 1, σ the noise level) component k is observed as
 * N(α·μ_k, v_k·I) with v_k = α²·s_k² + σ², so
 *
 *   r_k(x)       = π_k·N(x; α·μ_k, v_k·I) / Σ_j π_j·N(x; α·μ_j, v_j·I)          (component posterior)
 *   m_k(x)       = E[x₀ | x_t = x, k] = μ_k + c_k·(x − α·μ_k),   c_k = α·s_k²/v_k
 *   D(x)         = E[x₀ | x_t = x] = Σ_k r_k·m_k                                  (the exact denoiser)
 *   ε̂(x)         = (x − α·D)/σ,   ∇log p_t(x) = (α·D − x)/σ²                       (Tweedie)
 *   tr ∇_x D(x)  = d·Σ_k r_k·c_k + Σ_k r_k·⟨m_k − D, g_k − ḡ⟩,   g_k = −(x − α·μ_k)/v_k, ḡ = Σ r_k·g_k
 *
 * (the trace from ∇r_k = r_k·(g_k − ḡ) and Σ_k r_k·(g_k − ḡ) = 0). Posteriors are computed with a
 * log-sum-exp so far-away points do not underflow to 0/0. Components may carry a class label; the
 * class-conditional density p(x₀ | c) is the mixture restricted to class c and renormalised.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkBatch } from './checks.js';
import type { NoiseScales } from './parameterization.js';

export interface GaussianMixtureSpec {
  /** Component means, K rows of d numbers. */
  means: readonly (readonly number[])[];
  /** Component standard deviations s_k > 0 (one per component, isotropic). */
  stds: readonly number[];
  /** Mixture weights (default uniform); normalised to sum 1. */
  weights?: readonly number[];
  /** Class label of each component (integers from 0); absent for an unconditional mixture. */
  classes?: readonly number[];
}

/** Samples with the component and class each was drawn from. */
export interface MixtureSample {
  x: F64;
  components: Int32Array;
  /** Class of each sample (all 0 for an unlabelled mixture). */
  classes: Int32Array;
}

function scaleAt(s: number | Float64Array, row: number): number {
  return typeof s === 'number' ? s : s[row];
}

export class GaussianMixture {
  readonly dim: number;
  /** Number of components K. */
  readonly size: number;
  /** [K·d], row-major. */
  readonly means: Float64Array;
  readonly stds: Float64Array;
  readonly weights: Float64Array;
  /** Class of each component, or null when unlabelled. */
  readonly classes: Int32Array | null;
  readonly numClasses: number;

  constructor(spec: GaussianMixtureSpec) {
    const k = spec.means.length;
    if (k === 0) throw new ShapeError('a Gaussian mixture needs at least one component; got none');
    const d = spec.means[0].length;
    if (d === 0 || spec.means.some((m) => m.length !== d)) {
      throw new ShapeError(
        `every mean must have the same dimension d ≥ 1; got lengths ${spec.means.map((m) => m.length).join(', ')}`,
      );
    }
    if (spec.stds.length !== k)
      throw new ShapeError(`stds needs ${k} values (one per component); got ${spec.stds.length}`);
    if (spec.stds.some((s) => !(Number.isFinite(s) && s > 0))) {
      throw new UnsupportedOptionError(`component stds must be finite and > 0; got ${spec.stds.join(', ')}`);
    }
    const w = spec.weights ?? new Array<number>(k).fill(1);
    if (w.length !== k) throw new ShapeError(`weights needs ${k} values; got ${w.length}`);
    const total = w.reduce((a, b) => a + b, 0);
    if (w.some((x) => !(Number.isFinite(x) && x >= 0)) || !(total > 0)) {
      throw new UnsupportedOptionError(`weights must be finite, ≥ 0 and not all 0; got ${w.join(', ')}`);
    }
    if (spec.means.some((m) => m.some((v) => !Number.isFinite(v)))) {
      throw new UnsupportedOptionError('component means must be finite');
    }
    this.dim = d;
    this.size = k;
    this.means = Float64Array.from(spec.means.flat());
    this.stds = Float64Array.from(spec.stds);
    this.weights = Float64Array.from(w, (x) => x / total);
    if (spec.classes !== undefined) {
      if (spec.classes.length !== k || spec.classes.some((c) => !(Number.isInteger(c) && c >= 0))) {
        throw new ShapeError(`classes needs ${k} non-negative integers; got ${spec.classes.join(', ')}`);
      }
      this.classes = Int32Array.from(spec.classes);
      this.numClasses = Math.max(...spec.classes) + 1;
    } else {
      this.classes = null;
      this.numClasses = 1;
    }
  }

  /** The mixture of class c's components, renormalised: p(x₀ | c). */
  forClass(c: number): GaussianMixture {
    if (!(Number.isInteger(c) && c >= 0 && c < this.numClasses)) {
      throw new UnsupportedOptionError(`class must be an integer in [0, ${this.numClasses - 1}]; got ${c}`);
    }
    const keep = [...Array(this.size).keys()].filter((k) => (this.classes ? this.classes[k] : 0) === c);
    const d = this.dim;
    return new GaussianMixture({
      means: keep.map((k) => Array.from(this.means.subarray(k * d, k * d + d))),
      stds: keep.map((k) => this.stds[k]),
      weights: keep.map((k) => this.weights[k]),
      classes: keep.map(() => c),
    });
  }

  /** Prior probability of each class, p(c) = Σ_{k ∈ c} π_k. */
  classWeights(): Float64Array {
    const out = new Float64Array(this.numClasses);
    for (let k = 0; k < this.size; k++) out[this.classes ? this.classes[k] : 0] += this.weights[k];
    return out;
  }

  /** n samples of x₀. */
  sample(n: number, rng: Rng): MixtureSample {
    const d = this.dim;
    const x = new Float64Array(n * d);
    const components = new Int32Array(n);
    const classes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      let k = 0;
      let acc = this.weights[0];
      while (u >= acc && k < this.size - 1) acc += this.weights[++k];
      components[i] = k;
      classes[i] = this.classes ? this.classes[k] : 0;
      for (let j = 0; j < d; j++) x[i * d + j] = this.means[k * d + j] + this.stds[k] * rng.normal();
    }
    return { x: new Tensor(x, [n, d], 'float64'), components, classes };
  }

  /** Overall mean vector and mean per-coordinate variance of x₀ (σ_data² for EDM). */
  moments(): { mean: Float64Array; variance: number } {
    const d = this.dim;
    const mean = new Float64Array(d);
    for (let k = 0; k < this.size; k++)
      for (let j = 0; j < d; j++) mean[j] += this.weights[k] * this.means[k * d + j];
    let v = 0;
    for (let k = 0; k < this.size; k++) {
      let sq = 0;
      for (let j = 0; j < d; j++) sq += (this.means[k * d + j] - mean[j]) ** 2;
      v += this.weights[k] * (sq / d + this.stds[k] ** 2);
    }
    return { mean, variance: v };
  }

  /**
   * Component posteriors r_k(x) [n·K] and per-row work: log N terms are combined with a log-sum-exp.
   */
  componentPosterior(x: F64, scales: NoiseScales = { alpha: 1, sigma: 0 }): Float64Array {
    const { n } = checkBatch('x', x, this.dim);
    const d = this.dim;
    const K = this.size;
    const out = new Float64Array(n * K);
    const logw = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      const a = scaleAt(scales.alpha, i);
      const s = scaleAt(scales.sigma, i);
      let max = -Infinity;
      for (let k = 0; k < K; k++) {
        const v = a * a * this.stds[k] ** 2 + s * s;
        let sq = 0;
        for (let j = 0; j < d; j++) sq += (x.data[i * d + j] - a * this.means[k * d + j]) ** 2;
        logw[k] = Math.log(this.weights[k]) - 0.5 * d * Math.log(v) - (0.5 * sq) / v;
        if (logw[k] > max) max = logw[k];
      }
      let z = 0;
      for (let k = 0; k < K; k++) z += out[i * K + k] = this.weights[k] === 0 ? 0 : Math.exp(logw[k] - max);
      for (let k = 0; k < K; k++) out[i * K + k] /= z;
    }
    return out;
  }

  /** log p(x₀) of clean points. */
  logDensity(x: F64): Float64Array {
    const { n } = checkBatch('x', x, this.dim);
    const d = this.dim;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const terms: number[] = [];
      for (let k = 0; k < this.size; k++) {
        const v = this.stds[k] ** 2;
        let sq = 0;
        for (let j = 0; j < d; j++) sq += (x.data[i * d + j] - this.means[k * d + j]) ** 2;
        terms.push(Math.log(this.weights[k]) - 0.5 * d * Math.log(2 * Math.PI * v) - (0.5 * sq) / v);
      }
      const max = Math.max(...terms);
      out[i] = max + Math.log(terms.reduce((acc, t) => acc + Math.exp(t - max), 0));
    }
    return out;
  }

  /** p(c | x₀) of clean points [n·C]: the summed posterior of each class's components. */
  classPosterior(x: F64): Float64Array {
    const r = this.componentPosterior(x);
    const n = x.shape[0];
    const C = this.numClasses;
    const out = new Float64Array(n * C);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < this.size; k++)
        out[i * C + (this.classes ? this.classes[k] : 0)] += r[i * this.size + k];
    }
    return out;
  }

  /** The exact denoiser D(x) = E[x₀ | x_t = x] at scales (α, σ). */
  denoise(x: F64, scales: NoiseScales): F64 {
    return this.posteriorQuantities(x, scales, false).denoised;
  }

  /** The exact ε-prediction E[ε | x_t = x] = (x − α·D)/σ (σ > 0). */
  eps(x: F64, scales: NoiseScales): F64 {
    const D = this.denoise(x, scales);
    const d = this.dim;
    const out = new Float64Array(x.size);
    for (let i = 0; i < x.shape[0]; i++) {
      const a = scaleAt(scales.alpha, i);
      const s = scaleAt(scales.sigma, i);
      if (!(s > 0)) throw new UnsupportedOptionError(`ε-prediction needs σ > 0; row ${i} has σ = ${s}`);
      for (let j = 0; j < d; j++) out[i * d + j] = (x.data[i * d + j] - a * D.data[i * d + j]) / s;
    }
    return new Tensor(out, x.shape, 'float64');
  }

  /** ∇_x log p_t(x) = (α·D − x)/σ² (σ > 0). */
  score(x: F64, scales: NoiseScales): F64 {
    const e = this.eps(x, scales);
    const out = new Float64Array(x.size);
    for (let i = 0; i < x.shape[0]; i++) {
      const s = scaleAt(scales.sigma, i);
      for (let j = 0; j < this.dim; j++) out[i * this.dim + j] = -e.data[i * this.dim + j] / s;
    }
    return new Tensor(out, x.shape, 'float64');
  }

  /** tr ∇_x D(x) per row (formula in the module comment). */
  denoiserJacobianTrace(x: F64, scales: NoiseScales): Float64Array {
    return this.posteriorQuantities(x, scales, true).trace as Float64Array;
  }

  /** D(x) and tr ∇_x D(x) from one pass over the components. */
  denoiseWithTrace(x: F64, scales: NoiseScales): { denoised: F64; trace: Float64Array } {
    const q = this.posteriorQuantities(x, scales, true);
    return { denoised: q.denoised, trace: q.trace as Float64Array };
  }

  private posteriorQuantities(
    x: F64,
    scales: NoiseScales,
    withTrace: boolean,
  ): { denoised: F64; trace: Float64Array | null } {
    const r = this.componentPosterior(x, scales);
    const n = x.shape[0];
    const d = this.dim;
    const K = this.size;
    const D = new Float64Array(n * d);
    const trace = withTrace ? new Float64Array(n) : null;
    const m = new Float64Array(K * d);
    const g = new Float64Array(K * d);
    const c = new Float64Array(K);
    const gBar = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const a = scaleAt(scales.alpha, i);
      const s = scaleAt(scales.sigma, i);
      gBar.fill(0);
      let diag = 0;
      for (let k = 0; k < K; k++) {
        const sk2 = this.stds[k] ** 2;
        const v = a * a * sk2 + s * s;
        c[k] = (a * sk2) / v;
        const rk = r[i * K + k];
        diag += rk * c[k];
        for (let j = 0; j < d; j++) {
          const diff = x.data[i * d + j] - a * this.means[k * d + j];
          m[k * d + j] = this.means[k * d + j] + c[k] * diff;
          g[k * d + j] = -diff / v;
          D[i * d + j] += rk * m[k * d + j];
          gBar[j] += rk * g[k * d + j];
        }
      }
      if (trace !== null) {
        let t = d * diag;
        for (let k = 0; k < K; k++) {
          let dot = 0;
          for (let j = 0; j < d; j++) dot += (m[k * d + j] - D[i * d + j]) * (g[k * d + j] - gBar[j]);
          t += r[i * K + k] * dot;
        }
        trace[i] = t;
      }
    }
    return { denoised: new Tensor(D, [n, d], 'float64'), trace };
  }
}
