/**
 * Classifier-free guidance (Ho & Salimans 2022, Eq. 6; training_methods.md §3.1):
 * ε_cfg = ε_u + w·(ε_c − ε_u), with w = 1 + s the guidance scale of GFT's paper (w = 1 is plain
 * conditional sampling, w = 0 unconditional, w > 1 sharpens towards the class). It costs two network
 * evaluations per sampling step — the conditional and the unconditional (null-label) branch — which is
 * the cost GFT removes.
 */
import { ShapeError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkInRange } from './checks.js';
import type { ConditionalEpsModel, EpsModel } from './models.js';

/** Guidance scales are finite and ≥ 0 (w < 0 would push away from the class; no method here uses it). */
export function checkGuidanceScale(w: number): void {
  checkInRange('guidance scale w', w, 0, Number.MAX_VALUE);
}

/** ε_u + w·(ε_c − ε_u), elementwise. */
export function guidanceCombine(epsUncond: F64, epsCond: F64, w: number): F64 {
  checkGuidanceScale(w);
  if (epsUncond.size !== epsCond.size) {
    throw new ShapeError(
      `guidance needs ε_u and ε_c of the same shape; got ${formatShape(epsUncond.shape)} and ${formatShape(epsCond.shape)}`,
    );
  }
  const out = new Float64Array(epsCond.size);
  for (let i = 0; i < out.length; i++) out[i] = epsUncond.data[i] + w * (epsCond.data[i] - epsUncond.data[i]);
  return new Tensor(out, epsCond.shape, 'float64');
}

/**
 * The guided ε-model of a conditional model for fixed labels. At w = 1 the combination is exactly the
 * conditional branch, so only that branch runs (1 NFE, the fair cost of unguided sampling); otherwise
 * both run, nfePerCall = 2 × the base model's.
 */
export function classifierFreeGuidance(model: ConditionalEpsModel, labels: Int32Array, w: number): EpsModel {
  checkGuidanceScale(w);
  const nullLabels = new Int32Array(labels.length).fill(model.numClasses);
  if (w === 1) return { nfePerCall: model.nfePerCall, predict: (x, t) => model.predict(x, t, labels) };
  return {
    nfePerCall: 2 * model.nfePerCall,
    predict: (x, t) => guidanceCombine(model.predict(x, t, nullLabels), model.predict(x, t, labels), w),
  };
}
