/**
 * Learning-rate schedules as pure functions of the step. Linear warm-up then cosine decay
 * (Loshchilov & Hutter 2017, SGDR eq. 5 without restarts; the DeiT recipe TetraJet trains with,
 * training_methods.md §1.9): the decay to a small floor matters for TetraJet's oscillation study,
 * which only shows once the learning rate is small (§1.11).
 */
import { UnsupportedOptionError } from '../core/errors.js';

export interface CosineScheduleOptions {
  /** Peak learning rate. */
  readonly lr: number;
  /** Total steps; the rate reaches `minLr` at the last step. */
  readonly steps: number;
  /** Linear warm-up steps from lr/warmup to lr (default 0). */
  readonly warmup?: number;
  /** Floor the cosine decays to (default 0). */
  readonly minLr?: number;
}

/** lr(step) for 0-based `step`: warm-up ramp, then minLr + (lr − minLr)·(1 + cos(π·progress))/2. */
export function cosineSchedule(opts: CosineScheduleOptions): (step: number) => number {
  const { lr, steps, warmup = 0, minLr = 0 } = opts;
  if (!(lr >= 0 && Number.isFinite(lr)) || !(minLr >= 0 && minLr <= lr)) {
    throw new UnsupportedOptionError(
      `cosine schedule needs 0 ≤ minLr ≤ lr (finite); got lr ${lr}, minLr ${minLr}`,
    );
  }
  if (
    !Number.isSafeInteger(steps) ||
    steps < 1 ||
    !Number.isSafeInteger(warmup) ||
    warmup < 0 ||
    warmup >= steps
  ) {
    throw new UnsupportedOptionError(
      `cosine schedule needs integer steps ≥ 1 and 0 ≤ warmup < steps; got steps ${steps}, warmup ${warmup}`,
    );
  }
  return (step) => {
    if (step < warmup) return (lr * (step + 1)) / warmup;
    const span = steps - 1 - warmup;
    const progress = span === 0 ? 1 : Math.min(1, (step - warmup) / span);
    return minLr + ((lr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  };
}
