/**
 * Exact values, by enumeration, for responses short enough (R ≤ 14 by default): the reference the
 * Monte-Carlo estimators of elbo.ts are tested against, and the noise-free "true" score of the vrpo
 * experiment's held-out preference accuracy (training_methods.md §4.7 asks for an ELBO with n = 256;
 * for R = 6 the exact one costs 63 forward passes).
 *
 * Exact ELBO. Integrating the t-form over t: a mask M with m = |M| of R positions has probability
 * t^m (1 − t)^(R−m), and ∫₀¹ t^(m−1) (1 − t)^(R−m) dt = (m − 1)!(R − m)!/R! = 1/(m·C(R, m)); the l-form
 * gives the same weight, (1/R)·(R/m)/C(R, m). So
 *
 *   B(y) = Σ_{M ≠ ∅} Σ_{i∈M} log p_θ(y^i | y_M) / (m·C(R, m)).
 *
 * Exact likelihood. The reverse process that unmasks one token at a time, at a uniformly random masked
 * position, drawing it from p_θ (LLaDA's sampler with random remasking, temperature 1 and R steps)
 * generates y with probability
 *
 *   π_θ(y) = E_σ Π_k p_θ(y^{σ_k} | y^{σ_<k}),    σ a uniformly random order of the R positions,
 *
 * computed by a recursion over the set U of revealed positions:
 * q(∅) = 1, q(U) = Σ_{i∈U} q(U∖i)·p_θ(y^i | U∖i revealed)/(R − |U| + 1), π_θ(y) = q(all).
 * B(y) = E_σ Σ_k log p_θ(y^{σ_k} | y^{σ_<k}) (at step k the masked set is uniform of size R − k + 1
 * and σ_k uniform in it), so Jensen gives B ≤ log π_θ — the bound of LLaDA 1.5 §2.2, checkable here.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import type { Var } from '../autograd/var.js';
import { noGrad } from '../autograd/var.js';
import type { MaskPredictor } from './mask-predictor.js';
import { type EvaluationOptions, type WeightedMaskedSequence, weightedMaskedSums } from './elbo.js';
import { type MaskedSequence, type SequenceLayout, responseLength } from './mdlm-masking.js';

export interface ExactOptions extends EvaluationOptions {
  /** Longest response enumerated (2^R forward passes); default 14. */
  readonly maxResponseLength?: number;
}

function checkedLength(sequence: Int32Array, layout: SequenceLayout, opts: ExactOptions): number {
  const r = responseLength(sequence, layout);
  const limit = opts.maxResponseLength ?? 14;
  if (r > limit) {
    throw new UnsupportedOptionError(
      `exact enumeration over a response of length ${r} needs 2^${r} forward passes (limit ${limit}); ` +
        `use the Monte-Carlo estimators of elbo.ts or raise maxResponseLength`,
    );
  }
  return r;
}

/** The sequence with the response positions in bit set `maskBits` (bit i = position start + i) masked. */
function maskSubset(
  sequence: Int32Array,
  start: number,
  r: number,
  maskBits: number,
  maskToken: number,
): MaskedSequence {
  const tokens = Int32Array.from(sequence);
  const masked = new Uint8Array(sequence.length);
  let count = 0;
  for (let i = 0; i < r; i++) {
    if ((maskBits >> i) & 1) {
      tokens[start + i] = maskToken;
      masked[start + i] = 1;
      count++;
    }
  }
  return { tokens, masked, count };
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x; v !== 0; v &= v - 1) c++;
  return c;
}

/** The exact ELBO B(y) of each sequence (all sharing one layout) — a differentiable Var [n]. */
export function exactElbos(
  model: MaskPredictor,
  sequences: readonly Int32Array[],
  layout: SequenceLayout,
  opts: ExactOptions = {},
): Var {
  const start = layout.promptLength ?? 0;
  const entries: WeightedMaskedSequence[] = [];
  sequences.forEach((seq, g) => {
    const r = checkedLength(seq, layout, opts);
    for (let bits = 1; bits < 1 << r; bits++) {
      const m = popcount(bits);
      entries.push({
        masked: maskSubset(seq, start, r, bits, layout.maskToken),
        target: seq,
        weight: 1 / (m * binomial(r, m)),
        group: g,
      });
    }
  });
  return weightedMaskedSums(model, entries, sequences.length, opts);
}

/**
 * log π_θ(y): the exact log-probability of the response under the any-order unmasking process (see
 * the module comment), a plain number (no gradient).
 */
