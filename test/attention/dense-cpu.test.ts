import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertLayout } from '../../src/core/layout.js';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { attentionCpu } from '../../src/attention/dense-cpu.js';
import { metrics } from '../../src/attention/metrics.js';
import { attentionReference } from '../../src/attention/reference.js';
import { as, gaussianQkv, sharedCases } from './cases.js';

/**
 * LSEs agree within tol absolute, widened to float32's own rounding (2^-23 relative) where |LSE| is
 * large (the ±65504 case has LSE ≈ 1746, whose float32 spacing is 1.2e-4), with -Infinity (a row that
 * sees no key) exactly where the oracle has it.
 */
function assertLseClose(actual: Tensor, expected: Tensor, tol: number, what: string) {
  assert.deepEqual(actual.shape, expected.shape);
  for (let i = 0; i < expected.size; i++) {
    const [a, e] = [actual.data[i], expected.data[i]];
    if (e === -Infinity) assert.equal(a, -Infinity, `${what}: lse[${i}]`);
    else
      assert.ok(Math.abs(a - e) <= Math.max(tol, Math.abs(e) * 2 ** -23), `${what}: lse[${i}] ${a} vs ${e}`);
  }
}

const tilings = [
  { blockQ: 64, blockK: 64 },
  { blockQ: 16, blockK: 32 },
  { blockQ: 7, blockK: 5 },
];

for (const c of sharedCases()) {
  test(`matches the float64 oracle: ${c.name}`, () => {
    const ref = attentionReference(c.q, c.k, c.v, { ...c.opts, returnLse: true });
    for (const tiling of tilings) {
      const what = `${c.name} ${tiling.blockQ}x${tiling.blockK}`;
      const got = attentionCpu(c.q, c.k, c.v, { ...c.opts, ...tiling, returnLse: true });
      assert.equal(got.out.dtype, 'float32');
      assert.deepEqual(got.out.shape, c.q.shape);
      assert.ok(!got.out.data.some(Number.isNaN), `${what}: NaN in output`);
      const err = metrics.relL1(got.out, ref.out);
      assert.ok(err < 1e-5, `${what}: relative L1 ${err}`);
      assertLseClose(got.lse, ref.lse, 1e-5, what);
    }
  });
}

test('fully masked rows (bottom-right, Nq > Nk) are exact zeros with LSE -Infinity', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 10, tokensKv: 3, headDim: 4 }, 1);
  const { out, lse } = attentionCpu(q, k, v, {
    causal: true,
    causalAlignment: 'bottom-right',
    blockQ: 4,
    blockK: 2,
    returnLse: true,
  });
  assert.deepEqual(Array.from(out.data.slice(0, 7 * 4)), new Array(28).fill(0));
  assert.deepEqual(Array.from(lse.data.slice(0, 7)), new Array(7).fill(-Infinity));
  assert.ok(out.data.slice(28).every((x) => x !== 0 && Number.isFinite(x)));
});

test('a row whose logits are all -Infinity gives zeros and LSE -Infinity, as in the oracle', () => {
  // q row 1 = [-inf, 0] against keys with a positive first channel: every logit of that row is -inf
  const q = tensor([1, 0, -Infinity, 0], [1, 1, 2, 2], 'float32');
  const k = tensor([1, 0, 2, 1, 3, -1], [1, 1, 3, 2], 'float32');
  const v = tensor([1, 2, 3, 4, 5, 6], [1, 1, 3, 2], 'float32');
  const ref = attentionReference(q, k, v, { returnLse: true });
  const got = attentionCpu(q, k, v, { blockK: 2, returnLse: true });
  assert.deepEqual(Array.from(ref.out.data.slice(2)), [0, 0]);
  assert.deepEqual(Array.from(got.out.data.slice(2)), [0, 0]);
  assert.deepEqual([ref.lse.data[1], got.lse.data[1]], [-Infinity, -Infinity]);
  assert.ok(metrics.relL1(got.out, ref.out) < 1e-6);
});

