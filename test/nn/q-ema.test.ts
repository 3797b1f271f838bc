import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeMxfp4 } from '../../src/nn/mxfp4-groups.js';
import type { Matrix } from '../../src/nn/matrix.js';
import {
  Q_EMA_DEFAULT_BETA,
  WeightEma,
  quantizeForwardWeight,
  quantizeMxfp4Ema,
  roundE2M1TowardEma,
} from '../../src/nn/q-ema.js';

test('roundE2M1TowardEma picks the neighbour of v nearer the EMA (ties up, clipped at 6)', () => {
  const cases: [number, number, number][] = [
    [-0.74, -0.9, -1], // nearest would be −0.5; the EMA sits past −0.75
    [-0.76, -0.6, -0.5], // nearest would be −1
    [2.4, 3.5, 3], // EMA beyond the upper neighbour: the nearer end, never 4
    [2.4, -1, 2], // EMA of the other sign reads as below lo
    [1.3, 1.25, 1.5], // EMA exactly half a step above lo: up
    [1.3, 1.2499, 1],
    [0.3, -0.1, 0],
    [0, 0.4, 0], // sign(0) = 0 in the reference: zero whatever the EMA
    [-0.3, 0.4, -0], // a positive EMA read with v's negative sign sits below lo
    [1.9, 2.1, 2],
    [5.9, 6, 6],
    [6, 10, 6],
    [7, 5, 6], // |v| clipped to 6 first
    [4, 4.9, 4],
    [4, 5, 6], // on a grid point the neighbours are lo and lo + step
  ];
  for (const [v, e, want] of cases) assert.equal(roundE2M1TowardEma(v, e), want, `v=${v} e=${e}`);
});

function seeded(n: number, seed: number): Float64Array {
  let s = seed;
  return Float64Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31 - 0.5) * 3;
  });
}

test('with the EMA equal to W, Q-EMA is round-to-nearest on both group axes', () => {
  const w: Matrix = { data: seeded(64 * 3, 7), rows: 3, cols: 64 };
  for (const along of ['row', 'column'] as const) {
    const m = along === 'row' ? w : { data: w.data, rows: 64, cols: 3 };
    const got = quantizeMxfp4Ema(m, m.data, { along });
    const want = quantizeMxfp4(m, { along, rounding: 'nearest-even' });
    assert.deepEqual(got.exponents, want.exponents);
    assert.deepEqual(got.elements, want.elements);
  }
});

test('the scale comes from W alone and the EMA never moves a value beyond a neighbour', () => {
  const data = new Float64Array(32);
  data.set([6, 0.7, -2.2, 0.1]);
  const ema = new Float64Array(32).fill(100);
  const q = quantizeMxfp4Ema({ data, rows: 1, cols: 32 }, ema, { along: 'row' });
  assert.deepEqual([...q.exponents], [0]);
  // 0.1 → 0.5 (the EMA sits above it); an exact 0 stays 0 (the reference multiplies by sign(0) = 0)
  assert.deepEqual([...q.elements.slice(0, 5)], [6, 1, -2, 0.5, 0]);
  // a group scaled by 2^1: w/S = 0.37, EMA/S = 0.6 → 0.5 → dequantized 1
  const d2 = new Float64Array(32);
  d2.set([12, 0.74]);
  const e2 = Float64Array.from(d2);
  e2[1] = 1.2;
  const q2 = quantizeMxfp4Ema({ data: d2, rows: 1, cols: 32 }, e2, { along: 'row' });
  assert.deepEqual([...q2.exponents], [1]);
  assert.equal(q2.elements[1], 0.5);
});

test('WeightEma: W_EMA ← β·W_EMA + (1−β)·W, warm-up before use', () => {
  const ema = new WeightEma(Float64Array.of(1, 2), 0.5, 2);
  assert.equal(ema.ready, false);
  ema.update(Float64Array.of(3, 0));
  assert.deepEqual([...ema.value], [2, 1]);
  ema.update(Float64Array.of(0, 0));
  assert.deepEqual([...ema.value], [1, 0.5]);
  assert.equal(ema.steps, 2);
  assert.equal(ema.ready, true);
  const d = new WeightEma(Float64Array.of(1));
  assert.equal(d.beta, Q_EMA_DEFAULT_BETA);
  d.update(Float64Array.of(2));
  assert.ok(Math.abs(d.value[0] - 1.002) < 1e-15);
  assert.throws(() => d.update(Float64Array.of(1, 2)), RangeError);
  assert.throws(() => new WeightEma(Float64Array.of(1), 1), RangeError);
});

test('quantizeForwardWeight: Q_D until the EMA is ready, the EMA rule after', () => {
  const data = new Float64Array(32);
  data.set([6, 0.74]);
  const w: Matrix = { data, rows: 1, cols: 32 };
  const init = Float64Array.from(data);
  init[1] = 1;
  const ema = new WeightEma(init, 0.5, 1);
  assert.equal(quantizeForwardWeight(w, ema, { along: 'row' }).elements[1], 0.5);
  ema.update(init);
  assert.equal(quantizeForwardWeight(w, ema, { along: 'row' }).elements[1], 1);
});
