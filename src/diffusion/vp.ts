/**
 * The variance-preserving (VP) noise process of DDPM (Ho et al. 2020, §4 and App. B): x_t =
 * √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε with β_i linear from 1e-4 to 0.02 over T = 1000 steps and
 * ᾱ_t = Π_{i ≤ t} (1 − β_i). Timesteps are the discrete indices t ∈ {0, …, T − 1} the DDPM/DiT code
 * uses (index 0 is one noising step; GFT's DiT trains on these, training_methods.md §3.1), held in
 * float64 as guided-diffusion does ("Use float64 for accuracy").
 *
 * In the notation the samplers share, α_t = √ᾱ_t is the signal scale and σ_t = √(1 − ᾱ_t) the noise
 * scale; σ_t/α_t is the equivalent EDM noise level (Karras et al. 2022, Table 1: dividing x_t by α_t
 * turns the VP process into x₀ + σ·ε).
 *
 * Continuous time (Song et al. 2021, "Score-Based Generative Modeling through SDEs", Eq. 11 and App.
 * B): the VP SDE with β(τ) = β_min + τ(β_max − β_min), τ ∈ [0, 1], has
 * ᾱ(τ) = exp(−β_min·τ − ½(β_max − β_min)·τ²); with β_min = 0.1 = T·1e-4 and β_max = 20 = T·0.02 it is
 * the T → ∞ limit of DDPM's linear schedule, index t matching τ = (t + 1)/T.
 */
import { checkInRange, checkInteger, checkPositive } from './checks.js';

/** DDPM's linear β schedule (Ho et al. 2020 §4): β₁ = 1e-4, β_T = 0.02, T = 1000. */
export const DDPM_BETA_START = 1e-4;
export const DDPM_BETA_END = 0.02;
export const DDPM_TIMESTEPS = 1000;

export interface VpScheduleOptions {
  /** β of the first step (default 1e-4, DDPM). */
  betaStart?: number;
  /** β of the last step (default 0.02, DDPM). */
  betaEnd?: number;
  /** Number of discrete timesteps T (default 1000, DDPM). */
  timesteps?: number;
}

/** The discrete VP process; see the module comment. */
export class VpSchedule {
  readonly timesteps: number;
  readonly betas: Float64Array;
  /** ᾱ_t for t = 0 … T − 1. */
  readonly alphasCumprod: Float64Array;

  constructor(opts: VpScheduleOptions = {}) {
    const { betaStart = DDPM_BETA_START, betaEnd = DDPM_BETA_END, timesteps = DDPM_TIMESTEPS } = opts;
    checkInteger('timesteps', timesteps, 2);
    checkInRange('betaStart', betaStart, 0, 1, { lo: true, hi: true });
    checkInRange('betaEnd', betaEnd, betaStart, 1, { hi: true });
    this.timesteps = timesteps;
    // np.linspace(betaStart, betaEnd, T): endpoints exact, interior by the same formula numpy uses.
    this.betas = new Float64Array(timesteps);
    const step = (betaEnd - betaStart) / (timesteps - 1);
    for (let i = 0; i < timesteps; i++) this.betas[i] = i === timesteps - 1 ? betaEnd : betaStart + i * step;
    this.alphasCumprod = new Float64Array(timesteps);
    let prod = 1;
    for (let i = 0; i < timesteps; i++) {
      prod *= 1 - this.betas[i];
      this.alphasCumprod[i] = prod;
    }
  }

  private index(t: number): number {
    checkInteger('VP timestep t', t, 0, this.timesteps - 1);
    return t;
  }

  /** ᾱ_t; `alphaBar(-1)` is 1 (the clean data DDIM's last step lands on). */
  alphaBar(t: number): number {
    if (t === -1) return 1;
    return this.alphasCumprod[this.index(t)];
  }

  /** Signal scale α_t = √ᾱ_t. */
  alpha(t: number): number {
    return Math.sqrt(this.alphaBar(t));
  }

  /** Noise scale σ_t = √(1 − ᾱ_t). */
  sigma(t: number): number {
    return Math.sqrt(1 - this.alphaBar(t));
  }

  /** log-SNR λ_t = log(ᾱ_t / (1 − ᾱ_t)). */
  logSnr(t: number): number {
    const a = this.alphaBar(t);
    return Math.log(a / (1 - a));
  }

  /** The equivalent EDM noise level σ_t/α_t = √((1 − ᾱ_t)/ᾱ_t). */
  edmSigma(t: number): number {
    const a = this.alphaBar(t);
    return Math.sqrt((1 - a) / a);
  }

  /** Continuous time τ = (t + 1)/T of discrete index t (the VP SDE's time, Song et al. 2021). */
  continuousTime(t: number): number {
    return (this.index(t) + 1) / this.timesteps;
  }
}

export interface VpSdeOptions {
  /** β_min of the VP SDE (default 0.1 = T·1e-4, Song et al. 2021 App. B). */
  betaMin?: number;
  /** β_max of the VP SDE (default 20 = T·0.02). */
  betaMax?: number;
}

/** ᾱ(τ) = exp(−β_min·τ − ½(β_max − β_min)·τ²) of the continuous VP SDE, τ ∈ [0, 1]. */
export function vpSdeAlphaBar(tau: number, opts: VpSdeOptions = {}): number {
  const { betaMin = 0.1, betaMax = 20 } = opts;
  checkInRange('VP SDE time τ', tau, 0, 1);
  checkPositive('betaMin', betaMin);
  checkInRange('betaMax', betaMax, betaMin, Number.MAX_VALUE);
  return Math.exp(-betaMin * tau - 0.5 * (betaMax - betaMin) * tau * tau);
}

/** The continuous VP SDE's (α(τ), σ(τ)) = (√ᾱ(τ), √(1 − ᾱ(τ))). */
export function vpSdeScales(tau: number, opts: VpSdeOptions = {}): { alpha: number; sigma: number } {
  const a = vpSdeAlphaBar(tau, opts);
  return { alpha: Math.sqrt(a), sigma: Math.sqrt(-Math.expm1(Math.log(a))) };
}
