/**
 * Q-Ramping's oscillation calibration (TetraJet §6, App. C.2 Alg. 2; training_methods.md §1.8), in
 * the form of the reference code (`BSRamping_calib_update_period` in
 * `quantization/Qoptimizers/Qengine_DeiT.py`):
 *
 * 1. Save the parameters and the optimizer state.
 * 2. Make the optimizer plain AdamW: every period 1, gradient and step accumulators 0 (the code's
 *    `clear_for_ramping`; moments and the step count are kept).
 * 3. Run `steps + 1` training steps (the code's `calib_steps = 30` loop runs steps 0…30). After each
 *    optimizer step, record every calibrated weight W and its deterministic forward quantization
 *    Q2(W) (MXFP4 1×32 groups along the rows, round-to-nearest, no Q-EMA), so the window has
 *    `steps` = T0 = 30 transitions, accumulating dist_W = Σ|ΔW| and dist_Q = Σ|ΔQ2(W)| per element.
 * 4. period = min(⌊(dist_Q/k1)/(dist_W + ε)⌋·k2 + 1, N_max) per element (`updatePeriods`,
 *    k1 = 16, k2 = 5).
 * 5. Restore the saved parameters and optimizer state (so the calibration steps leave no trace),
 *    then set the new periods (the code's `reset_update_period`: accumulated gradients are kept;
 *    parameters that are not calibrated get period 1).
 *
 * Alg. 2 repeats this at the start of every "epoch" with N_max = the steps per epoch: call
 * `calibrateRamping` at step 0 and every N_max steps after, with `nMax` = N_max. The loss callback
 * decides the calibration data (the code draws it from a separate calibration loader).
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import { backward } from '../autograd/backward.js';
import type { Var } from '../autograd/var.js';
import type { Matrix } from '../nn/matrix.js';
import { quantizeMxfp4 } from '../nn/mxfp4-groups.js';
import { OscillationTracker } from '../nn/oscillation.js';
import type { MxScaleRule } from '../quant/types.js';
import {
  RAMPING_CALIBRATION_STEPS,
  RAMPING_K2,
  type RampingAdamW,
  type UpdatePeriodOptions,
  updatePeriods,
} from './q-ramping.js';

export interface RampingCalibrationOptions extends UpdatePeriodOptions {
  readonly optimizer: RampingAdamW;
  /**
   * Indices (into `optimizer.params`) of the weights that get periods: the quantized layers'
   * [out, in] weights (TetraJet ramps only the block linears). Every other parameter gets period 1.
   */
  readonly weights: readonly number[];
  /** The loss of calibration step i (0 ≤ i ≤ steps); the routine zeroes, backpropagates and steps. */
  readonly loss: (i: number) => Var;
  /** Transitions in the window, T0 (default 30, so 31 optimizer steps run). */
  readonly steps?: number;
  /** Scale rule of the recorded Q2 (default 'truncation-free', TetraJet's). */
  readonly scaleRule?: MxScaleRule;
}

export interface RampingCalibration {
  /** Per calibrated weight (in `weights` order), the periods now set in the optimizer. */
  readonly periods: readonly Float64Array[];
  /** Per calibrated weight, the fraction of elements with R_w > 16 over the window. */
  readonly oscillatingFraction: readonly number[];
  /** Per calibrated weight, r(W) and r(W_Q) over the window (TetraJet App. A). */
  readonly rW: readonly number[];
  readonly rWQ: readonly number[];
  /** Fraction of all calibrated elements whose period is above 1. */
  readonly rampedFraction: number;
  /** Mean period over all calibrated elements. */
  readonly meanPeriod: number;
}

const asMatrix = (p: Var): Matrix => ({
  data: p.value.data as Float64Array,
  rows: p.shape[0],
  cols: p.shape[1],
});

/** Runs the calibration described in the module comment and sets the optimizer's periods. */
export function calibrateRamping(opts: RampingCalibrationOptions): RampingCalibration {
  const { optimizer, weights } = opts;
  const steps = opts.steps ?? RAMPING_CALIBRATION_STEPS;
  if (!Number.isSafeInteger(steps) || steps < 1) {
    throw new UnsupportedOptionError(`calibration steps must be a positive integer; got ${steps}`);
  }
  const k2 = opts.k2 ?? RAMPING_K2;
  if (!Number.isSafeInteger(k2) || k2 < 1) {
    throw new UnsupportedOptionError(`k2 must be a positive integer (periods are whole steps); got ${k2}`);
  }
  const params = optimizer.params;
  for (const i of weights) {
    const p = params[i] as Var | undefined;
    if (p === undefined) {
      throw new RangeError(
        `calibrated weight index ${i} is not one of the optimizer's ${params.length} parameters`,
      );
    }
    if (p.shape.length !== 2) {
      throw new ShapeError(
        `calibrated weight ${i} must be a [out, in] matrix; got shape ${formatShape(p.shape)}`,
      );
    }
  }
  const savedValues = params.map((p) => Float64Array.from(p.value.data));
  const saved = optimizer.state();
  const plain = optimizer.state();
  params.forEach((p, i) => {
    plain.tensors[`update_period.${i}`] = new Tensor(
      new Float64Array(p.value.size).fill(1),
      p.shape,
      'float64',
    );
    plain.tensors[`grad_acc.${i}`] = new Tensor(new Float64Array(p.value.size), p.shape, 'float64');
    plain.tensors[`step_acc.${i}`] = new Tensor(new Float64Array(p.value.size), p.shape, 'float64');
  });
  optimizer.loadState(plain);
  const trackers = weights.map((i) => new OscillationTracker(params[i].value.size));
  const quantize = (m: Matrix) =>
    quantizeMxfp4(m, { along: 'row', rounding: 'nearest-even', scaleRule: opts.scaleRule });
  try {
    for (let s = 0; s <= steps; s++) {
      optimizer.zeroGrad();
      backward(opts.loss(s));
      optimizer.step();
      weights.forEach((i, j) => {
        const m = asMatrix(params[i]);
        trackers[j].observe(m, quantize(m));
      });
    }
  } finally {
    optimizer.zeroGrad();
    params.forEach((p, i) => p.value.data.set(savedValues[i]));
    optimizer.loadState(saved);
  }
  const periods = trackers.map((t) => updatePeriods(t.distW, t.distQ, opts));
  const next = optimizer.state();
  params.forEach((p, i) => {
    const j = weights.indexOf(i);
    const data = j >= 0 ? Float64Array.from(periods[j]) : new Float64Array(p.value.size).fill(1);
    next.tensors[`update_period.${i}`] = new Tensor(data, p.shape, 'float64');
  });
  optimizer.loadState(next);
  let total = 0;
  let ramped = 0;
  let sum = 0;
  for (const ps of periods) {
    for (const v of ps) {
      total++;
      sum += v;
      if (v > 1) ramped++;
    }
  }
  return {
    periods,
    oscillatingFraction: trackers.map((t) => t.oscillatingFraction()),
    rW: trackers.map((t) => t.rW),
    rWQ: trackers.map((t) => t.rWQ),
    rampedFraction: total === 0 ? 0 : ramped / total,
    meanPeriod: total === 0 ? 1 : sum / total,
  };
}
