/**
 * Q-Ramping, TetraJet's adaptive ramping optimizer (TetraJet §6, App. C.2 Alg. 2;
 * training_methods.md §1.8). A short calibration of plain training measures each weight element's
 * oscillation ratio R_w = dist_Q / dist_W; oscillating elements then update less often, with their
 * gradient accumulated over the period (a larger per-element batch) and the step scaled by the
 * accumulated count (a larger per-element learning rate), so the latent weight moves in fewer, larger
 * steps instead of flickering across an FP4 threshold.
 *
 * Period, in the code's form (`adamw_bs_ramping.py`): period = min(⌊(dist_Q/k1)/(dist_W + ε)⌋·k2 + 1,
 * N_max), the paper's min(k2·⌊R_w/k1⌋ + 1, N_max). The 30-step calibration that measures dist_W
 * and dist_Q and sets the periods is `calibrateRamping` (q-ramping-calibration.ts).
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { Var } from '../autograd/var.js';
import { SlotOptimizer } from './optimizer.js';
import { type AdamWOptions, resolveAdamWOptions } from './adamw.js';

/** T0 of the calibration window (TetraJet's code). */
export const RAMPING_CALIBRATION_STEPS = 30;
/** k1: R_w is counted in units of the oscillation threshold 16 (`opt-ramping-alpha`). */
export const RAMPING_K1 = 16;
/** k2: period steps per unit of R_w/k1 (`opt-ramping-beta` = 5 in the scripts; argparse default 4). */
export const RAMPING_K2 = 5;

export interface UpdatePeriodOptions {
  /** Default 16. */
  k1?: number;
  /** Default 5. */
  k2?: number;
  /** Largest period; the code uses the iterations between calibrations. Default unbounded. */
  nMax?: number;
  /** Guard added to dist_W, as in the code. Default 1e-8. */
  eps?: number;
}

/** Per-element update periods from the calibration distances (see the module comment). */
export function updatePeriods(
  distW: Float64Array,
  distQ: Float64Array,
  opts: UpdatePeriodOptions = {},
): Float64Array {
  const { k1 = RAMPING_K1, k2 = RAMPING_K2, nMax = Infinity, eps = 1e-8 } = opts;
  if (distW.length !== distQ.length) {
    throw new RangeError(`updatePeriods: dist_W has ${distW.length} elements, dist_Q ${distQ.length}`);
  }
  if (!(nMax >= 1)) throw new UnsupportedOptionError(`nMax must be ≥ 1; got ${nMax}`);
  return Float64Array.from(distW, (dw, i) =>
    Math.min(Math.floor(distQ[i] / k1 / (dw + eps)) * k2 + 1, Math.floor(nMax)),
  );
}

/**
 * AdamW with per-element gradient accumulation (TetraJet's `adamw_bs_ramping`). Every step adds g to
 * the element's accumulator; an element updates when its accumulated count is a multiple of its
 * period (the code's `step_acc % update_period == 0`: after a recalibration shrinks a period below
 * the count already accumulated, the element waits for the next multiple), with
 * Adam moments fed g_acc/count and step size η·count/(1 − β₁ᵗ) (t the optimizer's global step, which
 * drives both bias corrections). Decoupled weight decay θ·(1 − ηλ) applies to every element every
 * step. Period 1 (the default) is plain AdamW. Periods are the slot `update_period`, saved with the
 * state; 0 reads as 1.
 */
export class RampingAdamW extends SlotOptimizer {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;

  constructor(params: readonly Var[], opts: AdamWOptions) {
    super(params, ['exp_avg', 'exp_avg_sq', 'grad_acc', 'step_acc', 'update_period']);
    ({
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
    } = resolveAdamWOptions(opts));
  }

  /** Sets parameter `index`'s per-element periods (positive integers); accumulators are kept. */
  setUpdatePeriods(index: number, periods: Float64Array): void {
    const p = this.params[index] as Var | undefined;
    if (p === undefined) throw new RangeError(`no parameter ${index}`);
    if (periods.length !== p.value.size) {
      throw new RangeError(`parameter ${index} has ${p.value.size} elements; got ${periods.length} periods`);
    }
    if (periods.some((x) => !Number.isSafeInteger(x) || x < 1)) {
      throw new UnsupportedOptionError('update periods must be positive integers');
    }
    const s = this.state();
    s.tensors[`update_period.${index}`] = new Tensor(Float64Array.from(periods), p.shape, 'float64');
    this.loadState(s);
  }

  protected update(
    value: Float64Array,
    grad: Float64Array,
    slots: Record<string, Float64Array>,
    t: number,
  ): void {
    const { exp_avg: m, exp_avg_sq: v, grad_acc: acc, step_acc: count, update_period: period } = slots;
    const { lr, beta1, beta2, eps, weightDecay } = this;
    const bias1 = 1 - beta1 ** t;
    const bias2Sqrt = Math.sqrt(1 - beta2 ** t);
    const decay = 1 - lr * weightDecay;
    for (let i = 0; i < value.length; i++) {
      value[i] *= decay;
      acc[i] += grad[i];
      count[i] += 1;
      if (count[i] % Math.max(1, period[i]) !== 0) continue;
      const g = acc[i] / count[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      value[i] -= ((lr * count[i]) / bias1) * (m[i] / (Math.sqrt(v[i]) / bias2Sqrt + eps));
      acc[i] = 0;
      count[i] = 0;
    }
  }
}

/** Q-Ramping AdamW over `params`; all periods start at 1 until `setUpdatePeriods`. */
export function rampingAdamW(params: readonly Var[], opts: AdamWOptions): RampingAdamW {
  return new RampingAdamW(params, opts);
}
