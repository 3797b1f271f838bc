import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeMxfp4 } from '../../src/nn/mxfp4-groups.js';
import type { Matrix } from '../../src/nn/matrix.js';
import { OscillationTracker, quantConf, relativeChange, oscillationRatio } from '../../src/nn/oscillation.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** A 1×32 row whose first element is 6, so the truncation-free scale is 2^0 and w/S = w. */
function row(head: number[]): Matrix {
  const data = new Float64Array(32);
  data.set([6, ...head]);
  return { data, rows: 1, cols: 32 };
}

const q = (m: Matrix) => quantizeMxfp4(m, { along: 'row', rounding: 'nearest-even' });

test('QuantConf: distance to the nearest threshold over half the rounding cell', () => {
  close(quantConf(0), 1);
  close(quantConf(0.1), 0.6);
  close(quantConf(-0.75), 0);
  close(quantConf(1), 1);
  close(quantConf(0.74), 0.04);
  close(quantConf(2.125), 1); // cell [1.75, 2.5] is asymmetric around 2; its centre is farthest
  close(quantConf(2), 0.25 / 0.375);
  close(quantConf(5.5), 0.5); // top cell [5, 6]
  close(quantConf(6), 1);
});

test('relativeChange and oscillationRatio edge cases', () => {
  close(relativeChange(Float64Array.of(3, 4), Float64Array.of(3, 4)), 0);
  close(relativeChange(Float64Array.of(3, 4), Float64Array.of(3, 5)), 0.2);
  assert.equal(oscillationRatio(0, 0), 0);
  assert.equal(oscillationRatio(0, 1), Infinity);
  close(oscillationRatio(0.5, 2), 4);
});

test('tracker on a hand-made sequence: r(W), r(W_Q), R_w, oscillating fraction, QuantConf', () => {
  // element 1 crosses the 0.75 threshold back and forth; element 2 drifts inside one cell
  const steps = [row([0.74, 1.0]), row([0.76, 1.1]), row([0.74, 1.2])];
  const t = new OscillationTracker(32);
  for (const w of steps) t.observe(w, q(w));
  assert.equal(t.transitions, 2);
  close(t.distW[1], 0.04, 1e-12);
  close(t.distQ[1], 1);
  close(t.distW[2], 0.2, 1e-12);
  assert.equal(t.distQ[2], 0);
  const r = t.ratios();
  close(r[1], 1 / 0.04, 1e-9);
  assert.equal(r[2], 0);
  assert.equal(r[0], 0);
  assert.equal(t.oscillatingFraction(), 1 / 32);
  assert.equal(t.oscillatingFraction(30), 0);
  const rw1 = Math.hypot(0.02, 0.1) / Math.hypot(6, 0.74, 1.0);
  const rw2 = Math.hypot(0.02, 0.1) / Math.hypot(6, 0.76, 1.1);
  close(t.rW, (rw1 + rw2) / 2, 1e-12);
  close(t.rWQ, (0.5 / Math.sqrt(37.25) + 0.5 / Math.sqrt(38)) / 2, 1e-15);
  close(t.quantConf, (1 + 0.04 + 0.2 + 29) / 32, 1e-12);
  t.resetWindow();
  assert.equal(t.transitions, 0);
  assert.equal(t.oscillatingFraction(), 0);
  t.observe(steps[1], q(steps[1]));
  close(t.distQ[1], 0.5);
});

test('tracker rejects a matrix of another size', () => {
  const t = new OscillationTracker(16);
  const w = row([]);
  assert.throws(() => t.observe(w, q(w)), RangeError);
});