test('a key tile whose logits are all -Infinity does not poison the tiles after it', () => {
  // key 0 = [-inf, 0] gives logit -inf for q = [1, 1]; with blockK 1 it is a tile of its own, and the
  // running max is still -inf after it, so the rescale exp(m_old - m_new) must not run there
  const q = tensor([1, 1], [1, 1, 1, 2], 'float32');
  const k = tensor([-Infinity, 0, 1, 1, 0.5, 2], [1, 1, 3, 2], 'float32');
  const v = tensor([1, 2, 3, 4, 5, 6], [1, 1, 3, 2], 'float32');
  const ref = attentionReference(q, k, v, { returnLse: true });
  const got = attentionCpu(q, k, v, { blockK: 1, returnLse: true });
  assert.ok(got.out.data.every(Number.isFinite));
  assert.ok(metrics.relL1(got.out, ref.out) < 1e-6);
  assertLseClose(got.lse, ref.lse, 1e-6, '-inf tile');
});

test('NHD input gives NHD output with the same numbers as HND', () => {
  const { q, k, v } = gaussianQkv(
    { batch: 2, headsQ: 4, headsKv: 2, tokensQ: 9, tokensKv: 11, headDim: 5 },
    2,
  );
  const hnd = attentionCpu(q, k, v, { causal: true, blockQ: 4, blockK: 3 });
  const nhd = (t: Tensor) => convertLayout(t, 'HND', 'NHD');
  const got = attentionCpu(nhd(q), nhd(k), nhd(v), { layout: 'NHD', causal: true, blockQ: 4, blockK: 3 });
  assert.deepEqual(got.shape, [2, 9, 4, 5]);
  assert.deepEqual(convertLayout(got, 'NHD', 'HND').data, hnd.data);
});

test('returns a plain tensor without returnLse, and Nq = 0 gives empty results', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 3, headDim: 4 }, 3);
  const out = attentionCpu(q, k, v);
  assert.equal(out.dtype, 'float32');
  assert.deepEqual(out.shape, [1, 2, 3, 4]);
  const empty = attentionCpu(tensor([], [1, 2, 0, 4], 'float32'), k, v, { returnLse: true });
  assert.deepEqual(empty.out.shape, [1, 2, 0, 4]);
  assert.deepEqual(empty.lse.shape, [1, 2, 0]);
});

test('float64, float16 and bfloat16 inputs match the oracle on the same (decoded) values', () => {
  const dims = { batch: 1, headsQ: 2, headsKv: 1, tokensQ: 20, tokensKv: 30, headDim: 8 };
  for (const dtype of ['float64', 'float16', 'bfloat16'] as const) {
    const { q, k, v } = gaussianQkv(dims, 4, dtype);
    const ref = attentionReference(q, k, v, { causal: true });
    const got = attentionCpu(q, k, v, { causal: true, blockQ: 8, blockK: 8 });
    assert.ok(metrics.relL1(got, ref) < 1e-6, dtype);
  }
});

test('NaN propagates only to the rows that read it, as in the oracle', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 12, headDim: 3 }, 5, 'float64');
  v.data[5 * 3 + 2] = NaN; // key 5, channel 2
  const out = attentionCpu(q, k, v, { causal: true, blockQ: 4, blockK: 4 });
  for (let i = 0; i < 12; i++) {
    const nan = Array.from(out.data.slice(i * 3, i * 3 + 3), Number.isNaN);
    assert.deepEqual(nan, [false, false, i >= 5], `row ${i}`);
  }
});

test("nanPolicy 'error' throws NonFiniteInputError before computing", () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 4, headDim: 2 }, 6);
  q.data[3] = -Infinity;
  assert.throws(() => attentionCpu(q, k, v, { nanPolicy: 'error' }), {
    name: 'NonFiniteInputError',
    message: /^q\[0, 0, 1, 1\] is -Infinity/,
  });
});

test('tile sizes must be positive integers', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 4, headDim: 2 }, 7);
  for (const bad of [0, -4, 2.5, NaN]) {
    assert.throws(() => attentionCpu(q, k, v, { blockQ: bad }), { name: 'UnsupportedOptionError' });
    assert.throws(() => attentionCpu(q, k, v, { blockK: bad }), { name: 'UnsupportedOptionError' });
  }
});

test('validation is shared with the oracle (a typo is rejected)', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 4, headDim: 2 }, 8);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  assert.throws(() => attentionCpu(q, k, v, { blokQ: 4 } as any), /did you mean 'blockQ'/);
  assert.throws(() => attentionCpu(q, k, as(v, 'float64')), { name: 'DTypeError' });
});
