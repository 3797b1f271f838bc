/**
 * Q-EMA, TetraJet's EMA quantizer for the forward weight Q2 (TetraJet §5, App. C.1 Alg. 1;
 * training_methods.md §1.7). Between the two E2M1 neighbours of a latent weight, choose by where
 * the weight's exponential moving average lies, not by the weight itself: a weight hovering around a
 * rounding threshold keeps the quantized value its history favours, which damps forward oscillation.
 * The EMA only chooses between the two neighbours of the current weight; it never moves the
 * quantized value further away than one grid step.
 */
import { mxfp4ScaleExponent, MXFP4_GROUP_SIZE } from '../quant/mxfp4.js';
import type { MxScaleRule } from '../quant/types.js';
import { quantizeMxfp4, type GroupAxis, type Mxfp4Groups } from './mxfp4-groups.js';
import type { Matrix } from './matrix.js';

/** TetraJet's default β (App. C.3); the scripts tune it per model in [0.9972, 0.999]. */
export const Q_EMA_DEFAULT_BETA = 0.998;

/**
 * Updates before the EMA is trusted. Reconstruction from TetraJet's code (`ema_step ≥ 10`), not the
 * paper; before that the forward weight is plain round-to-nearest.
 */
export const Q_EMA_DEFAULT_WARMUP = 10;

/** The EMA of one weight matrix: W_EMA ← β·W_EMA + (1−β)·W after every optimizer step. */
export class WeightEma {
  readonly value: Float64Array;
  private updates = 0;

  /** Starts at a copy of `initial` (the code initialises the buffer to W at construction). */
  constructor(
    initial: Float64Array,
    readonly beta = Q_EMA_DEFAULT_BETA,
    readonly warmup = Q_EMA_DEFAULT_WARMUP,
  ) {
    if (!(beta >= 0 && beta < 1)) throw new RangeError(`Q-EMA beta must be in [0, 1); got ${beta}`);
    if (!Number.isSafeInteger(warmup) || warmup < 0) {
      throw new RangeError(`Q-EMA warmup must be a non-negative integer; got ${warmup}`);
    }
    this.value = Float64Array.from(initial);
  }

  /** One EMA step from the weights just written by the optimizer. */
  update(w: Float64Array): void {
    if (w.length !== this.value.length) {
      throw new RangeError(`WeightEma of ${this.value.length} elements updated with ${w.length}`);
    }
    const b = this.beta;
    for (let i = 0; i < w.length; i++) this.value[i] = b * this.value[i] + (1 - b) * w[i];
    this.updates++;
  }

  /** EMA updates applied so far. */
  get steps(): number {
    return this.updates;
  }

  /** True once `steps ≥ warmup`, when `quantizeMxfp4Ema` should use it. */
  get ready(): boolean {
    return this.updates >= this.warmup;
  }
}

/**
 * The E2M1 value for scaled weight v chosen by scaled EMA e (Alg. 1, in the code's form,
 * `cast_to_fp_ExMy_with_EMA` in TetraJet's `quantization/QuantizerFP_torch.py`): take the floor
 * neighbour lo of |v| on the grid spacing of |v|'s binade (0.5 below 2, 1 in [2, 4), 2 in [4, 6])
 * and bump to lo + step when sign(v)·e — the EMA "follows" v's sign, as the code's
 * `ema_x_signed = sign * ema_x` does, so an EMA of the other sign reads as negative and never
 * bumps — lies at least half a step above lo. So the pick is the neighbour nearer the EMA, ties going
 * up; an EMA outside [lo, lo + step] picks the nearer end. v is clipped to ±6 first, and lo + step
 * never exceeds 6. v = 0 gives 0 whatever the EMA, since the code multiplies by sign(0) = 0.
 */
export function roundE2M1TowardEma(v: number, e: number): number {
  if (v === 0) return 0;
  const sign = v < 0 ? -1 : 1;
  const a = Math.min(Math.abs(v), 6);
  const step = a < 2 ? 0.5 : a < 4 ? 1 : 2;
  const lo = Math.floor(a / step) * step;
  const frac = (sign * e - lo) / step;
  const r = frac >= 0.5 ? Math.min(lo + step, 6) : lo;
  return sign * r;
}

export interface QuantizeMxfp4EmaOptions {
  along: GroupAxis;
  /** Default 'truncation-free' (TetraJet). */
  scaleRule?: MxScaleRule;
  /** Default 32. */
  groupSize?: number;
}

/**
 * Q2 with Q-EMA (TetraJet Alg. 1): the scale S comes from W alone (truncation-free by default), the
 * elements from `roundE2M1TowardEma(W/S, W_EMA/S)`. `ema` has W's row-major layout. Returns the same
 * groups `quantizeMxfp4` does, so `dequantizeMxfp4` and the backward's double quantization apply.
 */
export function quantizeMxfp4Ema(w: Matrix, ema: Float64Array, opts: QuantizeMxfp4EmaOptions): Mxfp4Groups {
  if (ema.length !== w.data.length) {
    throw new RangeError(`quantizeMxfp4Ema: EMA has ${ema.length} elements, W has ${w.data.length}`);
  }
  const groupSize = opts.groupSize ?? MXFP4_GROUP_SIZE;
  const groupsPerRow = Math.ceil(w.cols / groupSize);
  const groupOf = (r: number, c: number) =>
    opts.along === 'row'
      ? r * groupsPerRow + Math.floor(c / groupSize)
      : Math.floor(r / groupSize) * w.cols + c;
  const groups = opts.along === 'row' ? w.rows * groupsPerRow : Math.ceil(w.rows / groupSize) * w.cols;
  const amax = new Float64Array(groups);
  for (let r = 0; r < w.rows; r++) {
    for (let c = 0; c < w.cols; c++) {
      const g = groupOf(r, c);
      amax[g] = Math.max(amax[g], Math.abs(w.data[r * w.cols + c]));
    }
  }
  const exponents = Int16Array.from(amax, (m) => mxfp4ScaleExponent(m, opts.scaleRule));
  const elements = new Float64Array(w.data.length);
  for (let r = 0; r < w.rows; r++) {
    for (let c = 0; c < w.cols; c++) {
      const i = r * w.cols + c;
      const s = 2 ** exponents[groupOf(r, c)];
      elements[i] = roundE2M1TowardEma(w.data[i] / s, ema[i] / s);
    }
  }
  return { rows: w.rows, cols: w.cols, along: opts.along, groupSize, elements, exponents };
}

/** Q2 for a layer with Q-EMA: the EMA rule once `ema.ready`, round-to-nearest (Q_D) before. */
export function quantizeForwardWeight(w: Matrix, ema: WeightEma, opts: QuantizeMxfp4EmaOptions): Mxfp4Groups {
  if (ema.ready) return quantizeMxfp4Ema(w, ema.value, opts);
  return quantizeMxfp4(w, { ...opts, rounding: 'nearest-even' });
}
