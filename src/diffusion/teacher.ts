/**
 * The teacher of consistency distillation in EDM form (training_methods.md §5.1): x_t = x₀ + t·ε,
 * t ∈ [0.002, 80], a denoiser D_φ(x, t) ≈ E[x₀ | x_t = x] and its probability-flow ODE
 * dx/dt = (x − D_φ(x, t))/t. Here the teacher is exact — a Gaussian mixture's denoiser (§5.5: "no
 * teacher training is needed") — so the ODE's solution, and with it the consistency gap, is known to
 * solver accuracy.
 *
 * ODE solution: classical RK4 in ρ = ln t, where the ODE reads dx/dρ = x − D_φ(x, e^ρ) (smooth in ρ
 * over the whole range), with steps of at most 0.05 in ρ — 212 steps from 80 to 0.002, the note's
 * "RK4 with 200 log-spaced steps as ground truth". One Heun step (EDM Alg. 1) is what CTM's training
 * uses to move from t to the next grid time u.
 */
import type { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkFinite, checkPositive } from './checks.js';
import type { GaussianMixture } from './gaussian-mixture.js';

export interface EdmTeacher {
  readonly dim: number;
  /** D_φ(x, t) with one t for the batch or one per row. */
  denoise(x: F64, t: number | Float64Array): F64;
  /** D_φ(x, t) and tr ∇_x D_φ(x, t) per row; absent → central differences (analytic-precond.ts). */
  denoiseWithTrace?(x: F64, t: number): { denoised: F64; trace: Float64Array };
  /** n clean samples x₀ of the data the teacher models. */
  sampleData(n: number, rng: Rng): F64;
}

/** The exact teacher of a Gaussian mixture (analytic denoiser and Jacobian trace). */
export function mixtureTeacher(mixture: GaussianMixture): EdmTeacher {
  return {
    dim: mixture.dim,
    denoise: (x, t) => mixture.denoise(x, { alpha: 1, sigma: t }),
    denoiseWithTrace: (x, t) => mixture.denoiseWithTrace(x, { alpha: 1, sigma: t }),
    sampleData: (n, rng) => mixture.sample(n, rng).x,
  };
}

/** dx/dρ = x − D(x, e^ρ) at ρ = ln t (one t for the batch). */
function slope(teacher: EdmTeacher, x: Float64Array, shape: readonly number[], t: number): Float64Array {
  const D = teacher.denoise(new Tensor(x, shape, 'float64'), t);
  checkFinite(`the teacher's denoiser at t = ${t}`, D);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - D.data[i];
  return out;
}

/** The teacher PF-ODE solution from t to s (both > 0; s < t or s > t) by RK4 in ln t. */
export function solveTeacherOde(teacher: EdmTeacher, x: F64, t: number, s: number, maxStep = 0.05): F64 {
  return solveTeacherOdeAt(teacher, x, t, [s], maxStep)[0];
}

/**
 * Solutions at each of `stops` (visited in order from t), integrating once: the consistency-gap grid
 * needs x_s for every s below t, and one pass gives them all.
 */
export function solveTeacherOdeAt(
  teacher: EdmTeacher,
  x: F64,
  t: number,
  stops: readonly number[],
  maxStep = 0.05,
): F64[] {
  checkPositive('ODE start time t', t);
  checkPositive('ODE max step', maxStep);
  let cur = Float64Array.from(x.data);
  let rho = Math.log(t);
  const out: F64[] = [];
  for (const s of stops) {
    checkPositive('ODE target time s', s);
    const target = Math.log(s);
    const n = Math.max(1, Math.ceil(Math.abs(target - rho) / maxStep));
    const h = (target - rho) / n;
    for (let k = 0; k < n; k++) {
      const r = rho + k * h;
      const k1 = slope(teacher, cur, x.shape, Math.exp(r));
      const y2 = cur.map((v, i) => v + 0.5 * h * k1[i]);
      const k2 = slope(teacher, y2, x.shape, Math.exp(r + 0.5 * h));
      const y3 = cur.map((v, i) => v + 0.5 * h * k2[i]);
      const k3 = slope(teacher, y3, x.shape, Math.exp(r + 0.5 * h));
      const y4 = cur.map((v, i) => v + h * k3[i]);
      const k4 = slope(teacher, y4, x.shape, Math.exp(r + h));
      cur = cur.map((v, i) => v + (h / 6) * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]));
    }
    rho = target;
    out.push(new Tensor(Float64Array.from(cur), x.shape, 'float64'));
  }
  return out;
}

/**
 * One Heun step of the teacher PF-ODE from t to u per row (EDM Alg. 1, in t):
 * d = (x − D(x, t))/t, x̃ = x + (u − t)·d, x_u = x + (u − t)·(d + (x̃ − D(x̃, u))/u)/2.
 */
export function teacherHeunStep(teacher: EdmTeacher, x: F64, t: Float64Array, u: Float64Array): F64 {
  const [n, d] = x.shape;
  const D1 = teacher.denoise(x, t);
  const d1 = new Float64Array(x.size);
  const mid = new Float64Array(x.size);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const k = i * d + j;
      d1[k] = (x.data[k] - D1.data[k]) / t[i];
      mid[k] = x.data[k] + (u[i] - t[i]) * d1[k];
    }
  }
  const D2 = teacher.denoise(new Tensor(mid, x.shape, 'float64'), u);
  const out = new Float64Array(x.size);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const k = i * d + j;
      out[k] = x.data[k] + (u[i] - t[i]) * 0.5 * (d1[k] + (mid[k] - D2.data[k]) / u[i]);
    }
  }
  return new Tensor(out, x.shape, 'float64');
}
