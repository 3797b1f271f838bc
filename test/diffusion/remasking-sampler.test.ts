import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import type { MaskPredictor } from '../../src/diffusion/mask-predictor.js';
import { remaskingSample, transferSchedule } from '../../src/diffusion/remasking-sampler.js';
import { anyOrderLogLikelihood } from '../../src/diffusion/elbo-exact.js';
import { PairwisePredictor, allSequences } from './mdlm-helpers.js';

/**
 * A context-free predictor that records what it was shown: at position i it prefers token
 * preferred[i] with logit margin[i] over the others, so greedy sampling must return `preferred` and
 * low-confidence remasking must unmask positions in decreasing margin.
 */
class RecordingPredictor implements MaskPredictor {
  readonly maskToken: number;
  readonly seen: Int32Array[] = [];
  constructor(
    readonly vocabSize: number,
    readonly maxLength: number,
    readonly preferred: number[],
    readonly margin: number[],
    readonly nanAt = -1,
  ) {
    this.maskToken = vocabSize;
  }
  logits(tokens: Int32Array, batch: number, length: number): ag.Var {
    this.seen.push(Int32Array.from(tokens));
    const out = new Float64Array(batch * length * (this.vocabSize + 1));
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < length; i++) {
        const o = (b * length + i) * (this.vocabSize + 1);
        out[o + this.preferred[i]] = this.margin[i];
        out[o + this.vocabSize] = 100; // the [MASK] class: must never be chosen
        if (i === this.nanAt) out[o] = Number.NaN;
      }
    }
    return ag.constant(new Tensor(out, [batch, length, this.vocabSize + 1], 'float64'));
  }
  parameters(): ag.Var[] {
    return [];
  }
}

test('transferSchedule: LLaDA get_num_transfer_tokens (⌊m/s⌋, remainder to the first steps)', () => {
  assert.deepEqual(transferSchedule(7, 3), [3, 2, 2]);
  assert.deepEqual(transferSchedule(6, 6), [1, 1, 1, 1, 1, 1]);
  assert.deepEqual(transferSchedule(5, 1), [5]);
});

test('greedy low-confidence sampling: prompt kept, every mask filled, most confident first', () => {
  const preferred = [0, 0, 2, 1, 0, 2];
  const margin = [0, 0, 1, 5, 3, 2];
  const model = new RecordingPredictor(3, 6, preferred, margin);
  const out = remaskingSample(model, [Int32Array.from([1, 2])], { responseLength: 4, steps: 4 });
  assert.equal(out.nfe, 4);
  assert.equal(model.seen.length, 4);
  assert.deepEqual(Array.from(out.sequences), [1, 2, 2, 1, 0, 2]);
  // Unmasking order: margins 5 (pos 3), 3 (pos 4), 2 (pos 5), 1 (pos 2).
  const maskedAt = model.seen.map((x) => [...x.keys()].filter((i) => x[i] === 3));
  assert.deepEqual(maskedAt, [[2, 3, 4, 5], [2, 4, 5], [2, 5], [2]]);
});

test('semi-autoregressive blocks: the second block stays masked until the first is done', () => {
  const model = new RecordingPredictor(3, 6, [0, 1, 2, 0, 1, 2], [1, 1, 1, 9, 9, 9]);
  const out = remaskingSample(model, [new Int32Array(0)], { responseLength: 6, steps: 4, blockLength: 3 });
  assert.deepEqual(Array.from(out.sequences), [0, 1, 2, 0, 1, 2]);
  // Block 1 (positions 0–2) over 2 steps, then block 2: positions 3–5 masked in the first two passes.
  for (const x of model.seen.slice(0, 2)) assert.deepEqual(Array.from(x.slice(3)), [3, 3, 3]);
  assert.ok(model.seen[2].slice(0, 3).every((t) => t !== 3));
});

test('temperature sampling is deterministic in the seed, differs across seeds, and fills every mask', () => {
  const model = new PairwisePredictor(4, 8, 5);
  const prompts = Array.from({ length: 16 }, (_, b) => Int32Array.from([b % 4, (b * 3) % 4]));
  const opts = { responseLength: 6, steps: 3, temperature: 1 };
  const a = remaskingSample(model, prompts, opts, Rng.fromSeed(1));
  const b = remaskingSample(model, prompts, opts, Rng.fromSeed(1));
  const c = remaskingSample(model, prompts, opts, Rng.fromSeed(2));
  assert.deepEqual(Array.from(a.sequences), Array.from(b.sequences));
  assert.notDeepEqual(Array.from(a.sequences), Array.from(c.sequences));
  assert.ok(a.sequences.every((t) => t >= 0 && t < 4));
  prompts.forEach((p, k) => assert.deepEqual(Array.from(a.sequences.slice(k * 8, k * 8 + 2)), Array.from(p)));
});

test('random remasking at T = 1 with S = R samples the exact any-order likelihood', () => {
  const v = 2;
  const model = new PairwisePredictor(v, 4, 12);
  const layout = { promptLength: 1, maskToken: v };
  const n = 6000;
  const out = remaskingSample(
    model,
    Array.from({ length: n }, () => Int32Array.from([1])),
    { responseLength: 3, temperature: 1, remasking: 'random', maxBatch: 2000 },
    Rng.fromSeed(4),
  );
  const counts = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    const key = Array.from(out.sequences.slice(k * 4 + 1, k * 4 + 4)).join('');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let chi2 = 0;
  for (const r of allSequences(v, 3)) {
    const p = Math.exp(anyOrderLogLikelihood(model, Int32Array.from([1, ...r]), layout));
    const observed = counts.get(Array.from(r).join('')) ?? 0;
    chi2 += (observed - n * p) ** 2 / (n * p);
  }
  // 7 degrees of freedom: P(χ² > 24.3) ≈ 0.001.
  assert.ok(chi2 < 24.3, `χ² = ${chi2}`);
});

test('bad options and bad models are typed errors', () => {
  const model = new RecordingPredictor(3, 6, [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]);
  const prompt = [Int32Array.from([1, 2])];
  assert.throws(() => remaskingSample(model, prompt, { responseLength: 0 }), UnsupportedOptionError);
  assert.throws(
    () => remaskingSample(model, prompt, { responseLength: 4, steps: 5 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => remaskingSample(model, prompt, { responseLength: 4, blockLength: 3 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => remaskingSample(model, prompt, { responseLength: 4, blockLength: 2, steps: 3 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => remaskingSample(model, prompt, { responseLength: 4, temperature: -1 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => remaskingSample(model, prompt, { responseLength: 4, temperature: 1 }),
    UnsupportedOptionError,
  );
  assert.throws(() => remaskingSample(model, [Int32Array.from([3, 1])], { responseLength: 4 }), ShapeError);
  assert.throws(
    () => remaskingSample(model, [Int32Array.from([1, 1]), Int32Array.from([1])], { responseLength: 4 }),
    ShapeError,
  );
  assert.throws(
    () => remaskingSample(model, prompt, { responseLength: 5 }),
    ShapeError,
    'longer than maxLength',
  );
  const nan = new RecordingPredictor(3, 6, [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], 3);
  assert.throws(() => remaskingSample(nan, prompt, { responseLength: 4 }), NonFiniteInputError);
});
