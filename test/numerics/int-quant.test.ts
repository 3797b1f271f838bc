import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { dequantizeInt, intRange, quantizeInt, roundToInteger } from '../../src/numerics/index.js';

const LARGEST_BELOW_HALF_F32 = Math.fround(0.5 - 2 ** -25);

test('roundToInteger: ties and near-ties under each deterministic rounding', () => {
  const cases: [number, number, number][] = [
    // x, nearest-even, half-away
    [2.5, 2, 3],
    [-2.5, -2, -3],
    [0.5, 0, 1],
    [-0.5, 0, -1],
    [1.5, 2, 2],
    [-1.5, -2, -2],
    [3.5, 4, 4],
    [2.4999999, 2, 2],
    [2.5000001, 3, 3],
    [0.49999999999999994, 0, 0], // no float error in the half test
    [-0.3, 0, 0],
    [7, 7, 7],
    [2 ** 53 + 2, 2 ** 53 + 2, 2 ** 53 + 2],
  ];
  for (const [x, even, away] of cases) {
    assert.equal(roundToInteger(x, 'nearest-even'), even, `nearest-even ${x}`);
    assert.equal(roundToInteger(x, 'half-away'), away, `half-away ${x}`);
  }
  assert.ok(Number.isNaN(roundToInteger(NaN, 'nearest-even')));
  assert.equal(roundToInteger(-Infinity, 'half-away'), -Infinity);
});

test('roundToInteger stochastic: rounds |x| up iff randomBits < frac·2^32', () => {
  assert.equal(roundToInteger(2.25, 'stochastic', 2 ** 30 - 1), 3);
  assert.equal(roundToInteger(2.25, 'stochastic', 2 ** 30), 2);
  assert.equal(roundToInteger(-2.25, 'stochastic', 0), -3);
  assert.equal(roundToInteger(-2.25, 'stochastic', 0xffffffff), -2);
  assert.equal(roundToInteger(2, 'stochastic', 0), 2);
  assert.equal(roundToInteger(0.5, 'stochastic', 2 ** 31), 0);
  assert.throws(() => roundToInteger(1.5, 'stochastic'), UnsupportedOptionError);
  assert.throws(() => roundToInteger(1.5, 'stochastic', 2 ** 32), UnsupportedOptionError);
  assert.throws(() => roundToInteger(1.5, 'banker' as 'nearest-even'), UnsupportedOptionError);
});

test('quantizeInt: exact codes for ties, clamping and specials in each mode and range', () => {
  const x = Float32Array.from([2.5, -2.5, 0.5, -0.5, 1.5, 130, -130, 300, NaN, Infinity, -Infinity, -0]);
  const q = (opts: Parameters<typeof quantizeInt>[2], scale = 1) => Array.from(quantizeInt(x, scale, opts));
  assert.deepEqual(q({ bits: 8 }), [2, -2, 0, 0, 2, 127, -127, 127, 0, 127, -127, 0]);
  assert.deepEqual(q({ bits: 8, rounding: 'half-away' }), [3, -3, 1, -1, 2, 127, -127, 127, 0, 127, -127, 0]);
  assert.deepEqual(q({ bits: 8, clampRange: 'full' }), [2, -2, 0, 0, 2, 127, -128, 127, 0, 127, -128, 0]);
  assert.deepEqual(q({ bits: 4 }), [2, -2, 0, 0, 2, 7, -7, 7, 0, 7, -7, 0]);
  assert.deepEqual(
    q({ bits: 4, clampRange: 'full', rounding: 'half-away' }),
    [3, -3, 1, -1, 2, 7, -8, 7, 0, 7, -8, 0],
  );
  // x / scale: 5 / 2 is the tie 2.5.
  assert.deepEqual(Array.from(quantizeInt(Float32Array.from([5, -5]), 2, { bits: 8 })), [2, -2]);
  assert.deepEqual(
    Array.from(quantizeInt(Float32Array.from([5, -5]), 2, { bits: 8, rounding: 'half-away' })),
    [3, -3],
  );
  assert.deepEqual(intRange(8), [-127, 127]);
  assert.deepEqual(intRange(4, 'full'), [-8, 7]);
});

test('quantizeInt divides in float32 by the float32 scale, like the fp32 reference kernels', () => {
  // fround(0.85) / fround(0.1) = 8.50000011... in float64, but the float32 quotient is the tie 8.5,
  // which rounds to even: 8. A float64 division would give 9.
  assert.equal(quantizeInt(Float32Array.from([0.85]), 0.1, { bits: 8 })[0], 8);
  assert.equal(roundToInteger(Math.fround(0.85) / Math.fround(0.1), 'nearest-even'), 9);
});

