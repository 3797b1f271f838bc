/**
 * The vrpo experiment's toy language with a known reward. A sequence is a prompt of two uniform
 * tokens (a, b) followed by a response y₁…y_R of a Markov chain started at y₀ = b over V tokens: from
 * x it steps to x + 1 (probability 0.35), x + 2 (0.25) or x − 3 (0.25) modulo V, or to a uniform
 * token (0.15). The reward is sortedness: the number of ascending steps y_k > y_{k−1}, k = 1..R.
 *
 * Why this and not the sorted-digits task sketched in training_methods.md §4.7: there the prompt
 * determines the response, so a mask predictor's log-probabilities barely depend on how much of the
 * response is masked, E[ℓ | l] is nearly flat in l and V_t ≈ 0 — the allocation VRPO optimises would
 * have nothing to act on (the note's own "refutes" case). In a Markov chain every response token is
 * informative about its neighbours, as in language, so masking more of the response makes each
 * prediction harder and V_t is of the order of V_yt. The response distribution's entropy and the
 * expected reward are known exactly, so the reference model's quality and the reward gain are
 * measured against exact numbers.
 */
import type { Rng } from '../core/rng.js';
import type { PreferencePair } from '../diffusion/vrpo.js';
import { uniformInt } from '../diffusion/mdlm-masking.js';

export interface ChainTask {
  readonly vocab: number;
  readonly promptLength: 2;
  readonly responseLength: number;
  /** Row-major transition matrix Q[x, y], [V·V]. */
  readonly transition: Float64Array;
}

/** The chain's moves and their probabilities (see the module comment). */
export const CHAIN_STEPS: readonly (readonly [number, number])[] = [
  [1, 0.35],
  [2, 0.25],
  [-3, 0.25],
];
/** Probability of a uniform jump instead of a move. */
export const CHAIN_NOISE = 0.15;

export function chainTask(vocab: number, responseLength: number): ChainTask {
  const transition = new Float64Array(vocab * vocab).fill(CHAIN_NOISE / vocab);
  for (let x = 0; x < vocab; x++) {
    for (const [d, p] of CHAIN_STEPS) transition[x * vocab + ((((x + d) % vocab) + vocab) % vocab)] += p;
  }
  return { vocab, promptLength: 2, responseLength, transition };
}

function drawRow(task: ChainTask, x: number, rng: Rng): number {
  let u = rng.uniform();
  const v = task.vocab;
  for (let y = 0; y < v; y++) {
    u -= task.transition[x * v + y];
    if (u < 0) return y;
  }
  return v - 1;
}

/** A uniform prompt (a, b). */
export function samplePrompt(task: ChainTask, rng: Rng): Int32Array {
  return Int32Array.from([uniformInt(rng, task.vocab), uniformInt(rng, task.vocab)]);
}

/** prompt ‖ response drawn from the chain after `prompt`. */
export function sampleContinuation(task: ChainTask, prompt: Int32Array, rng: Rng): Int32Array {
  const s = new Int32Array(2 + task.responseLength);
  s.set(prompt);
  for (let k = 2; k < s.length; k++) s[k] = drawRow(task, s[k - 1], rng);
  return s;
}

export function sampleSequence(task: ChainTask, rng: Rng): Int32Array {
  return sampleContinuation(task, samplePrompt(task, rng), rng);
}

/** Ascending steps of the response, counting from the last prompt token. */
export function ascendingReward(sequence: Int32Array, promptLength = 2): number {
  let r = 0;
  for (let k = promptLength; k < sequence.length; k++) if (sequence[k] > sequence[k - 1]) r++;
  return r;
}

/**
 * H(y | x) in nats: every row of Q is a permutation of the same probabilities, so each step has the
 * same entropy — the lowest −ELBO a predictor can reach on average (the exact conditionals make every
 * unmasking order exact, so their ELBO is log p(y | x)).
 */
export function responseEntropy(task: ChainTask): number {
  let h = 0;
  for (let y = 0; y < task.vocab; y++) {
    const p = task.transition[y];
    if (p > 0) h -= p * Math.log(p);
  }
  return task.responseLength * h;
}

/**
 * E[reward] under the data: Q is doubly stochastic (its rows are shifts of one vector), so every y_k
 * is uniform and E = R·(1/V)·Σ_x Σ_{y > x} Q[x, y].
 */
export function expectedReward(task: ChainTask): number {
  const v = task.vocab;
  let p = 0;
  for (let x = 0; x < v; x++) for (let y = x + 1; y < v; y++) p += task.transition[x * v + y];
  return (task.responseLength * p) / v;
}

/**
 * Offline preference pairs: a uniform prompt, two chain continuations of it, the one with more
 * ascending steps preferred; draws with equal rewards are redrawn (ties carry no preference).
 */
export function samplePreferencePairs(task: ChainTask, count: number, rng: Rng): PreferencePair[] {
  const pairs: PreferencePair[] = [];
  while (pairs.length < count) {
    const prompt = samplePrompt(task, rng);
    const a = sampleContinuation(task, prompt, rng);
    const b = sampleContinuation(task, prompt, rng);
    const ra = ascendingReward(a);
    const rb = ascendingReward(b);
    if (ra === rb) continue;
    pairs.push(ra > rb ? { winner: a, loser: b } : { winner: b, loser: a });
  }
  return pairs;
}
