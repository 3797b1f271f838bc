/**
 * LLaDA's reverse-process sampler with remasking (LLaDA §2.4 and GUIDELINES.md "Sampling"; the
 * reference is `generate()` in ML-GSAI/LLaDA generate.py, whose defaults are kept):
 *
 *   x ← prompt ‖ [MASK]^R
 *   for each of R/blockLength blocks (semi-autoregressive when blockLength < R), for each of its
 *   S/blocks steps:
 *     predict every position at once: x̂_i = argmax_j (logit_ij − T·log(−log u_ij))  (Gumbel-max, so
 *       x̂_i ~ softmax(logit_i / T); T = 0 is greedy), u drawn in float64 (LLaDA issue #42 and its
 *       generate.py: low-precision Gumbel noise hurts generation);
 *     confidence c_i = softmax(logit_i)[x̂_i] ('low-confidence') or u_i ~ U[0, 1) ('random'), and −∞
 *       outside the masked positions of the current block;
 *     keep x̂ at the k most confident positions; every other masked position stays [MASK].
 *
 * k follows LLaDA's schedule (`get_num_transfer_tokens`): the linear noise schedule unmasks the same
 * expected number per step, so a block with m masks over s steps unmasks ⌊m/s⌋ per step and one
 * more in the first m mod s steps — after the last step nothing is masked. Ties in confidence go
 * to the lower position (torch.topk leaves them unspecified; this keeps runs deterministic). Only
 * the V real classes are scored: [MASK] is never predicted (masked-log-prob.ts). NaN logits are a
 * NonFiniteInputError (there is no meaningful sample); −∞ logits just rule a token out.
 *
 * Random remasking with T = 1 and S = R is exactly the any-order process whose likelihood
 * elbo-exact.ts computes.
 */
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { noGrad } from '../autograd/var.js';
import { checkPredictorInput, type MaskPredictor } from './mask-predictor.js';

export type Remasking = 'low-confidence' | 'random';

export interface RemaskingSamplerOptions {
  /** Number of tokens R to generate after each prompt. */
  readonly responseLength: number;
  /** Sampling steps S, 1 ≤ S ≤ R (default R: one token per step). */
  readonly steps?: number;
  /** Block length for semi-autoregressive sampling; must divide R (default R: one block). */
  readonly blockLength?: number;
  /** Gumbel-max temperature T ≥ 0 (default 0: greedy, as generate.py). */
  readonly temperature?: number;
  /** Default 'low-confidence'. */
  readonly remasking?: Remasking;
  /** Largest batch per forward pass (default 256). */
  readonly maxBatch?: number;
}

export interface RemaskingResult {
  /** prompt ‖ response for each prompt, concatenated: [B·(P + R)]. */
  readonly sequences: Int32Array;
  /** Length of each sequence, P + R. */
  readonly length: number;
  /** Forward passes of the predictor per sequence (NFE) = S. */
  readonly nfe: number;
}

