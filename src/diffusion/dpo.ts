/**
 * DPO on ELBO estimates, DPO-E (LLaDA 1.5 §3.1 Eq. 7–8; training_methods.md §4.2): the intractable
 * log-likelihoods of DPO (Rafailov et al. 2023, Eq. 7) replaced by masked-diffusion ELBOs,
 *
 *   ŝ = β·[(B̂_θ(y_w) − B̂_ref(y_w)) − (B̂_θ(y_l) − B̂_ref(y_l))],    ℓ̂ = −log σ(ŝ),
 *
 * averaged over pairs. ŝ is unbiased for s when the B̂ are (Prop. 3); ℓ̂ is not (log σ is concave),
 * and its bias is at most √V[ŝ] (Thm. 1) — what VRPO's allocation and antithetic sampling shrink.
 *
 * −log σ(s) is computed as softplus(−s) = max(−s, 0) + log(1 + e^(−|s|)), finite for every finite s.
 *
 * Non-finite scores (a NaN or ±inf ELBO: a diverged or NaN-poisoned model) are an error by default
 * (NonFiniteInputError naming how many pairs). With `nonFinite: 'skip'` those pairs leave the mean
 * and `skippedPairs` counts them; the loss is then the mean over the finite pairs (0, with no
 * gradient, if none is finite). Their gradient is exactly 0 here; if the model's own logits are
 * non-finite, the optimizer's non-finite guard (src/train/optimizer.ts) skips the step.
 */
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { f64 } from '../autograd/broadcast.js';
import { sub, mul } from '../autograd/elementwise.js';
import { applyOp, registerOp } from '../autograd/op-table.js';
import { type Var, constant } from '../autograd/var.js';

/** DPO β of LLaDA 1.5 (App. D.3). */
export const VRPO_DEFAULT_BETA = 0.2;

export interface DpoEInputs {
  /** B̂_θ(y_w) per pair, [P] (carries the gradient). */
  readonly policyWinner: Var;
  readonly policyLoser: Var;
  /** B̂_ref(y_w) per pair, [P] (no gradient needed). */
  readonly referenceWinner: Var | Float64Array;
  readonly referenceLoser: Var | Float64Array;
}

export interface DpoEOptions {
  /** DPO's β. Default 0.2 (LLaDA 1.5 App. D.3). */
  readonly beta?: number;
  /** What non-finite scores do: 'error' (default) throws NonFiniteInputError, 'skip' drops the pairs. */
  readonly nonFinite?: 'error' | 'skip';
}

export interface DpoEResult {
  /** Mean −log σ(ŝ) over the counted pairs, a scalar Var (shape []). */
  readonly loss: Var;
  /** ŝ per pair (NaN/±inf kept as measured). */
  readonly scores: Float64Array;
  /** Pairs left out because their score was not finite. */
  readonly skippedPairs: number;
}

function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

interface LossAttrs {
  include: Uint8Array;
  count: number;
}

registerOp<LossAttrs>('dpo_e_loss', 'cpu', {
  forward([s], { include, count }) {
    let total = 0;
    for (let i = 0; i < s.size; i++) if (include[i] === 1) total += softplus(-s.data[i]);
    return { out: f64(new Float64Array([count === 0 ? 0 : total / count]), []) };
  },
  backward(g, { inputs: [s], attrs: { include, count } }) {
    const gs = new Float64Array(s.size);
    // d softplus(−s)/ds = −σ(−s).
    for (let i = 0; i < s.size; i++) if (include[i] === 1) gs[i] = (-g.data[0] * sigmoid(-s.data[i])) / count;
    return [f64(gs, s.shape)];
  },
});

const asVar = (x: Var | Float64Array): Var => (x instanceof Float64Array ? constant(f64(x, [x.length])) : x);

/** ŝ per pair, [P] (differentiable through the policy ELBOs). */
export function dpoEScores(inputs: DpoEInputs, beta: number): Var {
  const p = inputs.policyWinner.shape;
  const parts = [inputs.policyLoser, asVar(inputs.referenceWinner), asVar(inputs.referenceLoser)];
  if (p.length !== 1 || parts.some((v) => v.shape.length !== 1 || v.shape[0] !== p[0])) {
    throw new ShapeError(
      `DPO-E needs four ELBO vectors of one length P; got [${[inputs.policyWinner, ...parts].map((v) => v.shape.join('×')).join('], [')}]`,
    );
  }
  const [policyLoser, referenceWinner, referenceLoser] = parts;
  const winner = sub(inputs.policyWinner, referenceWinner);
  const loser = sub(policyLoser, referenceLoser);
  return mul(sub(winner, loser), beta);
}

/** The DPO-E loss (see the module comment). */
export function dpoELoss(inputs: DpoEInputs, opts: DpoEOptions = {}): DpoEResult {
  const beta = opts.beta ?? VRPO_DEFAULT_BETA;
  if (!(beta > 0) || !Number.isFinite(beta)) {
    throw new UnsupportedOptionError(`DPO β must be finite and > 0; got ${beta}`);
  }
  const nonFinite = opts.nonFinite ?? 'error';
  if (nonFinite !== 'error' && nonFinite !== 'skip') {
    throw new UnsupportedOptionError(`nonFinite must be 'error' or 'skip'; got ${JSON.stringify(nonFinite)}`);
  }
  const s = dpoEScores(inputs, beta);
  const scores = Float64Array.from(s.value.data);
  const include = new Uint8Array(scores.length);
  let count = 0;
  for (let i = 0; i < scores.length; i++) {
    if (Number.isFinite(scores[i])) {
      include[i] = 1;
      count++;
    }
  }
  const skippedPairs = scores.length - count;
  if (skippedPairs > 0 && nonFinite === 'error') {
    throw new NonFiniteInputError(
      `DPO-E: ${skippedPairs} of ${scores.length} preference scores are not finite (an ELBO is NaN or ±inf, ` +
        `usually a diverged model); pass nonFinite: 'skip' to drop those pairs and count them`,
    );
  }
  return { loss: applyOp<LossAttrs>('dpo_e_loss', [s], { include, count }), scores, skippedPairs };
}
