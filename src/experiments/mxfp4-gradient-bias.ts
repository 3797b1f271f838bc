/**
 * Is a quantized linear layer's backward an unbiased estimate of the straight-through gradient of
 * its quantized forward? (TetraJet §3.4; training_methods.md §1.4, §1.11 "extra check".)
 *
 * For Y = Q1(X)·Q2(W)ᵀ the straight-through (STE) gradients are ∂X = ∂Y·Q2(W) and ∂W = ∂Yᵀ·Q1(X),
 * with Q1, Q2 the estimator's own deterministic forward quantizers. On one fixed (X, W, ∂Y) the
 * check draws the stochastic backward n times (one `step` stream each) and compares the mean with
 * the STE gradient: per element z = (mean − STE)/(s/√n), s the sample std over draws. Unbiased
 * draws give z ≈ N(0, 1), so the RMS of z over elements is ≈ 1; a bias b adds ≈ b·√n/s.
 *
 * Estimators:
 * - 'tetrajet' (linear mode 'mxfp4'): stochastic Q3–Q6 with double quantization and the
 *   truncation-free scale — unbiased by construction;
 * - 'mxfp4-ocp': the same six quantizers with the OCP scale, whose clipping of |x/S| > 6 biases
 *   stochastic rounding (§1.2);
 * - 'microscaling': the Microscaling design TetraJet compares against (§1.4): OCP scale,
 *   deterministic rounding everywhere, and a backward that re-quantizes the full-precision X and W
 *   (not the forward's quantized ones). It is deterministic, so it has a bias but no variance:
 *   its z is not defined and only its relative bias is reported.
 */
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { backward } from '../autograd/backward.js';
import { param } from '../autograd/var.js';
import { linear } from '../nn/linear.js';
import { type Matrix, gemm } from '../nn/matrix.js';
import { dequantizeMxfp4, quantizeMxfp4 } from '../nn/mxfp4-groups.js';
import type { MxScaleRule } from '../quant/types.js';

export type GradientEstimator = 'tetrajet' | 'mxfp4-ocp' | 'microscaling';

export const GRADIENT_ESTIMATORS: readonly GradientEstimator[] = ['tetrajet', 'mxfp4-ocp', 'microscaling'];

export interface GradientBias {
  /** ‖mean − STE‖ / ‖STE‖ over the elements of ∂X and ∂W. */
  readonly relBiasX: number;
  readonly relBiasW: number;
  /** RMS over elements of (mean − STE)/(s/√n); NaN for a deterministic estimator. */
  readonly zRmsX: number;
  readonly zRmsW: number;
  /** ‖s/√n‖ / ‖STE‖: the relative deviation pure noise would leave after n draws. */
  readonly noiseFloorX: number;
  readonly noiseFloorW: number;
}

export interface GradientBiasOptions {
  readonly tokens: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly draws: number;
  readonly seed: number;
}

const deq = (m: Matrix, along: 'row' | 'column', scaleRule: MxScaleRule): Matrix =>
  dequantizeMxfp4(quantizeMxfp4(m, { along, rounding: 'nearest-even', scaleRule }));

const transposeOf = (m: Matrix): Matrix => {
  const data = new Float64Array(m.data.length);
  for (let i = 0; i < m.rows; i++)
    for (let j = 0; j < m.cols; j++) data[j * m.rows + i] = m.data[i * m.cols + j];
  return { data, rows: m.cols, cols: m.rows };
};

function summarise(
  sum: Float64Array,
  sumSq: Float64Array,
  ste: Float64Array,
  n: number,
): { rel: number; z: number; floor: number } {
  let diff = 0;
  let norm = 0;
  let z2 = 0;
  let counted = 0;
  let floor = 0;
  for (let i = 0; i < ste.length; i++) {
    const mean = sum[i] / n;
    diff += (mean - ste[i]) ** 2;
    norm += ste[i] ** 2;
    if (n > 1) {
      const variance = Math.max(0, (sumSq[i] - n * mean * mean) / (n - 1));
      floor += variance / n;
      if (variance > 0) {
        z2 += (mean - ste[i]) ** 2 / (variance / n);
        counted++;
      }
    }
  }
  return {
    rel: Math.sqrt(diff / norm),
    z: counted === 0 ? NaN : Math.sqrt(z2 / counted),
    floor: Math.sqrt(floor / norm),
  };
}

