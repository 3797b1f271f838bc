/**
 * VRPO, variance-reduced preference optimisation (LLaDA 1.5 §3.2, Fig. 3; training_methods.md
 * §4.3–4.5): DPO-E (dpo.ts) with three changes to how the four ELBOs of a pair are estimated, all of
 * which keep ŝ unbiased (Prop. 4):
 *
 * 1. Budget: n masked samples per ELBO (default 8, App. D.3).
 * 2. Allocation: n_t = n timesteps with n_yt = 1 mask each. By the law of total variance (Lemma 5)
 *    V[B̂] = V_t/n_t + V_yt/(n_t·n_yt), so at fixed n = n_t·n_yt it is smallest at n_t = n (Prop. 1).
 * 3. Antithetic sampling: π_θ and π_ref score the SAME timesteps and masked sequences of a response,
 *    so their positively correlated errors cancel in B̂_θ − B̂_ref (Prop. 2, Eq. 9). Draws are never
 *    shared between y_w and y_l (§4.4).
 *
 * plus, for stability, an MDM SFT loss with weight 0.05 (App. D.3). The paper does not say which
 * responses it is computed on; here it is the preferred ones y_w (as RPO-style DPO + NLL recipes do)
 * — an assumption, flagged as such.
 *
 * Random streams: pair i uses rng.split(i), with child streams 0 (y_w draws), 1 (y_l draws), 2 and 3
 * (π_ref's own y_w / y_l draws when antithetic sampling is off), so the policy's draws are the same
 * bits with and without antithetic sampling; the SFT masks use rng.split(2³² − 1).
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { add, mul } from '../autograd/elementwise.js';
import { type Var, noGrad } from '../autograd/var.js';
import { type DpoEResult, VRPO_DEFAULT_BETA, dpoELoss } from './dpo.js';
import {
  type ElboDraws,
  type ElboForm,
  type EvaluationOptions,
  elboEstimates,
  sampleElboDraws,
} from './elbo.js';
import type { MaskPredictor } from './mask-predictor.js';
import type { SequenceLayout } from './mdlm-masking.js';
import { mdmSftLoss } from './sft-loss.js';

/** One preference: two full sequences (prompt ‖ response) with the same prompt, y_w preferred. */
export interface PreferencePair {
  readonly winner: Int32Array;
  readonly loser: Int32Array;
}

/** How a budget of n = n_t·n_yt masked samples per ELBO is spent. */
export interface ElboAllocation {
  /** n_t: distinct timesteps. */
  readonly timesteps: number;
  /** n_yt: masks per timestep. */
  readonly masksPerTimestep: number;
}

/** VRPO's allocation of n samples: n_t = n, n_yt = 1 (LLaDA 1.5 Prop. 1). */
export function vrpoAllocation(budget: number): ElboAllocation {
  if (!Number.isSafeInteger(budget) || budget < 1) {
    throw new UnsupportedOptionError(`sampling budget n must be a positive integer; got ${budget}`);
  }
  return { timesteps: budget, masksPerTimestep: 1 };
}

/** The stream of the SFT regulariser's masks (a child index no pair uses). */
const SFT_STREAM = 0xffffffff;

/** VRPO's default budget per ELBO (App. D.3). */
export const VRPO_DEFAULT_BUDGET = 8;

export interface PreferenceScoreOptions extends SequenceLayout, Partial<ElboAllocation>, EvaluationOptions {
  /** DPO β. Default 0.2 (App. D.3). */
  readonly beta?: number;
  /** Share draws between π_θ and π_ref. Default true (VRPO). */
  readonly antithetic?: boolean;
  /** ELBO form. Default 'count' (the l-form LLaDA 1.5 uses, App. A). */
  readonly form?: ElboForm;
  /** Stratify the timesteps (elbo.ts). Default false (the paper's i.i.d. draws). */
  readonly stratified?: boolean;
}

export interface VrpoOptions extends PreferenceScoreOptions {
  /** Weight of the MDM SFT loss on the preferred responses. Default 0.05 (App. D.3); 0 turns it off. */
  readonly sftWeight?: number;
  /** Non-finite scores: 'error' (default) or 'skip' with a count (dpo.ts). */
  readonly nonFinite?: 'error' | 'skip';
}

/** The four sets of draws of a batch of pairs. With antithetic sampling the reference ones are the policy's. */
export interface PreferenceDraws {
  readonly policyWinner: readonly ElboDraws[];
  readonly policyLoser: readonly ElboDraws[];
  readonly referenceWinner: readonly ElboDraws[];
  readonly referenceLoser: readonly ElboDraws[];
}

/** Default n_t = 8, n_yt = 1 when neither is given; a given one alone keeps the other at 1. */
function allocationOf(opts: Partial<ElboAllocation>): ElboAllocation {
  if (opts.timesteps === undefined && opts.masksPerTimestep === undefined) {
    return vrpoAllocation(VRPO_DEFAULT_BUDGET);
  }
  return { timesteps: opts.timesteps ?? 1, masksPerTimestep: opts.masksPerTimestep ?? 1 };
}

