/**
 * The EDM noise process and preconditioning (Karras et al. 2022, "Elucidating the Design Space of
 * Diffusion-Based Generative Models", Table 1 and §5): x = x₀ + σ·ε with σ ∈ [σ_min, σ_max] =
 * [0.002, 80], the denoiser D(x; σ) ≈ E[x₀ | x] written as
 *
 *   D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ))
 *   c_skip = σ_d²/(σ² + σ_d²),  c_out = σ·σ_d/√(σ² + σ_d²),  c_in = 1/√(σ² + σ_d²),  c_noise = ¼·ln σ
 *
 * with σ_d = 0.5 (the data std the paper assumes for images), the training distribution
 * ln σ ~ N(P_mean = −1.2, P_std = 1.2) and loss weight λ(σ) = (σ² + σ_d²)/(σ·σ_d)², and the sampling
 * grid σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, ρ = 7, followed by σ_N = 0
 * (Eq. 5). The PF-ODE is dx/dσ = (x − D(x; σ))/σ (Eq. 3 with s(t) = 1, σ(t) = t).
 */
import type { Rng } from '../core/rng.js';
import { checkInRange, checkInteger, checkPositive } from './checks.js';

/** EDM defaults (Karras et al. 2022, Table 1 and §5). */
export const EDM_SIGMA_MIN = 0.002;
export const EDM_SIGMA_MAX = 80;
export const EDM_SIGMA_DATA = 0.5;
export const EDM_RHO = 7;
export const EDM_P_MEAN = -1.2;
export const EDM_P_STD = 1.2;

/** The four preconditioning coefficients at one σ. */
export interface EdmPreconditioning {
  cSkip: number;
  cOut: number;
  cIn: number;
  cNoise: number;
}

/** c_skip, c_out, c_in, c_noise of Karras et al. 2022 Table 1 at noise level σ > 0 (σ_d default 0.5). */
export function edmPreconditioning(sigma: number, sigmaData = EDM_SIGMA_DATA): EdmPreconditioning {
  checkPositive('EDM noise level σ', sigma);
  checkPositive('σ_data', sigmaData);
  const s2 = sigma * sigma + sigmaData * sigmaData;
  return {
    cSkip: (sigmaData * sigmaData) / s2,
    cOut: (sigma * sigmaData) / Math.sqrt(s2),
    cIn: 1 / Math.sqrt(s2),
    cNoise: 0.25 * Math.log(sigma),
  };
}

/** EDM's loss weight λ(σ) = (σ² + σ_d²)/(σ·σ_d)², which makes the effective target F's unit variance. */
export function edmLossWeight(sigma: number, sigmaData = EDM_SIGMA_DATA): number {
  checkPositive('EDM noise level σ', sigma);
  return (sigma * sigma + sigmaData * sigmaData) / (sigma * sigmaData) ** 2;
}

export interface EdmTrainingSigmaOptions {
  /** Mean of ln σ (default −1.2). */
  pMean?: number;
  /** Std of ln σ (default 1.2). */
  pStd?: number;
}

/** One training noise level, ln σ ~ N(P_mean, P_std²) (Karras et al. 2022 §5, Table 1). */
export function sampleEdmTrainingSigma(rng: Rng, opts: EdmTrainingSigmaOptions = {}): number {
  const { pMean = EDM_P_MEAN, pStd = EDM_P_STD } = opts;
  return Math.exp(pMean + pStd * rng.normal());
}

export interface EdmSigmaGridOptions {
  /** Number of noise levels N before the final 0 (≥ 1). */
  steps: number;
  sigmaMin?: number;
  sigmaMax?: number;
  /** Spacing exponent ρ (default 7). */
  rho?: number;
}

/**
 * σ_0 = σ_max > σ_1 > … > σ_{N−1} = σ_min, then σ_N = 0 (Karras et al. 2022 Eq. 5): N + 1 values.
 * With N = 1 the grid is [σ_max, 0].
 */
export function edmSigmaGrid(opts: EdmSigmaGridOptions): Float64Array {
  const { steps, sigmaMin = EDM_SIGMA_MIN, sigmaMax = EDM_SIGMA_MAX, rho = EDM_RHO } = opts;
  checkInteger('EDM steps', steps, 1);
  checkPositive('sigmaMin', sigmaMin);
  checkInRange('sigmaMax', sigmaMax, sigmaMin, Number.MAX_VALUE, { lo: steps > 1 });
  checkPositive('rho', rho);
  const out = new Float64Array(steps + 1);
  const hi = sigmaMax ** (1 / rho);
  const lo = sigmaMin ** (1 / rho);
  for (let i = 0; i < steps; i++)
    out[i] = steps === 1 ? sigmaMax : (hi + (i / (steps - 1)) * (lo - hi)) ** rho;
  // The endpoints exactly (a power of a root can be an ulp off), so they can be looked up by value.
  out[0] = sigmaMax;
  if (steps > 1) out[steps - 1] = sigmaMin;
  out[steps] = 0;
  return out;
}
