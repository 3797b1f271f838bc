import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import type { F64 } from '../../src/autograd/var.js';
import {
  type Parameterization,
  PARAMETERIZATIONS,
  convertPrediction,
} from '../../src/diffusion/parameterization.js';
import { VpSchedule } from '../../src/diffusion/vp.js';

function randomBatch(n: number, d: number, seed: number): F64 {
  const x = new Float64Array(n * d);
  Rng.fromSeed(seed).fillNormal(x);
  return new Tensor(x, [n, d], 'float64');
}

const maxAbs = (a: F64, b: F64): number => {
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
};

/** x_t and the three true targets for known x₀, ε at per-row scales. */
function truth(alpha: Float64Array, sigma: Float64Array) {
  const n = alpha.length;
  const d = 3;
  const x0 = randomBatch(n, d, 1);
  const eps = randomBatch(n, d, 2);
  const xt = new Float64Array(n * d);
  const v = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const k = i * d + j;
      xt[k] = alpha[i] * x0.data[k] + sigma[i] * eps.data[k];
      v[k] = alpha[i] * eps.data[k] - sigma[i] * x0.data[k];
    }
  }
  const targets: Record<Parameterization, F64> = { eps, x0, v: new Tensor(v, [n, d], 'float64') };
  return { x: new Tensor(xt, [n, d], 'float64') as F64, targets };
}

for (const [name, scales] of [
  [
    'VP (α² + σ² = 1)',
    (() => {
      const s = new VpSchedule();
      const ts = [0, 3, 250, 500, 999];
      return {
        alpha: Float64Array.from(ts, (t) => s.alpha(t)),
        sigma: Float64Array.from(ts, (t) => s.sigma(t)),
      };
    })(),
  ],
  ['EDM (α = 1)', { alpha: new Float64Array(5).fill(1), sigma: Float64Array.from([0.002, 0.1, 1, 10, 80]) }],
] as const) {
  test(`conversions between ε, x₀ and v are exact and round-trip: ${name}`, () => {
    const { x, targets } = truth(scales.alpha, scales.sigma);
    for (const from of PARAMETERIZATIONS) {
      for (const to of PARAMETERIZATIONS) {
        const got = convertPrediction(targets[from], x, from, to, scales);
        // Relative to the values' size (x₀ from ε at α ≈ 0.006 divides by α): a few ulps of x_t/α.
        const scale = Math.max(...x.data.map(Math.abs)) / Math.min(...scales.alpha) + 1;
        assert.ok(maxAbs(got, targets[to]) < 1e-13 * scale, `${from} → ${to}: ${maxAbs(got, targets[to])}`);
        const back = convertPrediction(got, x, to, from, scales);
        assert.ok(maxAbs(back, targets[from]) < 1e-12 * scale, `${from} → ${to} → ${from}`);
      }
    }
  });
}

test('conversions: one scale pair for the whole batch equals per-row scales', () => {
  const x = randomBatch(4, 2, 3);
  const p = randomBatch(4, 2, 4);
  const a = convertPrediction(p, x, 'eps', 'v', { alpha: 0.6, sigma: 0.8 });
  const b = convertPrediction(p, x, 'eps', 'v', {
    alpha: new Float64Array(4).fill(0.6),
    sigma: new Float64Array(4).fill(0.8),
  });
  assert.deepEqual([...a.data], [...b.data]);
});

test('conversions: division by a zero scale, bad names and shapes are typed errors', () => {
  const x = randomBatch(2, 2, 5);
  assert.throws(() => convertPrediction(x, x, 'eps', 'x0', { alpha: 0, sigma: 1 }), UnsupportedOptionError);
  assert.throws(() => convertPrediction(x, x, 'x0', 'eps', { alpha: 1, sigma: 0 }), UnsupportedOptionError);
  assert.throws(() => convertPrediction(x, x, 'v', 'eps', { alpha: 0, sigma: 0 }), UnsupportedOptionError);
  assert.throws(
    () => convertPrediction(x, x, 'score' as Parameterization, 'eps', { alpha: 1, sigma: 1 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => convertPrediction(randomBatch(3, 2, 6), x, 'eps', 'x0', { alpha: 1, sigma: 1 }),
    ShapeError,
  );
  assert.throws(
    () => convertPrediction(x, x, 'eps', 'x0', { alpha: new Float64Array(3), sigma: 1 }),
    ShapeError,
  );
  // σ = 0 is fine where it is not a divisor (x₀ ↔ v at the clean end).
  const v = convertPrediction(x, x, 'x0', 'x0', { alpha: 1, sigma: 0 });
  assert.deepEqual([...v.data], [...x.data]);
});
