/**
 * The forward (noising) process of a masked diffusion language model (LLaDA 1.5 §2.2; LLaDA 1.5
 * App. A Eq. 10–15; training_methods.md §4.1). A sequence is a prompt followed by a response; only
 * response tokens are ever masked (SFT and preference data leave the prompt clean, LLaDA
 * GUIDELINES.md "SFT"). Two forms:
 *
 * - t-form: t ∈ (0, 1]; each response token is replaced by [MASK] independently with probability t.
 * - l-form: l ∈ {1, …, R}; exactly l of the R response positions, uniformly without replacement.
 *
 * Both write into fresh arrays; the clean sequence is never modified.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';

/** Where the response starts and which id is [MASK]. */
export interface SequenceLayout {
  /** Number of leading prompt tokens, never masked (default 0: the whole sequence is the response). */
  readonly promptLength?: number;
  /** The [MASK] token id. */
  readonly maskToken: number;
}

/** A noised copy of a sequence. */
export interface MaskedSequence {
  /** The sequence with [MASK] at the masked positions. */
  readonly tokens: Int32Array;
  /** 1 where a position is masked (response positions only), else 0. */
  readonly masked: Uint8Array;
  /** How many positions are masked. */
  readonly count: number;
}

/**
 * The response length R of `sequence` under `layout`, after checking the layout: a non-negative
 * integer prompt length shorter than the sequence (an empty response has no ELBO and nothing to
 * mask: ShapeError) and a clean sequence — no [MASK] in it.
 */
export function responseLength(sequence: Int32Array, layout: SequenceLayout): number {
  const promptLength = layout.promptLength ?? 0;
  if (!Number.isSafeInteger(promptLength) || promptLength < 0) {
    throw new UnsupportedOptionError(
      `promptLength must be a non-negative integer; got ${String(layout.promptLength)}`,
    );
  }
  if (!Number.isSafeInteger(layout.maskToken) || layout.maskToken < 0) {
    throw new UnsupportedOptionError(`maskToken must be a non-negative integer id; got ${layout.maskToken}`);
  }
  const r = sequence.length - promptLength;
  if (r < 1) {
    throw new ShapeError(
      `the response is empty: sequence length ${sequence.length}, prompt length ${promptLength}; ` +
        `masked-diffusion likelihoods need at least one response token`,
    );
  }
  const at = sequence.indexOf(layout.maskToken);
  if (at >= 0) {
    throw new ShapeError(
      `the clean sequence holds [MASK] (id ${layout.maskToken}) at position ${at}; ` +
        `pass the un-noised sequence — masking is this function's job`,
    );
  }
  return r;
}

/** t-form: each response token masked independently with probability t ∈ (0, 1]. */
export function maskWithProbability(
  sequence: Int32Array,
  t: number,
  layout: SequenceLayout,
  rng: Rng,
): MaskedSequence {
  responseLength(sequence, layout);
  if (!(t > 0 && t <= 1)) {
    throw new UnsupportedOptionError(`mask probability t must be in (0, 1]; got ${t}`);
  }
  const start = layout.promptLength ?? 0;
  const tokens = Int32Array.from(sequence);
  const masked = new Uint8Array(sequence.length);
  let count = 0;
  for (let i = start; i < sequence.length; i++) {
    if (rng.uniform() < t) {
      tokens[i] = layout.maskToken;
      masked[i] = 1;
      count++;
    }
  }
  return { tokens, masked, count };
}

/** l-form: exactly l ∈ {1, …, R} response positions masked, chosen uniformly without replacement. */
export function maskExactly(
  sequence: Int32Array,
  l: number,
  layout: SequenceLayout,
  rng: Rng,
): MaskedSequence {
  const r = responseLength(sequence, layout);
  if (!Number.isSafeInteger(l) || l < 1 || l > r) {
    throw new UnsupportedOptionError(
      `mask count l must be an integer in [1, ${r}] (the response length); got ${l}`,
    );
  }
  const start = layout.promptLength ?? 0;
  // Partial Fisher–Yates: the first l entries of a uniformly shuffled position list.
  const positions = Int32Array.from({ length: r }, (_, i) => start + i);
  for (let i = 0; i < l; i++) {
    const j = i + uniformInt(rng, r - i);
    const tmp = positions[i];
    positions[i] = positions[j];
    positions[j] = tmp;
  }
  const tokens = Int32Array.from(sequence);
  const masked = new Uint8Array(sequence.length);
  for (let i = 0; i < l; i++) {
    tokens[positions[i]] = layout.maskToken;
    masked[positions[i]] = 1;
  }
  return { tokens, masked, count: l };
}

/** Uniform integer in [0, n) (floor of a 53-bit uniform: bias below 2^-40 for the n used here). */
export function uniformInt(rng: Rng, n: number): number {
  return Math.min(n - 1, Math.floor(rng.uniform() * n));
}
