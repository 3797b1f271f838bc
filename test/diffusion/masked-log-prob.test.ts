import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tensor } from '../../src/core/tensor.js';
import { ShapeError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { maskedLogProb } from '../../src/diffusion/masked-log-prob.js';

// logits [B = 2, T = 3, C = 5] with V = 4 real tokens (class 4 plays [MASK] and must be ignored).
const logits = randn([2, 3, 5], { seed: 11, dtype: 'float64' });
const targets = Int32Array.from([0, 3, 1, 2, 2, 0]);
const weights = Float64Array.from([0, 2, 0.5, 1, 0, -3]);

function direct(groups: number[], groupCount: number): number[] {
  const out = new Array<number>(groupCount).fill(0);
  const x = logits.data;
  for (let p = 0; p < 6; p++) {
    if (weights[p] === 0) continue;
    let z = 0;
    for (let j = 0; j < 4; j++) z += Math.exp(x[p * 5 + j]);
    out[groups[Math.floor(p / 3)]] += weights[p] * (x[p * 5 + targets[p]] - Math.log(z));
  }
  return out;
}

test('maskedLogProb: weighted log-softmax over the V real classes, summed per row', () => {
  const out = maskedLogProb(ag.constant(logits), { targets, weights, vocabSize: 4 });
  const want = direct([0, 1], 2);
  out.value.data.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `row ${i}: ${v} vs ${want[i]}`));
});

test('maskedLogProb: rows grouped into one estimate', () => {
  const out = maskedLogProb(ag.constant(logits), {
    targets,
    weights,
    vocabSize: 4,
    groups: Int32Array.from([0, 0]),
  });
  assert.equal(out.shape[0], 1);
  assert.ok(Math.abs(out.value.data[0] - direct([0, 0], 1)[0]) < 1e-12);
});

test('maskedLogProb: analytic gradient matches central differences (mask class gets none)', () => {
  const r = ag.gradCheck((x) => ag.sum(maskedLogProb(x, { targets, weights, vocabSize: 4 })), [logits]);
  assert.ok(r.ok, `max error ${r.maxError}`);
  const x = ag.param(logits);
  ag.backward(ag.sum(maskedLogProb(x, { targets, weights, vocabSize: 4 })));
  const g = x.grad?.data ?? [];
  for (let p = 0; p < 6; p++) assert.equal(g[p * 5 + 4], 0, 'the [MASK] class received a gradient');
  for (let j = 0; j < 5; j++) assert.equal(g[j], 0, 'a weight-0 position received a gradient');
});

test('maskedLogProb: large logits stay finite', () => {
  const big = ag.constant(tensor([1e4, -2e4, 3e4, -5e4, 1e4, 7e4], [1, 2, 3], 'float64'));
  const out = maskedLogProb(big, {
    targets: Int32Array.from([0, 1]),
    weights: Float64Array.from([1, 1]),
    vocabSize: 3,
  });
  assert.ok(Number.isFinite(out.value.data[0]));
});

test('maskedLogProb: vocabulary mismatches and bad targets are ShapeErrors', () => {
  assert.throws(() => maskedLogProb(ag.constant(logits), { targets, weights, vocabSize: 6 }), ShapeError);
  assert.throws(
    () =>
      maskedLogProb(ag.constant(logits), {
        targets: Int32Array.from([0, 4, 1, 2, 2, 0]),
        weights,
        vocabSize: 4,
      }),
    ShapeError,
  );
  assert.throws(
    () => maskedLogProb(ag.constant(logits), { targets: new Int32Array(5), weights, vocabSize: 4 }),
    ShapeError,
  );
  assert.throws(
    () => maskedLogProb(ag.constant(randn([6, 5], { seed: 1 })), { targets, weights, vocabSize: 4 }),
    ShapeError,
  );
});
