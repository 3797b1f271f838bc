/**
 * The masked-diffusion SFT loss of LLaDA (GUIDELINES.md "Pre-training" and "SFT"; training_methods.md
 * §4.1): per sequence b, t_b ~ U[0, 1) and p_b = (1 − ε)·t_b + ε with ε = 10⁻³ (so 1/p_b ≤ 1000); each
 * response token is masked with probability p_b, the prompt never; then
 *
 *   loss = (1/B) Σ_b Σ_{i masked} −log p_θ(y^i | y_t, x) / (p_b · R_b),
 *
 * the cross-entropy of the masked tokens re-weighted by 1/p_mask and divided by the answer length R_b
 * (padding EOS tokens, if the caller pads, count as answer tokens, as LLaDA's SFT does). Up to the
 * 1/R_b normalisation and ε this is −B̂/R of the t-form ELBO, so minimising it maximises the bound.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { neg } from '../autograd/elementwise.js';
import { reshape } from '../autograd/shape-ops.js';
import type { Var } from '../autograd/var.js';
import type { MaskPredictor } from './mask-predictor.js';
import { type EvaluationOptions, type WeightedMaskedSequence, weightedMaskedSums } from './elbo.js';
import { type SequenceLayout, maskWithProbability, responseLength } from './mdlm-masking.js';

export interface SftLossOptions extends SequenceLayout, EvaluationOptions {
  /** Floor of the mask probability, p = (1 − ε)t + ε. Default 1e-3 (LLaDA GUIDELINES.md). */
  readonly eps?: number;
}

/** The SFT loss of a batch of clean sequences sharing one layout — a scalar Var (shape []). */
export function mdmSftLoss(
  model: MaskPredictor,
  sequences: readonly Int32Array[],
  opts: SftLossOptions,
  rng: Rng,
): Var {
  if (sequences.length === 0) throw new ShapeError('mdmSftLoss needs at least one sequence');
  const eps = opts.eps ?? 1e-3;
  if (!(eps > 0 && eps <= 1)) throw new UnsupportedOptionError(`eps must be in (0, 1]; got ${eps}`);
  const b = sequences.length;
  const entries: WeightedMaskedSequence[] = sequences.map((seq) => {
    const r = responseLength(seq, opts);
    const p = (1 - eps) * rng.uniform() + eps;
    return { masked: maskWithProbability(seq, p, opts, rng), target: seq, weight: 1 / (p * r * b), group: 0 };
  });
  return neg(reshape(weightedMaskedSums(model, entries, 1, opts), []));
}
