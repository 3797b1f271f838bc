/**
 * GFT for autoregressive and masked models (training_methods.md §3.1; code `thu-ml/GFT`
 * `LlamaGen/autoregressive/train/GFT_c2i.py`): interpolate logits instead of noise predictions,
 *
 *   ℓ^c = β·ℓ^s(c, β) + (1 − β)·sg[ℓ^u(∅, β = 1)],
 *
 * and train with the usual cross-entropy of softmax(ℓ^c). The optimum has softmax(ℓ^c) = p^c, so
 * ℓ^s = ℓ^u + (1/β)·(ℓ^c − ℓ^u) up to a per-row constant, i.e. p^s ∝ p^u·(p^c/p^u)^{1/β} — CFG in logit
 * space with w = 1/β. The caller runs the unconditional forward (no-grad, training-mode dropout in
 * the reference) and passes its logits; they are detached here.
 */
import { ShapeError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import { add, mul } from '../autograd/elementwise.js';
import { type CrossEntropyOptions, crossEntropy } from '../autograd/cross-entropy.js';
import { broadcastShapes } from '../autograd/broadcast.js';
import { type F64, type Var, constant } from '../autograd/var.js';
import { checkInRange } from './checks.js';

/**
 * β·ℓ_s + (1 − β)·sg[ℓ_u] for logits [..., V]. β is one number, or a tensor that broadcasts against
 * the logits (e.g. [B, 1, 1] for one β per sequence of [B, T, V] logits); every β must be in [0, 1].
 */
export function gftInterpolateLogits(sampling: Var, uncond: Var, beta: number | F64): Var {
  if (sampling.shape.length !== uncond.shape.length || sampling.shape.some((d, i) => d !== uncond.shape[i])) {
    throw new ShapeError(
      `sampling and unconditional logits must have one shape; got ${formatShape(sampling.shape)} and ${formatShape(uncond.shape)}`,
    );
  }
  const b = typeof beta === 'number' ? new Tensor(Float64Array.of(beta), [], 'float64') : beta;
  for (let i = 0; i < b.size; i++) checkInRange('GFT β', b.data[i], 0, 1);
  const out = broadcastShapes(b.shape, sampling.shape);
  if (out.length !== sampling.shape.length || out.some((d, i) => d !== sampling.shape[i])) {
    throw new ShapeError(
      `β of shape ${formatShape(b.shape)} must broadcast to the logits ${formatShape(sampling.shape)}`,
    );
  }
  const oneMinus = new Tensor(
    Float64Array.from(b.data, (v) => 1 - v),
    b.shape,
    'float64',
  );
  return add(mul(constant(b), sampling), mul(constant(oneMinus), uncond.detach()));
}

/** Cross-entropy of softmax(β·ℓ_s + (1 − β)·sg[ℓ_u]) against integer targets (one per row). */
export function gftLogitLoss(
  sampling: Var,
  uncond: Var,
  targets: ArrayLike<number>,
  beta: number | F64,
  opts: CrossEntropyOptions = {},
): Var {
  return crossEntropy(gftInterpolateLogits(sampling, uncond, beta), targets, opts);
}