/** The check described in the module comment, for one estimator. */
export function gradientBias(estimator: GradientEstimator, o: GradientBiasOptions): GradientBias {
  const rng = Rng.fromSeed(o.seed).split(7);
  const x: Matrix = { data: new Float64Array(o.tokens * o.inFeatures), rows: o.tokens, cols: o.inFeatures };
  const w: Matrix = {
    data: new Float64Array(o.outFeatures * o.inFeatures),
    rows: o.outFeatures,
    cols: o.inFeatures,
  };
  const gy: Matrix = {
    data: new Float64Array(o.tokens * o.outFeatures),
    rows: o.tokens,
    cols: o.outFeatures,
  };
  rng.split(0).fillNormal(x.data);
  rng.split(1).fillNormal(w.data, 0, 1 / Math.sqrt(o.inFeatures));
  rng.split(2).fillNormal(gy.data);
  const scaleRule: MxScaleRule = estimator === 'tetrajet' ? 'truncation-free' : 'ocp';
  // STE of the estimator's own quantized forward: ∂X = ∂Y·Q2(W), ∂W = ∂Yᵀ·Q1(X).
  const xq = deq(x, 'row', scaleRule);
  const wq = deq(w, 'row', scaleRule);
  const steX = gemm(gy, false, wq, false).data;
  const steW = gemm(gy, true, xq, false).data;
  const sumX = new Float64Array(steX.length);
  const sqX = new Float64Array(steX.length);
  const sumW = new Float64Array(steW.length);
  const sqW = new Float64Array(steW.length);
  let n: number;
  if (estimator === 'microscaling') {
    // Deterministic Q_D with the OCP scale on ∂Y and on the full-precision X and W, grouped along
    // each backward GEMM's reduction axis (C for ∂X, tokens for ∂W).
    const gX = gemm(deq(gy, 'row', 'ocp'), false, deq(w, 'column', 'ocp'), false).data;
    const gW = gemm(transposeOf(deq(gy, 'column', 'ocp')), false, deq(x, 'column', 'ocp'), false).data;
    sumX.set(gX);
    sumW.set(gW);
    n = 1;
  } else {
    const mode = estimator === 'tetrajet' ? 'mxfp4' : 'mxfp4-ocp';
    const dY = new Tensor(gy.data, [o.tokens, o.outFeatures], 'float64');
    for (let k = 0; k < o.draws; k++) {
      const xv = param(new Tensor(x.data, [o.tokens, o.inFeatures], 'float64'));
      const wv = param(new Tensor(w.data, [o.outFeatures, o.inFeatures], 'float64'));
      backward(linear(xv, wv, undefined, { mode, seed: o.seed, step: k }), dY);
      const gx = xv.grad?.data as Float64Array;
      const gw = wv.grad?.data as Float64Array;
      for (let i = 0; i < gx.length; i++) {
        sumX[i] += gx[i];
        sqX[i] += gx[i] * gx[i];
      }
      for (let i = 0; i < gw.length; i++) {
        sumW[i] += gw[i];
        sqW[i] += gw[i] * gw[i];
      }
    }
    n = o.draws;
  }
  const sx = summarise(sumX, sqX, steX, n);
  const sw = summarise(sumW, sqW, steW, n);
  return {
    relBiasX: sx.rel,
    relBiasW: sw.rel,
    zRmsX: sx.z,
    zRmsW: sw.z,
    noiseFloorX: sx.floor,
    noiseFloorW: sw.floor,
  };
}
