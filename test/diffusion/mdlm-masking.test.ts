import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { maskExactly, maskWithProbability, responseLength } from '../../src/diffusion/mdlm-masking.js';

const MASK = 9;
const seq = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const layout = { promptLength: 3, maskToken: MASK };

test('t-form masking: prompt untouched, each response token masked with frequency t', () => {
  const rng = Rng.fromSeed(1);
  const n = 4000;
  const t = 0.3;
  const perPosition = new Float64Array(seq.length);
  for (let k = 0; k < n; k++) {
    const m = maskWithProbability(seq, t, layout, rng);
    let count = 0;
    for (let i = 0; i < seq.length; i++) {
      if (m.masked[i] === 1) {
        assert.ok(i >= 3, 'a prompt position was masked');
        assert.equal(m.tokens[i], MASK);
        count++;
      } else {
        assert.equal(m.tokens[i], seq[i]);
      }
      perPosition[i] += m.masked[i];
    }
    assert.equal(m.count, count);
  }
  const se = Math.sqrt((t * (1 - t)) / n);
  for (let i = 3; i < seq.length; i++) assert.ok(Math.abs(perPosition[i] / n - t) < 4 * se, `position ${i}`);
  assert.deepEqual(Array.from(seq), [1, 2, 3, 4, 5, 6, 7, 8], 'the clean sequence was modified');
});

test('t-form masking at t = 1 masks the whole response', () => {
  const m = maskWithProbability(seq, 1, layout, Rng.fromSeed(2));
  assert.deepEqual(Array.from(m.tokens), [1, 2, 3, MASK, MASK, MASK, MASK, MASK]);
});

test('l-form masking: exactly l response positions, every l-subset about equally often', () => {
  const rng = Rng.fromSeed(3);
  const n = 5000;
  const l = 2;
  const counts = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    const m = maskExactly(seq, l, layout, rng);
    const where = [...m.masked.keys()].filter((i) => m.masked[i] === 1);
    assert.equal(where.length, l);
    assert.equal(m.count, l);
    assert.ok(where.every((i) => i >= 3));
    counts.set(where.join(','), (counts.get(where.join(',')) ?? 0) + 1);
  }
  // C(5, 2) = 10 subsets; each expected n/10 times, binomial sd ≈ 21.
  assert.equal(counts.size, 10);
  for (const [k, c] of counts) assert.ok(Math.abs(c - n / 10) < 5 * Math.sqrt(n * 0.1 * 0.9), k);
});

test('masking is deterministic in the rng stream', () => {
  const a = maskExactly(seq, 3, layout, Rng.fromSeed(7));
  const b = maskExactly(seq, 3, layout, Rng.fromSeed(7));
  assert.deepEqual(Array.from(a.tokens), Array.from(b.tokens));
});

test('bad layouts and timesteps are typed errors', () => {
  const rng = Rng.fromSeed(0);
  assert.throws(
    () => responseLength(seq, { promptLength: 8, maskToken: MASK }),
    ShapeError,
    'empty response',
  );
  assert.throws(() => responseLength(new Int32Array(0), { maskToken: MASK }), ShapeError, 'empty sequence');
  assert.throws(
    () => responseLength(Int32Array.from([1, MASK, 2]), { maskToken: MASK }),
    ShapeError,
    'masked clean',
  );
  assert.throws(() => responseLength(seq, { promptLength: -1, maskToken: MASK }), UnsupportedOptionError);
  for (const t of [0, -0.1, 1.5, Number.NaN]) {
    assert.throws(() => maskWithProbability(seq, t, layout, rng), UnsupportedOptionError, `t = ${t}`);
  }
  for (const l of [0, 6, 2.5]) assert.throws(() => maskExactly(seq, l, layout, rng), UnsupportedOptionError);
});