test("quantizeInt 'half-away' reproduces SageAttention Triton's float32 x + 0.5·sign(x), then truncation", () => {
  // The one input per sign where that differs from exact half-away: 0.5 − 2^-25 + 0.5 rounds to 1.0.
  const x = Float32Array.from([LARGEST_BELOW_HALF_F32, -LARGEST_BELOW_HALF_F32, Math.fround(0.5 - 2 ** -24)]);
  assert.deepEqual(Array.from(quantizeInt(x, 1, { bits: 8, rounding: 'half-away' })), [1, -1, 0]);
  assert.equal(roundToInteger(LARGEST_BELOW_HALF_F32, 'half-away'), 0);
});

test('quantizeInt stochastic: Philox bits per element, chunk-independent, unbiased before clamping', () => {
  const n = 100003;
  const x = new Float32Array(n).fill(2.5);
  const codes = quantizeInt(x, 1, { bits: 8, rounding: 'stochastic', seed: 9 });
  const rng = Rng.fromSeed(9);
  for (let i = 0; i < 1000; i++) assert.equal(codes[i], rng.nextUint32() < 2 ** 31 ? 3 : 2, `element ${i}`);

  const y = new Float32Array(n);
  Rng.fromSeed(1).fillNormal(y, 0, 40);
  const whole = quantizeInt(y, 0.5, { bits: 8, rounding: 'stochastic', seed: 3 });
  const chunked = new Int8Array(n);
  for (const [a, b] of [
    [0, 7],
    [7, 50000],
    [50000, n],
  ]) {
    quantizeInt(y.subarray(a, b), 0.5, {
      bits: 8,
      rounding: 'stochastic',
      seed: 3,
      offset: a,
      out: chunked.subarray(a, b),
    });
  }
  assert.deepEqual(chunked, whole);
  assert.notDeepEqual(whole, quantizeInt(y, 0.5, { bits: 8, rounding: 'stochastic', seed: 4 }));

  for (const v of [0.3, -2.71, 6.02]) {
    const draws = quantizeInt(new Float32Array(n).fill(v), 1, { bits: 4, rounding: 'stochastic', seed: 17 });
    const mean = draws.reduce((s, c) => s + c, 0) / n;
    const f = Math.abs(Math.fround(v)) % 1;
    const sigma = Math.sqrt((f * (1 - f)) / n);
    assert.ok(Math.abs(mean - Math.fround(v)) <= 5 * sigma, `${v}: mean ${mean}, 5σ ${5 * sigma}`);
    for (const c of draws) assert.ok(c === Math.floor(v) || c === Math.ceil(v), `${v} gave ${c}`);
  }
});

test('dequantizeInt multiplies by the float32 scale and rounds to float32', () => {
  const codes = Int8Array.from([-127, -1, 0, 5, 127]);
  const s = Math.fround(0.1);
  assert.deepEqual(
    Array.from(dequantizeInt(codes, 0.1)),
    Array.from(codes, (c) => Math.fround(c * s)),
  );
  const out = new Float32Array(5);
  assert.equal(dequantizeInt(codes, 0.1, out), out);
  const x = Float32Array.from([0.7, -1.3, 2]);
  const scale = 2 / 127;
  const back = dequantizeInt(quantizeInt(x, scale, { bits: 8 }), scale);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i] - x[i]) <= scale / 2 + 1e-7);
});

test('int quantize helpers reject bad inputs with typed errors', () => {
  const x = Float32Array.from([1]);
  assert.throws(() => quantizeInt([1] as unknown as Float32Array, 1, { bits: 8 }), DTypeError);
  for (const scale of [0, -1, NaN, Infinity, 1e-50]) {
    assert.throws(() => quantizeInt(x, scale, { bits: 8 }), UnsupportedOptionError, `scale ${scale}`);
  }
  assert.throws(() => quantizeInt(x, 1, { bits: 16 as 8 }), UnsupportedOptionError);
  assert.throws(() => quantizeInt(x, 1, { bits: 8, clampRange: 'wide' as 'full' }), UnsupportedOptionError);
  assert.throws(() => quantizeInt(x, 1, { bits: 8, rounding: 'up' as 'half-away' }), UnsupportedOptionError);
  assert.throws(() => quantizeInt(x, 1, { bits: 8, rounding: 'stochastic' }), UnsupportedOptionError);
  assert.throws(
    () => quantizeInt(x, 1, { bits: 8, out: new Uint8Array(1) as unknown as Int8Array }),
    DTypeError,
  );
  assert.throws(() => quantizeInt(x, 1, { bits: 8, out: new Int8Array(2) }), ShapeError);
  assert.throws(() => dequantizeInt(new Uint8Array(1) as unknown as Int8Array, 1), DTypeError);
  assert.throws(() => dequantizeInt(new Int8Array(1), 1, new Float32Array(2)), ShapeError);
});