/** LLaDA's per-step unmasking counts for m masked tokens over s steps. */
export function transferSchedule(masked: number, steps: number): number[] {
  const base = Math.floor(masked / steps);
  const extra = masked % steps;
  return Array.from({ length: steps }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Samples a response for every prompt (all prompts of one length, possibly 0). */
export function remaskingSample(
  model: MaskPredictor,
  prompts: readonly Int32Array[],
  opts: RemaskingSamplerOptions,
  rng?: Rng,
): RemaskingResult {
  const r = opts.responseLength;
  if (!Number.isSafeInteger(r) || r < 1) {
    throw new UnsupportedOptionError(
      `responseLength must be a positive integer (nothing to generate otherwise); got ${r}`,
    );
  }
  const steps = opts.steps ?? r;
  const blockLength = opts.blockLength ?? r;
  const temperature = opts.temperature ?? 0;
  const remasking = opts.remasking ?? 'low-confidence';
  const maxBatch = opts.maxBatch ?? 256;
  if (!Number.isSafeInteger(blockLength) || blockLength < 1 || r % blockLength !== 0) {
    throw new UnsupportedOptionError(
      `blockLength must be a positive divisor of responseLength ${r}; got ${blockLength}`,
    );
  }
  const blocks = r / blockLength;
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > r || steps % blocks !== 0) {
    throw new UnsupportedOptionError(
      `steps must be an integer in [1, ${r}] and a multiple of the ${blocks} block(s); got ${steps}`,
    );
  }
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new UnsupportedOptionError(`temperature must be finite and ≥ 0; got ${temperature}`);
  }
  if (remasking !== 'low-confidence' && remasking !== 'random') {
    throw new UnsupportedOptionError(
      `remasking must be 'low-confidence' or 'random'; got ${JSON.stringify(remasking)}`,
    );
  }
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
    throw new UnsupportedOptionError(`maxBatch must be a positive integer; got ${maxBatch}`);
  }
  if ((temperature > 0 || remasking === 'random') && rng === undefined) {
    throw new UnsupportedOptionError('sampling with temperature > 0 or random remasking needs an rng');
  }
  if (prompts.length === 0) throw new ShapeError('remaskingSample needs at least one prompt');
  const p = prompts[0].length;
  const length = p + r;
  const v = model.vocabSize;
  const mask = model.maskToken;
  const x = new Int32Array(prompts.length * length).fill(mask);
  prompts.forEach((prompt, b) => {
    if (prompt.length !== p) {
      throw new ShapeError(
        `all prompts must have one length; prompt 0 has ${p}, prompt ${b} has ${prompt.length}`,
      );
    }
    for (let i = 0; i < p; i++) {
      if (!(prompt[i] >= 0 && prompt[i] < v)) {
        throw new ShapeError(
          `prompt ${b} position ${i} is ${prompt[i]}: prompts hold real tokens 0..${v - 1}`,
        );
      }
    }
    x.set(prompt, b * length);
  });

  const stepsPerBlock = steps / blocks;
  const predicted = new Int32Array(length);
  const confidence = new Float64Array(length);
  for (let block = 0; block < blocks; block++) {
    const lo = p + block * blockLength;
    const hi = lo + blockLength;
    const schedule = transferSchedule(blockLength, stepsPerBlock);
    for (const k of schedule) {
      for (let start = 0; start < prompts.length; start += maxBatch) {
        const nb = Math.min(maxBatch, prompts.length - start);
        const view = x.subarray(start * length, (start + nb) * length);
        const input = Int32Array.from(view);
        checkPredictorInput(model, input, nb, length);
        const logits = noGrad(() => model.logits(input, nb, length)).value;
        const c = logits.shape[2];
        if (c < v) {
          throw new ShapeError(
            `vocabulary mismatch: the predictor gives ${c} classes, the vocabulary has ${v} tokens`,
          );
        }
        const data = logits.data as Float64Array;
        for (let b = 0; b < nb; b++) {
          const row = view.subarray(b * length, (b + 1) * length);
          confidence.fill(-Infinity);
          for (let i = lo; i < hi; i++) {
            if (row[i] !== mask) continue;
            const o = (b * length + i) * c;
            let best = 0;
            let bestScore = -Infinity;
            let max = -Infinity;
            for (let j = 0; j < v; j++) {
              const l = data[o + j];
              if (Number.isNaN(l)) {
                throw new NonFiniteInputError(
                  `the mask predictor returned NaN logits (sequence ${start + b}, position ${i}); the model has diverged`,
                );
              }
              if (l > max) max = l;
              const score =
                temperature > 0 ? l - temperature * Math.log(-Math.log((rng as Rng).uniform())) : l;
              if (score > bestScore) {
                bestScore = score;
                best = j;
              }
            }
            predicted[i] = best;
            if (remasking === 'random') {
              confidence[i] = (rng as Rng).uniform();
            } else {
              let z = 0;
              for (let j = 0; j < v; j++) z += Math.exp(data[o + j] - max);
              confidence[i] = Math.exp(data[o + best] - max) / z;
            }
          }
          for (const i of topPositions(confidence, lo, hi, k)) row[i] = predicted[i];
        }
      }
    }
  }
  return { sequences: x, length, nfe: steps };
}

/** The k positions in [lo, hi) with the largest finite confidence (ties: lower position first). */
function topPositions(confidence: Float64Array, lo: number, hi: number, k: number): number[] {
  const candidates: number[] = [];
  for (let i = lo; i < hi; i++) if (confidence[i] > -Infinity) candidates.push(i);
  candidates.sort((a, b) => confidence[b] - confidence[a] || a - b);
  return candidates.slice(0, k);
}
