import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/core/tensor.js';
import { metrics } from '../../src/attention/metrics.js';
import { attentionReference } from '../../src/attention/reference.js';
import { gaussianQkv } from './cases.js';

const f64 = (...xs: number[]) => Float64Array.from(xs);
const close = (actual: number, expected: number, tol = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected}`);

test('cosine on known vectors', () => {
  close(metrics.cosine(f64(1, 2, 3), f64(2, 4, 6)), 1);
  close(metrics.cosine(f64(1, 0), f64(0, 1)), 0);
  close(metrics.cosine(f64(1, 0), f64(-3, 0)), -1);
  close(metrics.cosine(f64(1, 1), Float32Array.from([1, 0])), Math.SQRT1_2);
  assert.ok(metrics.cosine(f64(1e-3, 7, 1e5), f64(1e-3, 7, 1e5)) <= 1);
});

test('cosine edge cases: both zero → 1, one zero → 0, NaN → NaN', () => {
  assert.equal(metrics.cosine(f64(0, 0), f64(0, 0)), 1);
  assert.equal(metrics.cosine(f64(), f64()), 1);
  assert.equal(metrics.cosine(f64(0, 0), f64(1, 2)), 0);
  assert.equal(metrics.cosine(f64(1, 2), f64(0, 0)), 0);
  assert.ok(Number.isNaN(metrics.cosine(f64(NaN, 1), f64(1, 1))));
  assert.ok(Number.isNaN(metrics.cosine(f64(NaN, 1), f64(0, 0))));
});

test('relative L1 = Σ|o − r| / Σ|r|, with the all-zero reference cases', () => {
  close(metrics.relL1(f64(1, 2), f64(1, 1)), 0.5);
  close(metrics.relL1(f64(-1, 3, 0), f64(1, 2, -1)), (2 + 1 + 1) / 4);
  assert.equal(metrics.relL1(f64(0, 0), f64(0, 0)), 0);
  assert.equal(metrics.relL1(f64(0, 1e-30), f64(0, 0)), Infinity);
  assert.ok(Number.isNaN(metrics.relL1(f64(NaN), f64(0))));
});

test('RMSE on known vectors; empty inputs give 0', () => {
  close(metrics.rmse(f64(0, 0), f64(3, 4)), Math.sqrt(12.5));
  close(metrics.rmse(f64(1, 2, 3), f64(1, 2, 3)), 0);
  assert.equal(metrics.rmse(f64(), f64()), 0);
});

test('metrics accept tensors of any dtype and validate lengths and shapes', () => {
  const a = tensor([1, 2, 3, 4], [2, 2], 'float32');
  const b = tensor([1, 2, 3, 5], [2, 2], 'float64');
  close(metrics.relL1(a, b), 1 / 11);
  close(metrics.rmse(a, f64(1, 2, 3, 6)), 1);
  assert.throws(() => metrics.cosine(f64(1, 2), f64(1, 2, 3)), { name: 'ShapeError' });
  assert.throws(() => metrics.relL1(a, tensor([1, 2, 3, 4], [4], 'float32')), {
    name: 'ShapeError',
    message: /\[2, 2\] and \[4\]/,
  });
  assert.throws(() => metrics.rmse(a, f64(1)), { name: 'ShapeError' });
});

test('recall: uniform attention (q = 0) keeps the fraction of keys kept', () => {
  const q = tensor(new Float64Array(2 * 3 * 4), [1, 2, 3, 4], 'float64');
  const { k } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 8, headDim: 4 }, 1, 'float64');
  close(
    metrics.recall(q, k, () => true),
    1,
  );
  close(
    metrics.recall(q, k, () => false),
    0,
  );
  close(
    metrics.recall(q, k, (_b, _h, _i, j) => j < 2),
    2 / 8,
  );
  const keepTensor = tensor([1, 1, 0, 0, 0, 0, 0, 0], [8], 'bool');
  close(metrics.recall(q, k, keepTensor), 2 / 8);
});

test('recall equals the oracle probability mass on the kept keys', () => {
  const { q, k } = gaussianQkv({ batch: 2, headsQ: 2, tokensQ: 3, tokensKv: 5, headDim: 4 }, 2, 'float64');
  const keep = (b: number, h: number, i: number, j: number) => (b + h + i + j) % 2 === 0;
  // the oracle with V = identity over keys returns the probabilities themselves
  const eye = new Float64Array(2 * 2 * 5 * 5);
  for (let bh = 0; bh < 4; bh++) for (let j = 0; j < 5; j++) eye[bh * 25 + j * 5 + j] = 1;
  const qPadded = new Float64Array(2 * 2 * 3 * 5);
  const kPadded = new Float64Array(2 * 2 * 5 * 5);
  for (let r = 0; r < 12; r++) for (let c = 0; c < 4; c++) qPadded[r * 5 + c] = q.data[r * 4 + c];
  for (let r = 0; r < 20; r++) for (let c = 0; c < 4; c++) kPadded[r * 5 + c] = k.data[r * 4 + c];
  const probs = attentionReference(
    tensor(qPadded, [2, 2, 3, 5], 'float64'),
    tensor(kPadded, [2, 2, 5, 5], 'float64'),
    tensor(eye, [2, 2, 5, 5], 'float64'),
    { smScale: 0.5 },
  ).data;
  let expected = 0;
  for (let b = 0; b < 2; b++)
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 5; j++)
          if (keep(b, h, i, j)) expected += probs[((b * 2 + h) * 3 + i) * 5 + j] / 12;
  close(metrics.recall(q, k, keep, { smScale: 0.5 }), expected);
  const keepTensor = tensor(
    Array.from({ length: 60 }, (_, x) =>
      Number(keep(Math.floor(x / 30), Math.floor(x / 15) % 2, Math.floor(x / 5) % 3, x % 5)),
    ),
    [2, 2, 3, 5],
    'bool',
  );
  close(metrics.recall(q, k, keepTensor, { smScale: 0.5 }), expected);
});

test('recall respects causal options and leaves fully masked rows out of the mean', () => {
  const { q, k } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 6, tokensKv: 4, headDim: 4 }, 3, 'float64');
  // the causal mask itself has recall 1 under causal attention
  close(
    metrics.recall(q, k, (_b, _h, i, j) => j <= i, { causal: true }),
    1,
  );
  // bottom-right with Nq 6 > Nk 4: rows 0 and 1 see nothing and do not drag the mean down
  close(
    metrics.recall(q, k, () => true, { causal: true, causalAlignment: 'bottom-right' }),
    1,
  );
  close(
    metrics.recall(q, k, (_b, _h, i) => i >= 4, { causal: true, causalAlignment: 'bottom-right' }),
    2 / 4,
  );
});

test('recall validates the keep mask', () => {
  const { q, k } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 3, tokensKv: 4, headDim: 2 }, 4);
  assert.throws(() => metrics.recall(q, k, tensor([1, 1, 1], [3], 'bool')), { name: 'ShapeError' });
  assert.throws(() => metrics.recall(q, k, tensor([1, 1, 1, 1], [4], 'uint8')), { name: 'DTypeError' });
});
