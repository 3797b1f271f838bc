import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn } from '../../../src/core/tensor.js';
import { ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import {
  applyTokenOrder,
  hilbertIndex3d,
  hilbertJumps,
  hilbertOrder3d,
  randomOrder,
  restoreTokenOrder,
  restoreTokenOrderLse,
  rowMajorOrder,
  timeMajorOrder,
  type TokenOrder,
} from '../../../src/attention/sparse/token-orders.js';

function assertPermutation(o: TokenOrder) {
  const n = o.perm.length;
  const seen = new Uint8Array(n);
  for (const p of o.perm) seen[p]++;
  assert.ok(
    seen.every((c) => c === 1),
    `${o.name}: not a permutation`,
  );
  for (let r = 0; r < n; r++) assert.equal(o.inverse[o.perm[r]], r);
}

test('the 3-D Hilbert curve on power-of-two cubes: every step moves to a face neighbour', () => {
  for (const side of [1, 2, 4, 8, 16]) {
    const o = hilbertOrder3d(side, side, side);
    assertPermutation(o);
    assert.equal(hilbertJumps(o), 0, `side ${side}`);
    assert.equal(o.perm[0], 0, 'the curve starts at the origin');
  }
  // the index is a bijection onto [0, 8^bits)
  const seen = new Set<number>();
  for (let a = 0; a < 4; a++)
    for (let b = 0; b < 4; b++) for (let c = 0; c < 4; c++) seen.add(hilbertIndex3d(a, b, c, 2));
  assert.equal(seen.size, 64);
  assert.equal(Math.max(...seen), 63);
});

test('non-power-of-two grids: the enclosing cube curve restricted to the grid, jumps only where it leaves', () => {
  for (const [f, h, w, maxJumps] of [
    [8, 32, 32, 15],
    [2, 4, 4, 3],
    [3, 5, 6, 40],
    [21, 9, 16, 120],
  ] as const) {
    const o = hilbertOrder3d(f, h, w);
    assertPermutation(o);
    const jumps = hilbertJumps(o);
    assert.ok(jumps <= maxJumps, `${f}×${h}×${w}: ${jumps} non-neighbour steps > ${maxJumps}`);
    // far fewer than an order without locality
    assert.ok(hilbertJumps(randomOrder(f, h, w, 1)) > 10 * Math.max(1, jumps));
  }
});

test('row-major is the identity; time-major puts one position of every frame together', () => {
  const rm = rowMajorOrder(3, 2, 2);
  assert.deepEqual(
    Array.from(rm.perm),
    Array.from({ length: 12 }, (_, i) => i),
  );
  const tm = timeMajorOrder(3, 2, 2);
  assertPermutation(tm);
  // position p·F + f holds token f·L + p (L = 4)
  assert.deepEqual(Array.from(tm.perm), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  assertPermutation(randomOrder(3, 4, 5, 7));
  assert.deepEqual(randomOrder(3, 4, 5, 7).perm, randomOrder(3, 4, 5, 7).perm);
});

test('reordered attention with the inverse on O and LSE equals attention in the stored order', () => {
  // 2 text tokens before a 2 × 3 × 4 grid, one trailing token
  const q = randn([1, 2, 27, 8], { seed: 1, dtype: 'float64' });
  const k = randn([1, 2, 27, 8], { seed: 2, dtype: 'float64' });
  const v = randn([1, 2, 27, 8], { seed: 3, dtype: 'float64' });
  const ref = attentionReference(q, k, v, { returnLse: true });
  for (const o of [hilbertOrder3d(2, 3, 4), timeMajorOrder(2, 3, 4)]) {
    const opts = { prefix: 2 };
    const [qo, ko, vo] = [q, k, v].map((t) => applyTokenOrder(t, o, opts));
    assert.deepEqual(Array.from(qo.data.slice(0, 16)), Array.from(q.data.slice(0, 16)), 'prefix stays');
    const res = attentionReference(qo, ko, vo, { returnLse: true });
    const out = restoreTokenOrder(res.out, o, opts);
    const lse = restoreTokenOrderLse(res.lse, o, 2);
    assert.ok(metrics.relL1(out, ref.out) < 1e-14);
    assert.ok(metrics.relL1(lse, ref.lse) < 1e-14);
  }
  // NHD layout
  const qn = randn([1, 24, 2, 4], { seed: 4 });
  const o = hilbertOrder3d(2, 3, 4);
  assert.deepEqual(
    restoreTokenOrder(applyTokenOrder(qn, o, { layout: 'NHD' }), o, { layout: 'NHD' }).data,
    qn.data,
  );
});

test('token orders reject bad grids and tensors too short for the grid', () => {
  assert.throws(() => hilbertOrder3d(0, 2, 2), UnsupportedOptionError);
  assert.throws(() => timeMajorOrder(2, 2.5, 2), UnsupportedOptionError);
  const o = rowMajorOrder(2, 2, 2);
  assert.throws(() => applyTokenOrder(randn([1, 1, 7, 4]), o), ShapeError);
  assert.throws(() => applyTokenOrder(randn([1, 1, 9, 4]), o, { prefix: 2 }), ShapeError);
  assert.throws(() => applyTokenOrder(randn([1, 8, 4]), o), ShapeError);
});
