/**
 * AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
 * Regularization", ICLR 2019, Algorithm 2), in torch.optim.AdamW's order and bias correction. For
 * update t with gradient g:
 *
 *   θ ← θ·(1 − η·λ)                      (decay applied to the weights, not added to the gradient)
 *   m ← β₁·m + (1 − β₁)·g
 *   v ← β₂·v + (1 − β₂)·g²
 *   θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 *
 * PyTorch multiplies the decay by the learning rate η (the paper's schedule multiplier times λ), and
 * adds ε after dividing √v by its bias correction — both kept here so results match torch's.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import type { Var } from '../autograd/var.js';
import { type Optimizer, SlotOptimizer } from './optimizer.js';

export interface AdamWOptions {
  /** Learning rate η. */
  lr: number;
  /** Moment decay rates (β₁, β₂), each in [0, 1). Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Denominator guard ε. Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay λ. Default 0.01 (PyTorch's). */
  weightDecay?: number;
}

/** AdamW's hyperparameters with defaults filled in and validated (UnsupportedOptionError otherwise). */
export function resolveAdamWOptions(opts: AdamWOptions): {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
} {
  const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01 } = opts;
  if (!(lr >= 0) || !Number.isFinite(lr))
    throw new UnsupportedOptionError(`lr must be finite and ≥ 0; got ${lr}`);
  for (const b of betas) {
    if (!(b >= 0 && b < 1))
      throw new UnsupportedOptionError(`betas must be in [0, 1); got [${betas.join(', ')}]`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps))
    throw new UnsupportedOptionError(`eps must be finite and ≥ 0; got ${eps}`);
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new UnsupportedOptionError(`weightDecay must be finite and ≥ 0; got ${weightDecay}`);
  }
  return { lr, beta1: betas[0], beta2: betas[1], eps, weightDecay };
}

class AdamW extends SlotOptimizer {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;

  constructor(params: readonly Var[], opts: AdamWOptions) {
    super(params, ['exp_avg', 'exp_avg_sq']);
    ({
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
    } = resolveAdamWOptions(opts));
  }

  protected update(
    value: Float64Array,
    grad: Float64Array,
    slots: Record<string, Float64Array>,
    t: number,
  ): void {
    const { exp_avg: m, exp_avg_sq: v } = slots;
    const { lr, beta1, beta2, eps, weightDecay } = this;
    const stepSize = lr / (1 - beta1 ** t);
    const bias2Sqrt = Math.sqrt(1 - beta2 ** t);
    const decay = 1 - lr * weightDecay;
    for (let i = 0; i < value.length; i++) {
      const g = grad[i];
      value[i] *= decay;
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      value[i] -= stepSize * (m[i] / (Math.sqrt(v[i]) / bias2Sqrt + eps));
    }
  }
}

/** AdamW over `params` (see the module comment for the update). */
export function adamw(params: readonly Var[], opts: AdamWOptions): Optimizer {
  return new AdamW(params, opts);
}
