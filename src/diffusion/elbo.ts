/**
 * Monte-Carlo estimators of the masked-diffusion evidence lower bound (training_methods.md §4.1–4.2).
 * For a response y of length R after a clean prompt x:
 *
 *   t-form (LLaDA 1.5 Eq. 4):  B = E_{t~U(0,1]} E_{y_t~q(·|t)} (1/t)·Σ_i 1[y_t^i = M]·log p_θ(y^i | y_t, x)
 *   l-form (App. A Eq. 14):     B = E_{l~U{1..R}} E_{y_l}     (R/l)·Σ_i 1[y_l^i = M]·log p_θ(y^i | y_l, x)
 *
 * Both equal Σ_M Σ_{i∈M} log p_θ(y^i | y_M, x) / (|M|·C(R, |M|)) over the non-empty masks M (each is
 * the average over unmasking orders of an any-order autoregressive log-likelihood; elbo-exact.ts
 * enumerates it), so they are unbiased for the same number and B ≤ log π_θ(y | x). The sums are not
 * normalised by length (note §4.7: normalising silently changes DPO's effective β).
 *
 * The doubly Monte-Carlo estimator of §4.2 (Eq. 5–6): n_t timesteps drawn i.i.d., n_yt masks drawn
 * i.i.d. at each, B̂ = (1/n_t)Σ_j (1/n_yt)Σ_k ℓ(y_t^(j,k)). Sampling (`sampleElboDraws`) is separate
 * from evaluation (`elboEstimates`) so the same draws can be scored under two models — VRPO's
 * antithetic sampling (§4.4) is passing one `ElboDraws` to both π_θ and π_ref.
 *
 * `stratified` spreads the n_t timesteps systematically from one random offset, as LLaDA's
 * likelihood evaluator does for its batch of mask counts (get_log_likelihood.py: l_j from a
 * linspace starting at a random k, wrapped into [1, R]). Each l_j is still uniform on {1..R}, so the
 * estimator stays unbiased; we shift by ⌊j·R/n_t⌋ rather than round the linspace, because PyTorch's
 * round-half-to-even would make l_j's marginal depend on k's parity when j·R/n_t ends in .5. The
 * t-form's stratified version is t_j = 1 − ((u + j)/n_t mod 1). Lemma 5's variance formula assumes
 * i.i.d. timesteps, so stratification is off by default.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { add } from '../autograd/elementwise.js';
import { f64 } from '../autograd/broadcast.js';
import { type Var, constant } from '../autograd/var.js';
import { checkPredictorInput, type MaskPredictor } from './mask-predictor.js';
import { maskedLogProb } from './masked-log-prob.js';
import {
  type MaskedSequence,
  type SequenceLayout,
  maskExactly,
  maskWithProbability,
  responseLength,
  uniformInt,
} from './mdlm-masking.js';

/** 'count': the l-form (what LLaDA 1.5 trains with, App. A: "we apply Eq. (14)"); 'time': the t-form. */
export type ElboForm = 'time' | 'count';

export interface ElboSamplingOptions extends SequenceLayout {
  /** Default 'count' (LLaDA 1.5 App. A). */
  readonly form?: ElboForm;
  /** n_t, the number of timesteps (t or l draws). Default 1. */
  readonly timesteps?: number;
  /** n_yt, masks drawn per timestep. Default 1 (VRPO's optimal allocation, Prop. 1). */
  readonly masksPerTimestep?: number;
  /** Systematic stratification of the timesteps (see the module comment). Default false. */
  readonly stratified?: boolean;
}

/** One Monte-Carlo sample: a noised copy and its weight. */
export interface ElboSample extends MaskedSequence {
  /** 1/t (t-form) or R/l (l-form). */
  readonly weight: number;
  /** The timestep it was drawn at: t, or l. */
  readonly timestep: number;
  /** Which of the n_t timesteps (0-based), for nested variance analyses (Lemma 5). */
  readonly timestepIndex: number;
}

/** The n_t·n_yt samples of one ELBO estimate of one clean sequence. */
export interface ElboDraws {
  readonly sequence: Int32Array;
  readonly promptLength: number;
  readonly form: ElboForm;
  readonly timesteps: number;
  readonly masksPerTimestep: number;
  readonly samples: readonly ElboSample[];
}

function positiveInteger(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new UnsupportedOptionError(`${name} must be a positive integer; got ${v}`);
  }
  return v;
}

