import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { copyParameterValues, transformerMaskPredictor } from '../../src/diffusion/mask-predictor.js';

const config = { vocabSize: 5, dim: 16, heads: 2, layers: 1, maxLen: 6, hidden: 32, seed: 3, initStd: 0.3 };

test('transformer mask predictor: [MASK] = V, logits [B, T, V + 1], bidirectional', () => {
  const m = transformerMaskPredictor(config);
  assert.equal(m.maskToken, 5);
  const a = Int32Array.from([0, 1, 5, 3, 4, 2]);
  const b = Int32Array.from([0, 1, 5, 3, 4, 0]); // only the last token differs
  const la = ag.noGrad(() => m.logits(a, 1, 6));
  assert.deepEqual(la.shape, [1, 6, 6]);
  const lb = ag.noGrad(() => m.logits(b, 1, 6));
  // A causal model could not see position 5 from position 0; this one must.
  const d = Math.abs(la.value.data[0] - lb.value.data[0]);
  assert.ok(d > 1e-6, `position 0 ignores position 5 (Δ ${d})`);
});

test('clone copies values into independent parameters', () => {
  const m = transformerMaskPredictor(config);
  const c = m.clone();
  const x = Int32Array.from([1, 5, 5, 2]);
  assert.deepEqual(Array.from(m.logits(x, 1, 4).value.data), Array.from(c.logits(x, 1, 4).value.data));
  (c.parameters()[0].value.data as Float64Array)[0] += 1;
  assert.notEqual(m.parameters()[0].value.data[0], c.parameters()[0].value.data[0]);
  const other = transformerMaskPredictor({ ...config, seed: 9 });
  copyParameterValues(m, other);
  assert.deepEqual(Array.from(m.logits(x, 1, 4).value.data), Array.from(other.logits(x, 1, 4).value.data));
  assert.throws(() => copyParameterValues(m, transformerMaskPredictor({ ...config, dim: 8 })), ShapeError);
});

test('vocabulary mismatches and bad shapes are ShapeErrors', () => {
  const m = transformerMaskPredictor(config);
  assert.throws(() => m.logits(Int32Array.from([0, 6, 1]), 1, 3), ShapeError, 'token above [MASK]');
  assert.throws(() => m.logits(Int32Array.from([0, -1, 1]), 1, 3), ShapeError, 'negative token');
  assert.throws(() => m.logits(new Int32Array(7), 1, 7), ShapeError, 'longer than maxLen');
  assert.throws(() => m.logits(new Int32Array(5), 2, 3), ShapeError, 'B·T mismatch');
  assert.throws(() => transformerMaskPredictor({ ...config, vocabSize: 0 }), ShapeError);
});
