import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import type { F64 } from '../../src/autograd/var.js';
import { slicedWasserstein, wassersteinSorted1d } from '../../src/diffusion/sliced-wasserstein.js';
import { medianBandwidth, mmdRbf } from '../../src/diffusion/mmd.js';

function gaussian(n: number, d: number, seed: number, shift = 0): F64 {
  const x = new Float64Array(n * d);
  Rng.fromSeed(seed).fillNormal(x);
  for (let i = 0; i < n; i++) x[i * d] += shift;
  return new Tensor(x, [n, d], 'float64');
}

test('1-D Wasserstein: exact for unequal sizes (hand-computed quantile integral)', () => {
  // F⁻¹ of {0, 1} vs {0, 0.5, 1}: |diff| is 0.5 on [1/3, 2/3) and 0 elsewhere → W₁ = 1/6, W₂² = 1/12.
  const a = Float64Array.from([0, 1]);
  const b = Float64Array.from([0, 0.5, 1]);
  assert.ok(Math.abs(wassersteinSorted1d(a, b, 1) - 1 / 6) < 1e-15);
  assert.ok(Math.abs(wassersteinSorted1d(a, b, 2) - 1 / 12) < 1e-15);
  assert.equal(wassersteinSorted1d(a, a, 2), 0);
});

test('SWD: 0 for a sample with itself, the shift itself in 1-D, ≈ 0 for two samples of one law, grows with a shift', () => {
  const x = gaussian(1000, 2, 1);
  assert.equal(slicedWasserstein(x, x), 0);
  const x1 = gaussian(500, 1, 2);
  const shifted = new Tensor(
    Float64Array.from(x1.data, (v) => v + 0.7),
    [500, 1],
    'float64',
  );
  assert.ok(Math.abs(slicedWasserstein(x1, shifted) - 0.7) < 1e-12);
  const floor = slicedWasserstein(x, gaussian(1000, 2, 3));
  assert.ok(floor < 0.12, `two samples of N(0, I): ${floor}`);
  let prev = floor;
  for (const s of [0.25, 0.5, 1, 2]) {
    const v = slicedWasserstein(x, gaussian(1000, 2, 3, s));
    assert.ok(v > prev, `shift ${s}: ${v} ≤ ${prev}`);
    prev = v;
  }
  // For a pure shift c along e₁ in 2-D, SW₂ → |c|·√E[θ₁²] = |c|/√2 as the sample grows.
  assert.ok(Math.abs(prev - 2 / Math.SQRT2) < 0.15, `${prev}`);
  // Seeded directions: same seed same value, and different sample sizes work.
  const y = gaussian(700, 2, 4);
  assert.equal(slicedWasserstein(x, y, { seed: 5 }), slicedWasserstein(x, y, { seed: 5 }));
  assert.notEqual(slicedWasserstein(x, y, { seed: 5 }), slicedWasserstein(x, y, { seed: 6 }));
});

test('MMD²_u: hand-computed value, ≈ 0 within its own noise for one law, grows with a shift', () => {
  // x = {0, 1}, y = {0, 2}, h = 1: k(0,1) = e^{−1/2}, k(0,2) = e^{−2}, k(1,0) = e^{−1/2}, k(1,2) = e^{−1/2}.
  const x = new Tensor(Float64Array.from([0, 1]), [2, 1], 'float64');
  const y = new Tensor(Float64Array.from([0, 2]), [2, 1], 'float64');
  const e = Math.exp;
  const want = e(-0.5) + e(-2) - (2 / 4) * (1 + e(-2) + e(-0.5) + e(-0.5));
  assert.ok(Math.abs(mmdRbf(x, y, { bandwidth: 1 }).mmd2 - want) < 1e-15);
  const a = gaussian(600, 2, 1);
  const same = mmdRbf(a, gaussian(600, 2, 2), { bandwidth: 1 }).mmd2;
  assert.ok(Math.abs(same) < 0.01, `same law: ${same}`);
  let prev = same;
  for (const s of [0.3, 0.6, 1.2]) {
    const v = mmdRbf(a, gaussian(600, 2, 2, s), { bandwidth: 1 }).mmd2;
    assert.ok(v > prev + 0.005, `shift ${s}: ${v}`);
    prev = v;
  }
  // Median heuristic: the median pairwise distance of the pooled sample (here of 2 + 2 points).
  // Pooled {0, 1, 0, 2}: distances 1, 0, 2, 1, 1, 2 → median (1 + 1)/2 = 1.
  assert.equal(medianBandwidth(x, y), 1);
  assert.equal(mmdRbf(x, y).bandwidth, 1);
});

test('metrics: bad input is a typed error', () => {
  const x = gaussian(10, 2, 1);
  assert.throws(() => slicedWasserstein(x, gaussian(10, 3, 1)), ShapeError);
  assert.throws(() => slicedWasserstein(x, x, { projections: 0 }), UnsupportedOptionError);
  assert.throws(() => slicedWasserstein(x, x, { p: 0.5 }), UnsupportedOptionError);
  assert.throws(() => mmdRbf(x, gaussian(1, 2, 1)), UnsupportedOptionError);
  assert.throws(() => mmdRbf(x, x, { bandwidth: 0 }), UnsupportedOptionError);
  const bad = new Tensor(Float64Array.from([NaN, 0, 1, 1]), [2, 2], 'float64');
  assert.throws(() => slicedWasserstein(bad, x), NonFiniteInputError);
  assert.throws(() => mmdRbf(bad, x), NonFiniteInputError);
});
