/**
 * Preconditioning of a consistency-trajectory function (training_methods.md §5.1; Kim et al. 2024,
 * "Consistency Trajectory Models", CTM §3; Zheng et al. 2025, Analytic-Precond): the jump from x_t at
 * time t to time s ≤ t on the teacher's trajectory is parameterised as
 *
 *   f_θ(x_t, t, s) = skip(t, s)·x_t + out(t, s)·D_θ(x_t, t, s),
 *
 * with the boundary condition skip(t, t) = 1, out(t, t) = 0 (f(x, t, t) = x), and D_θ a
 * denoiser-like network (EDM-preconditioned, initialised from the teacher). CTM's choice
 * skip = s/t, out = 1 − s/t is one first-order (DDIM / Euler in log t) step of the teacher PF-ODE
 * with the denoiser frozen at (x_t, t) (§5.2). Times are EDM noise levels, 0 < s ≤ t.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { checkPositive } from './checks.js';

export interface JumpCoefficients {
  skip: number;
  out: number;
}

export interface ConsistencyPreconditioning {
  readonly name: string;
  coefficients(t: number, s: number): JumpCoefficients;
}

/** 0 < s ≤ t, both finite: the jump goes backwards along the trajectory or stays. */
export function checkJumpTimes(t: number, s: number): void {
  checkPositive('jump start time t', t);
  checkPositive('jump target time s', s);
  if (s > t) {
    throw new UnsupportedOptionError(
      `a consistency jump goes from t to s ≤ t; got t = ${t}, s = ${s} (swap them, or use s = t for the identity)`,
    );
  }
}

/** CTM's preconditioning, skip = s/t, out = 1 − s/t (Kim et al. 2024 §3; note §5.1). */
export function ctmPreconditioning(): ConsistencyPreconditioning {
  return {
    name: 'ctm',
    coefficients(t, s) {
      checkJumpTimes(t, s);
      return { skip: s / t, out: 1 - s / t };
    },
  };
}
