/**
 * Stochastic gradient descent with optional heavy-ball or Nesterov momentum and L2 weight decay, in
 * PyTorch's formulation (torch.optim.SGD, dampening 0). For update t with gradient g:
 *
 *   g ← g + λ·θ                         (weight decay added to the gradient: L2 regularisation)
 *   b ← μ·b + g                         (b starts at 0, so b₁ = g₁ as PyTorch's first-step copy)
 *   g ← g + μ·b   if Nesterov, else g ← b
 *   θ ← θ − η·g
 *
 * Nesterov in this form is Sutskever et al. 2013 (§3) rewritten in the look-ahead parameters.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import type { Var } from '../autograd/var.js';
import { type Optimizer, SlotOptimizer } from './optimizer.js';

export interface SgdOptions {
  /** Learning rate η. */
  lr: number;
  /** Momentum μ ∈ [0, 1). Default 0 (plain SGD). */
  momentum?: number;
  /** L2 weight decay λ, added to the gradient. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum; needs momentum > 0. Default false. */
  nesterov?: boolean;
}

class Sgd extends SlotOptimizer {
  private readonly momentum: number;
  private readonly weightDecay: number;
  private readonly nesterov: boolean;

  constructor(params: readonly Var[], opts: SgdOptions) {
    super(params, ['momentum_buffer']);
    const { lr, momentum = 0, weightDecay = 0, nesterov = false } = opts;
    if (!(lr >= 0) || !Number.isFinite(lr))
      throw new UnsupportedOptionError(`lr must be finite and ≥ 0; got ${lr}`);
    if (!(momentum >= 0 && momentum < 1))
      throw new UnsupportedOptionError(`momentum must be in [0, 1); got ${momentum}`);
    if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
      throw new UnsupportedOptionError(`weightDecay must be finite and ≥ 0; got ${weightDecay}`);
    }
    if (nesterov && momentum === 0) throw new UnsupportedOptionError('nesterov needs momentum > 0');
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
  }

  protected update(value: Float64Array, grad: Float64Array, slots: Record<string, Float64Array>): void {
    const buf = slots.momentum_buffer;
    const { lr, momentum: mu, weightDecay: wd, nesterov } = this;
    for (let i = 0; i < value.length; i++) {
      let g = grad[i] + wd * value[i];
      if (mu !== 0) {
        buf[i] = mu * buf[i] + g;
        g = nesterov ? g + mu * buf[i] : buf[i];
      }
      value[i] -= lr * g;
    }
  }
}

/** SGD over `params` (see the module comment for the update). */
export function sgd(params: readonly Var[], opts: SgdOptions): Optimizer {
  return new Sgd(params, opts);
}