/** Draws the n_t timesteps and the n_yt masks at each for one clean sequence. */
export function sampleElboDraws(sequence: Int32Array, opts: ElboSamplingOptions, rng: Rng): ElboDraws {
  const r = responseLength(sequence, opts);
  const form = opts.form ?? 'count';
  if (form !== 'time' && form !== 'count') {
    throw new UnsupportedOptionError(`ELBO form must be 'time' or 'count'; got ${JSON.stringify(form)}`);
  }
  const nt = positiveInteger('timesteps (n_t)', opts.timesteps ?? 1);
  const nyt = positiveInteger('masksPerTimestep (n_yt)', opts.masksPerTimestep ?? 1);
  const stratified = opts.stratified ?? false;
  // One random offset for the systematic (stratified) timesteps: u ∈ [0, 1) or k ∈ {0..R−1}.
  const offset = stratified ? (form === 'time' ? rng.uniform() : uniformInt(rng, r)) : 0;
  const samples: ElboSample[] = [];
  for (let j = 0; j < nt; j++) {
    let timestep: number;
    if (form === 'time') {
      // t ∈ (0, 1] as 1 − u with u ∈ [0, 1), so 1/t is finite.
      timestep = 1 - (stratified ? ((offset + j) / nt) % 1 : rng.uniform());
    } else {
      timestep = (stratified ? (offset + Math.floor((j * r) / nt)) % r : uniformInt(rng, r)) + 1;
    }
    for (let k = 0; k < nyt; k++) {
      const m =
        form === 'time'
          ? maskWithProbability(sequence, timestep, opts, rng)
          : maskExactly(sequence, timestep, opts, rng);
      samples.push({
        ...m,
        weight: form === 'time' ? 1 / timestep : r / timestep,
        timestep,
        timestepIndex: j,
      });
    }
  }
  return {
    sequence,
    promptLength: opts.promptLength ?? 0,
    form,
    timesteps: nt,
    masksPerTimestep: nyt,
    samples,
  };
}

/** A noised sequence to score: its clean targets, the weight of its masked terms and its group. */
export interface WeightedMaskedSequence {
  readonly masked: MaskedSequence;
  readonly target: Int32Array;
  readonly weight: number;
  readonly group: number;
}

export interface EvaluationOptions {
  /** Largest batch per forward pass (default 256); more sequences are split over several passes. */
  readonly maxBatch?: number;
}

/**
 * out[g] = Σ_{entries e of group g} weight_e · Σ_{i masked in e} log p_θ(target_i | e's tokens),
 * batched through the predictor. Sequences with nothing masked contribute 0 without a forward pass (a
 * t-form draw at small t); when none has a mask the result is a constant 0 with no gradient.
 */
export function weightedMaskedSums(
  model: MaskPredictor,
  entries: readonly WeightedMaskedSequence[],
  groupCount: number,
  opts: EvaluationOptions = {},
): Var {
  const maxBatch = positiveInteger('maxBatch', opts.maxBatch ?? 256);
  const live = entries.filter((e) => e.masked.count > 0);
  // A t-form draw at small t can mask nothing: its term is exactly 0, no forward pass needed.
  if (live.length === 0) return constant(f64(new Float64Array(groupCount), [groupCount]));
  const length = live[0].target.length;
  if (live.some((e) => e.target.length !== length || e.masked.tokens.length !== length)) {
    throw new ShapeError('weightedMaskedSums: every sequence in one call must have the same length');
  }
  let total: Var | null = null;
  for (let start = 0; start < live.length; start += maxBatch) {
    const chunk = live.slice(start, start + maxBatch);
    const b = chunk.length;
    const tokens = new Int32Array(b * length);
    const targets = new Int32Array(b * length);
    const weights = new Float64Array(b * length);
    const groups = new Int32Array(b);
    chunk.forEach((e, row) => {
      tokens.set(e.masked.tokens, row * length);
      targets.set(e.target, row * length);
      for (let i = 0; i < length; i++) if (e.masked.masked[i] === 1) weights[row * length + i] = e.weight;
      groups[row] = e.group;
    });
    checkPredictorInput(model, tokens, b, length);
    const logits = model.logits(tokens, b, length);
    const part = maskedLogProb(logits, { targets, weights, vocabSize: model.vocabSize, groups, groupCount });
    total = total === null ? part : add(total, part);
  }
  return total as Var;
}

/** B̂ for each `ElboDraws`: the mean of its samples' ℓ — one Var [draws.length], differentiable. */
export function elboEstimates(
  model: MaskPredictor,
  draws: readonly ElboDraws[],
  opts: EvaluationOptions = {},
): Var {
  const entries = draws.flatMap((d, g) =>
    d.samples.map((s) => ({ masked: s, target: d.sequence, weight: s.weight / d.samples.length, group: g })),
  );
  return weightedMaskedSums(model, entries, draws.length, opts);
}

/** ℓ of every sample, draws after draws in order — one Var [Σ samples] (for variance analyses). */
export function elboSampleTerms(
  model: MaskPredictor,
  draws: readonly ElboDraws[],
  opts: EvaluationOptions = {},
): Var {
  const entries = draws.flatMap((d) =>
    d.samples.map((s) => ({ masked: s, target: d.sequence, weight: s.weight })),
  );
  return weightedMaskedSums(
    model,
    entries.map((e, g) => ({ ...e, group: g })),
    entries.length,
    opts,
  );
}
