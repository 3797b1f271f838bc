import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertLayout } from '../../src/core/layout.js';
import { randn, tensor, type Tensor } from '../../src/core/tensor.js';
import { attentionReference } from '../../src/attention/reference.js';
import { allEqualKeys, as, gaussianQkv } from './cases.js';

const f64 = (values: number[], shape: number[]) => tensor(values, shape, 'float64');
const close = (actual: number, expected: number, tol = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected}`);
const closeAll = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12) => {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `[${i}] ${actual[i]} != ${expected[i]}`);
  }
};

test('one query, two keys: softmax weights 3/4 and 1/4, LSE ln 4', () => {
  // logits smScale·q·k = [ln 3, 0], so p = [3/4, 1/4] exactly
  const q = f64([1, 0], [1, 1, 1, 2]);
  const k = f64([1, 0, 0, 1], [1, 1, 2, 2]);
  const v = f64([1, 2, 3, 4], [1, 1, 2, 2]);
  const { out, lse } = attentionReference(q, k, v, { smScale: Math.log(3), returnLse: true });
  assert.equal(out.dtype, 'float64');
  assert.deepEqual(out.shape, [1, 1, 1, 2]);
  closeAll(out.data, [0.75 * 1 + 0.25 * 3, 0.75 * 2 + 0.25 * 4]);
  assert.deepEqual(lse.shape, [1, 1, 1]);
  close(lse.data[0], Math.log(4));
});

test('default smScale is 1/sqrt(D)', () => {
  const q = f64([1, 1, 1, 1], [1, 1, 1, 4]);
  const k = f64([1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 2, 4]);
  const v = f64([1, 0, 0, 0, 0, 0, 0, 1], [1, 1, 2, 4]);
  // logits [4/2, 0] = [2, 0]
  const p0 = Math.exp(2) / (Math.exp(2) + 1);
  const { out, lse } = attentionReference(q, k, v, { returnLse: true });
  closeAll(out.data, [p0, 0, 0, 1 - p0]);
  close(lse.data[0], Math.log(Math.exp(2) + 1));
});

test('large logits do not overflow (row max is subtracted)', () => {
  const q = f64([1000, 0], [1, 1, 1, 2]);
  const k = f64([1, 0, 0.999, 0], [1, 1, 2, 2]);
  const v = f64([1, 0, 0, 1], [1, 1, 2, 2]);
  const { out, lse } = attentionReference(q, k, v, { smScale: 1, returnLse: true });
  const p1 = 1 / (1 + Math.exp(1));
  closeAll(out.data, [1 - p1, p1]);
  close(lse.data[0], 1000 + Math.log(1 + Math.exp(-1)), 1e-10);
});

test('all-equal keys give the mean of the V rows', () => {
  const dims = { batch: 1, headsQ: 2, tokensQ: 5, tokensKv: 7, headDim: 3 };
  const { q, k, v } = allEqualKeys(dims, 1, 'float64');
  const out = attentionReference(q, k, v);
  for (let h = 0; h < 2; h++) {
    for (let c = 0; c < 3; c++) {
      let mean = 0;
      for (let j = 0; j < 7; j++) mean += v.data[(h * 7 + j) * 3 + c] / 7;
      for (let i = 0; i < 5; i++) close(out.data[(h * 5 + i) * 3 + c], mean);
    }
  }
});

/** The kv head slice [1, 1, N, D] of an HND tensor. */
function head(t: Tensor, h: number): Tensor {
  const [, heads, n, d] = t.shape;
  assert.equal(t.shape[0], 1);
  assert.ok(h < heads);
  return tensor(t.toFloat64().slice(h * n * d, (h + 1) * n * d), [1, 1, n, d], 'float64');
}

test('GQA: query head h reads kv head floor(h / (Hq/Hkv)), not h % Hkv', () => {
  const { q, k, v } = gaussianQkv(
    { batch: 1, headsQ: 4, headsKv: 2, tokensQ: 6, tokensKv: 9, headDim: 4 },
    2,
  );
  const out = attentionReference(q, k, v);
  for (let h = 0; h < 4; h++) {
    const kvHead = Math.floor(h / 2);
    const expected = attentionReference(head(q, h), head(k, kvHead), head(v, kvHead));
    closeAll(head(out, h).data, expected.data);
    // h % Hkv picks the other kv head for h = 1 and h = 2; make sure that would differ
    if (h % 2 !== kvHead) {
      const wrong = attentionReference(head(q, h), head(k, h % 2), head(v, h % 2));
      assert.ok(Math.abs(wrong.data[0] - expected.data[0]) > 1e-6);
    }
  }
});

test('causal alignments on Nq != Nk (q = 0: uniform over the visible keys)', () => {
  const q = f64([0, 0], [1, 1, 2, 1]);
  const k = f64([1, 1, 1], [1, 1, 3, 1]);
  const v = f64([1, 2, 4], [1, 1, 3, 1]);
  const topLeft = attentionReference(q, k, v, { causal: true });
  closeAll(topLeft.data, [1, 1.5]);
  const bottomRight = attentionReference(q, k, v, { causal: true, causalAlignment: 'bottom-right' });
  closeAll(bottomRight.data, [1.5, 7 / 3]);
  // Nq > Nk bottom-right: the first Nq - Nk rows see no key
  const q3 = f64([0, 0, 0], [1, 1, 3, 1]);
  const { out, lse } = attentionReference(q3, f64([1], [1, 1, 1, 1]), f64([5], [1, 1, 1, 1]), {
    causal: true,
    causalAlignment: 'bottom-right',
    returnLse: true,
  });
  assert.deepEqual(Array.from(out.data), [0, 0, 5]);
  assert.deepEqual(Array.from(lse.data), [-Infinity, -Infinity, 0]);
});

test('boolean and additive masks: -Infinity equals false, finite values shift the logits', () => {
  const dims = { batch: 1, headsQ: 2, tokensQ: 5, tokensKv: 6, headDim: 4 };
  const { q, k, v } = gaussianQkv(dims, 3, 'float64');
  const keep = Array.from({ length: 5 * 6 }, (_, i) => (i * 7) % 3 !== 0 || i % 6 === 1);
  const bool = tensor(
    keep.map((x) => Number(x)),
    [5, 6],
    'bool',
  );
  const additive = tensor(
    keep.map((x) => (x ? 0 : -Infinity)),
    [1, 1, 5, 6],
    'float32',
  );
  const a = attentionReference(q, k, v, { mask: bool, returnLse: true });
  const b = attentionReference(q, k, v, { mask: additive, returnLse: true });
  assert.deepEqual(a.out.data, b.out.data);
  assert.deepEqual(a.lse.data, b.lse.data);
  // the mask changes the result
  assert.ok(Math.abs(attentionReference(q, k, v).data[0] - a.out.data[0]) > 1e-6);

  // additive ln 3 on key 0 with q = 0 makes p = [3/4, 1/4]
  const zero = f64([0], [1, 1, 1, 1]);
  const out = attentionReference(zero, f64([1, 2], [1, 1, 2, 1]), f64([1, 5], [1, 1, 2, 1]), {
    mask: f64([Math.log(3), 0], [2]),
  });
  close(out.data[0], 0.75 * 1 + 0.25 * 5);
});

test('masks broadcast by trailing dims and combine with causal', () => {
  const dims = { batch: 2, headsQ: 2, tokensQ: 3, tokensKv: 4, headDim: 2 };
  const { q, k, v } = gaussianQkv(dims, 4, 'float64');
  const perKey = tensor([1, 0, 1, 1], [4], 'bool');
  const full = tensor(
    Array.from({ length: 2 * 2 * 3 * 4 }, (_, i) => [1, 0, 1, 1][i % 4]),
    [2, 2, 3, 4],
    'bool',
  );
  assert.deepEqual(
    attentionReference(q, k, v, { mask: perKey }).data,
    attentionReference(q, k, v, { mask: full }).data,
  );
  const perBatch = tensor([1, 1, 1, 1, 1, 1, 0, 1], [2, 1, 1, 4], 'bool');
  const out = attentionReference(q, k, v, { mask: perBatch, causal: true });
  for (const b of [0, 1]) {
    const plain = attentionReference(
      tensor(q.data.slice(b * 12, b * 12 + 12), [1, 2, 3, 2], 'float64'),
      tensor(k.data.slice(b * 16, b * 16 + 16), [1, 2, 4, 2], 'float64'),
      tensor(v.data.slice(b * 16, b * 16 + 16), [1, 2, 4, 2], 'float64'),
      { mask: tensor(perBatch.data.slice(b * 4, b * 4 + 4), [4], 'bool'), causal: true },
    );
    closeAll(out.data.slice(b * 12, b * 12 + 12), plain.data);
  }
  // q = 0, causal top-left and a mask dropping key 0: row 0 sees nothing, row 1 only key 1
  const zero = f64([0, 0], [1, 1, 2, 1]);
  const both = attentionReference(zero, f64([1, 1, 1], [1, 1, 3, 1]), f64([1, 2, 4], [1, 1, 3, 1]), {
    causal: true,
    mask: tensor([0, 1, 1], [3], 'bool'),
  });
  assert.deepEqual(Array.from(both.data), [0, 2]);
});

test('mask validation: shape not broadcastable is a ShapeError, a non-bool int dtype a DTypeError', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 3, tokensKv: 4, headDim: 2 }, 5);
  assert.throws(() => attentionReference(q, k, v, { mask: tensor([1, 1, 1], [3], 'bool') }), {
    name: 'ShapeError',
    message: /mask must be broadcastable to \[1, 2, 3, 4\]/,
  });
  assert.throws(() => attentionReference(q, k, v, { mask: tensor([1, 1, 1, 1], [1, 1, 1, 1, 4], 'bool') }), {
    name: 'ShapeError',
  });
  assert.throws(() => attentionReference(q, k, v, { mask: tensor([1, 1, 1, 1], [4], 'int8') }), {
    name: 'DTypeError',
  });
});

test('a fully masked row gives zeros and LSE -Infinity, never NaN, even if a masked key holds NaN', () => {
  const q = f64([1, 2, 3, 4], [1, 1, 2, 2]);
  const k = f64([1, NaN, 0, 1], [1, 1, 2, 2]);
  const v = f64([NaN, 1, 2, 3], [1, 1, 2, 2]);
  const keep = tensor([0, 1, 0, 0], [2, 2], 'bool');
  const { out, lse } = attentionReference(q, k, v, { mask: keep, returnLse: true });
  assert.deepEqual(Array.from(out.data), [2, 3, 0, 0]);
  close(lse.data[0], 2 / Math.SQRT2);
  assert.equal(lse.data[1], -Infinity);
  const additive = f64([-Infinity, 0, -Infinity, -Infinity], [2, 2]);
  assert.deepEqual(attentionReference(q, k, v, { mask: additive }).data, out.data);
});

test('HND and NHD give the same numbers', () => {
  const dims = { batch: 2, headsQ: 4, headsKv: 2, tokensQ: 5, tokensKv: 7, headDim: 3 };
  const { q, k, v } = gaussianQkv(dims, 6);
  const hnd = attentionReference(q, k, v, { causal: true, returnLse: true });
  const toNhd = (t: Tensor) => convertLayout(t, 'HND', 'NHD');
  const nhd = attentionReference(toNhd(q), toNhd(k), toNhd(v), {
    layout: 'NHD',
    causal: true,
    returnLse: true,
  });
  assert.deepEqual(nhd.out.shape, [2, 5, 4, 3]);
  assert.deepEqual(convertLayout(nhd.out, 'NHD', 'HND').data, hnd.out.data);
  assert.deepEqual(nhd.lse.data, hnd.lse.data);
});

test('NaN policy propagate: a NaN reaches only the rows that read it', () => {
  const dims = { batch: 1, headsQ: 1, tokensQ: 6, headDim: 2 };
  const { q, k, v } = gaussianQkv(dims, 7, 'float64');
  k.data[3 * 2 + 1] = NaN; // key 3
  q.data[1 * 2] = NaN; // query 1
  const out = attentionReference(q, k, v, { causal: true });
  const nanRows = [0, 1, 2, 3, 4, 5].filter((i) => Number.isNaN(out.data[2 * i]));
  assert.deepEqual(nanRows, [1, 3, 4, 5]);
});

test("NaN policy 'error' throws NonFiniteInputError naming the tensor and index", () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 3, headDim: 2 }, 8, 'float64');
  v.data[7] = Infinity;
  assert.throws(() => attentionReference(q, k, v, { nanPolicy: 'error' }), {
    name: 'NonFiniteInputError',
    message: /^v\[0, 1, 0, 1\] is Infinity/,
  });
  const mask = f64([0, NaN, 0], [3]);
  v.data[7] = 0;
  assert.throws(() => attentionReference(q, k, v, { nanPolicy: 'error', mask }), /NaN/);
  const dropping = f64([0, -Infinity, 0], [3]);
  assert.doesNotThrow(() => attentionReference(q, k, v, { nanPolicy: 'error', mask: dropping }));
});

test('Nq = 0 gives empty output and LSE of the right shapes', () => {
  const q = tensor([], [2, 3, 0, 4], 'float32');
  const k = randn([2, 3, 5, 4], { seed: 1 });
  const { out, lse } = attentionReference(q, k, k, { returnLse: true });
  assert.deepEqual(out.shape, [2, 3, 0, 4]);
  assert.deepEqual(lse.shape, [2, 3, 0]);
});

test('float16 and bfloat16 inputs are decoded exactly to float64', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 4, headDim: 8 }, 9);
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const [q16, k16, v16] = [as(q, dtype), as(k, dtype), as(v, dtype)];
    const expected = attentionReference(as(q16, 'float64'), as(k16, 'float64'), as(v16, 'float64'));
    assert.deepEqual(attentionReference(q16, k16, v16).data, expected.data);
  }
});