function checkPairs(pairs: readonly PreferencePair[], layout: SequenceLayout): void {
  if (pairs.length === 0) throw new ShapeError('preference optimisation needs at least one pair');
  const p = layout.promptLength ?? 0;
  pairs.forEach(({ winner, loser }, i) => {
    if (winner.length !== loser.length) {
      throw new ShapeError(
        `pair ${i}: y_w and y_l sequences differ in length (${winner.length} vs ${loser.length})`,
      );
    }
    for (let k = 0; k < p; k++) {
      if (winner[k] !== loser[k])
        throw new ShapeError(`pair ${i}: y_w and y_l have different prompts (position ${k})`);
    }
  });
}

/** Samples every ELBO's draws for `pairs` (see the module comment for the streams). */
export function samplePreferenceDraws(
  pairs: readonly PreferencePair[],
  opts: PreferenceScoreOptions,
  rng: Rng,
): PreferenceDraws {
  checkPairs(pairs, opts);
  const { timesteps, masksPerTimestep } = allocationOf(opts);
  const sampling = { ...opts, timesteps, masksPerTimestep };
  const antithetic = opts.antithetic ?? true;
  const out = { policyWinner: [], policyLoser: [], referenceWinner: [], referenceLoser: [] } as {
    [K in keyof PreferenceDraws]: ElboDraws[];
  };
  pairs.forEach((pair, i) => {
    const r = rng.split(i);
    const w = sampleElboDraws(pair.winner, sampling, r.split(0));
    const l = sampleElboDraws(pair.loser, sampling, r.split(1));
    out.policyWinner.push(w);
    out.policyLoser.push(l);
    out.referenceWinner.push(antithetic ? w : sampleElboDraws(pair.winner, sampling, r.split(2)));
    out.referenceLoser.push(antithetic ? l : sampleElboDraws(pair.loser, sampling, r.split(3)));
  });
  return out;
}

/** B̂_ref for the reference draws, as numbers (π_ref is frozen: no tape). */
function referenceElbos(reference: MaskPredictor, draws: PreferenceDraws, opts: EvaluationOptions) {
  const p = draws.referenceWinner.length;
  const values = noGrad(() =>
    elboEstimates(reference, [...draws.referenceWinner, ...draws.referenceLoser], opts),
  ).value.data as Float64Array;
  return { winner: values.slice(0, p), loser: values.slice(p) };
}

/** ŝ per pair, no gradient (the variance audit's quantity). */
export function preferenceScores(
  policy: MaskPredictor,
  reference: MaskPredictor,
  pairs: readonly PreferencePair[],
  opts: PreferenceScoreOptions,
  rng: Rng,
): Float64Array {
  const draws = samplePreferenceDraws(pairs, opts, rng);
  const p = pairs.length;
  const ref = referenceElbos(reference, draws, opts);
  const pol = noGrad(() => elboEstimates(policy, [...draws.policyWinner, ...draws.policyLoser], opts)).value
    .data as Float64Array;
  const beta = opts.beta ?? VRPO_DEFAULT_BETA;
  return Float64Array.from(
    { length: p },
    (_, i) => beta * (pol[i] - ref.winner[i] - (pol[p + i] - ref.loser[i])),
  );
}

export interface VrpoLossResult {
  /** DPO-E loss + sftWeight · SFT loss, a scalar Var to backpropagate. */
  readonly loss: Var;
  /** The DPO-E part: its loss, ŝ per pair and skipped pairs. */
  readonly dpo: DpoEResult;
  /** The SFT loss value (null when sftWeight is 0). */
  readonly sftLoss: number | null;
  /** Sequences scored by π_θ and by π_ref (the compute the budget costs). */
  readonly policyForwards: number;
  readonly referenceForwards: number;
}

/** One VRPO (or, with other options, naive DPO-E) loss over a batch of pairs. */
export function vrpoLoss(
  policy: MaskPredictor,
  reference: MaskPredictor,
  pairs: readonly PreferencePair[],
  opts: VrpoOptions,
  rng: Rng,
): VrpoLossResult {
  const sftWeight = opts.sftWeight ?? 0.05;
  if (!(sftWeight >= 0) || !Number.isFinite(sftWeight)) {
    throw new UnsupportedOptionError(`sftWeight must be finite and ≥ 0; got ${sftWeight}`);
  }
  const draws = samplePreferenceDraws(pairs, opts, rng);
  const p = pairs.length;
  const ref = referenceElbos(reference, draws, opts);
  const dpo = dpoELoss(
    {
      policyWinner: elboEstimates(policy, draws.policyWinner, opts),
      policyLoser: elboEstimates(policy, draws.policyLoser, opts),
      referenceWinner: ref.winner,
      referenceLoser: ref.loser,
    },
    { beta: opts.beta, nonFinite: opts.nonFinite },
  );
  const count = (d: readonly ElboDraws[]) => d.reduce((n, x) => n + x.samples.length, 0);
  const policyForwards = count(draws.policyWinner) + count(draws.policyLoser);
  const antithetic = opts.antithetic ?? true;
  const referenceForwards = antithetic
    ? policyForwards
    : count(draws.referenceWinner) + count(draws.referenceLoser);
  if (sftWeight === 0) return { loss: dpo.loss, dpo, sftLoss: null, policyForwards, referenceForwards };
  const sft = mdmSftLoss(
    policy,
    pairs.map((q) => q.winner),
    opts,
    rng.split(SFT_STREAM),
  );
  return {
    loss: add(dpo.loss, mul(sft, sftWeight)),
    dpo,
    sftLoss: sft.item(),
    policyForwards: policyForwards + p,
    referenceForwards,
  };
}