export function anyOrderLogLikelihood(
  model: MaskPredictor,
  sequence: Int32Array,
  layout: SequenceLayout,
  opts: ExactOptions = {},
): number {
  const r = checkedLength(sequence, layout, opts);
  const start = layout.promptLength ?? 0;
  const full = (1 << r) - 1;
  // One forward pass per revealed set U ≠ all: the masked set is its complement. Group (U, i) holds
  // log p_θ(y^i | U revealed) for each masked position i.
  const entries: WeightedMaskedSequence[] = [];
  const groupOf = new Map<number, number>();
  for (let revealed = 0; revealed < full; revealed++) {
    const maskedBits = full & ~revealed;
    const base = maskSubset(sequence, start, r, maskedBits, layout.maskToken);
    for (let i = 0; i < r; i++) {
      if (!((maskedBits >> i) & 1)) continue;
      // Score only position i: a copy whose `masked` marks i alone, with the same noised tokens.
      const only = new Uint8Array(sequence.length);
      only[start + i] = 1;
      groupOf.set(revealed * r + i, entries.length);
      entries.push({
        masked: { tokens: base.tokens, masked: only, count: 1 },
        target: sequence,
        weight: 1,
        group: entries.length,
      });
    }
  }
  const logp = noGrad(() => weightedMaskedSums(model, entries, entries.length, opts)).value.data;
  const logq = new Float64Array(1 << r).fill(-Infinity);
  logq[0] = 0;
  for (let u = 1; u <= full; u++) {
    const size = popcount(u);
    const terms: number[] = [];
    for (let i = 0; i < r; i++) {
      if (!((u >> i) & 1)) continue;
      const prev = u & ~(1 << i);
      const g = groupOf.get(prev * r + i) as number;
      terms.push(logq[prev] + logp[g] - Math.log(r - size + 1));
    }
    const max = Math.max(...terms);
    logq[u] =
      max === -Infinity ? -Infinity : max + Math.log(terms.reduce((s, x) => s + Math.exp(x - max), 0));
  }
  return logq[full];
}

/**
 * S(M) = Σ_{i∈M} log p_θ(y^i | y_M) for every non-empty mask M of the response, indexed by its bit
 * set (bit i = response position i; index 0, the empty mask, holds 0). The raw material of exact
 * ELBOs and of exact variance components (`lFormVarianceComponents`).
 */
export function exactMaskSums(
  model: MaskPredictor,
  sequence: Int32Array,
  layout: SequenceLayout,
  opts: ExactOptions = {},
): Float64Array {
  const r = checkedLength(sequence, layout, opts);
  const start = layout.promptLength ?? 0;
  const entries: WeightedMaskedSequence[] = [];
  for (let bits = 1; bits < 1 << r; bits++) {
    entries.push({
      masked: maskSubset(sequence, start, r, bits, layout.maskToken),
      target: sequence,
      weight: 1,
      group: bits,
    });
  }
  return Float64Array.from(noGrad(() => weightedMaskedSums(model, entries, 1 << r, opts)).value.data);
}

/** The l-form estimator's exact mean and law-of-total-variance parts (LLaDA 1.5 Lemma 5). */
export interface VarianceComponents {
  /** B, the exact ELBO (or exact difference of two, for per-mask differences). */
  readonly mean: number;
  /** V_t = Var_l E[ℓ' | l]: the part 1/n_t shrinks. */
  readonly vt: number;
  /** V_yt = E_l Var[ℓ' | l]: the part only n_t·n_yt shrinks. */
  readonly vyt: number;
}

/**
 * Exact V_t and V_yt of ℓ' = (R/l)·S(M), l ~ U{1..R}, M uniform of size l, from per-mask sums
 * (`exactMaskSums`, or a difference of two such arrays for antithetic π_θ − π_ref scores). Then
 * V[B̂] = V_t/n_t + V_yt/(n_t·n_yt) for i.i.d. draws (Lemma 5).
 *
 * The t-form has no such finite decomposition: a single masked token at small t carries weight 1/t
 * with probability ≈ R·t, so E[ℓ²] ⊇ ∫ (1/t²)·R·t dt diverges — its variance is infinite, one reason
 * LLaDA estimates with the l-form (and floors t at ε = 10⁻³ in training).
 */
export function lFormVarianceComponents(maskSums: Float64Array, responseLen: number): VarianceComponents {
  const r = responseLen;
  if (maskSums.length !== 1 << r) {
    throw new UnsupportedOptionError(
      `need 2^${r} = ${1 << r} per-mask sums for R = ${r}; got ${maskSums.length}`,
    );
  }
  // Two passes (means, then squared deviations) so no variance comes from a cancelling difference.
  const mu = new Float64Array(r + 1);
  const count = new Float64Array(r + 1);
  for (let bits = 1; bits < 1 << r; bits++) {
    const l = popcount(bits);
    mu[l] += (r / l) * maskSums[bits];
    count[l]++;
  }
  let mean = 0;
  for (let l = 1; l <= r; l++) {
    mu[l] /= count[l];
    mean += mu[l] / r;
  }
  const within = new Float64Array(r + 1);
  for (let bits = 1; bits < 1 << r; bits++) {
    const l = popcount(bits);
    within[l] += ((r / l) * maskSums[bits] - mu[l]) ** 2 / count[l];
  }
  let vt = 0;
  let vyt = 0;
  for (let l = 1; l <= r; l++) {
    vt += (mu[l] - mean) ** 2 / r;
    vyt += within[l] / r;
  }
  return { mean, vt, vyt };
}
