// Stochastic rounding in encode (sparq semantics; ml_dtypes has none): only the two neighbouring codes,
// deterministic per (seed, element index), independent of chunking, the documented Philox bits, and
// unbiased to sampling accuracy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { UnsupportedOptionError } from '../../src/core/errors.js';
import { FLOAT_FORMATS, decode, encode, type FloatFormatName } from '../../src/numerics/index.js';

const FORMATS = Object.keys(FLOAT_FORMATS) as FloatFormatName[];

/** Sorted distinct finite values of a format (the zeros merged). */
function grid(format: FloatFormatName): number[] {
  const spec = FLOAT_FORMATS[format];
  const codes = new (spec.bits === 16 ? Uint16Array : Uint8Array)(2 ** spec.bits).map((_, i) => i);
  const values = Array.from(decode(format, codes)).filter(Number.isFinite);
  return [...new Set(values.map((v) => v + 0))].sort((a, b) => a - b);
}

/** The neighbours lo ≤ x ≤ hi on the grid (hi = lo when x is on it; hi = Infinity above max). */
function neighbours(values: number[], x: number): [number, number] {
  let a = 0;
  let b = values.length - 1;
  if (x >= values[b]) return [values[b], x === values[b] ? x : Infinity];
  while (b - a > 1) {
    const mid = (a + b) >> 1;
    if (values[mid] <= x) a = mid;
    else b = mid;
  }
  return values[a] === x ? [x, x] : [values[a], values[b]];
}

/** Inputs spread over a format's range (log-uniform magnitudes, both signs for signed formats). */
function inputsFor(format: FloatFormatName, n: number, seed: number): Float32Array {
  const spec = FLOAT_FORMATS[format];
  const rng = Rng.fromSeed(seed);
  const lo = Math.log2(spec.minPositive) - 2;
  const hi = Math.log2(spec.max);
  return Float32Array.from({ length: n }, () => {
    const magnitude = 2 ** (lo + (hi - lo) * rng.uniform());
    return spec.signed && rng.uniform() < 0.5 ? -magnitude : magnitude;
  });
}

for (const format of FORMATS) {
  test(`${format}: stochastic rounding picks one of the two neighbours and keeps representable values`, () => {
    const values = grid(format);
    const x = inputsFor(format, 20000, 1);
    const got = decode(format, encode(format, x, { rounding: 'stochastic', seed: 7, saturate: true }));
    const spec = FLOAT_FORMATS[format];
    for (let i = 0; i < x.length; i++) {
      const [lo, hi] = neighbours(values, x[i]);
      const g = got[i];
      // Below the smallest float8_e8m0fnu value there is no lower neighbour: it gives 2^-127.
      const allowed =
        spec.signed || x[i] >= spec.minPositive ? [lo, Math.min(hi, spec.max)] : [spec.minPositive];
      assert.ok(allowed.includes(g), `${format}: x = ${x[i]} gave ${g}, neighbours ${lo}, ${hi}`);
    }
    const exact = decode(format, encode(format, x));
    const onGrid = encode(format, exact, { rounding: 'stochastic', seed: 3 });
    assert.deepEqual(Array.from(onGrid), Array.from(encode(format, exact)), 'representable values stay put');
  });

  test(`${format}: stochastic codes depend only on (seed, element index)`, () => {
    const x = inputsFor(format, 5003, 2);
    const whole = encode(format, x, { rounding: 'stochastic', seed: 11n });
    assert.deepEqual(whole, encode(format, x, { rounding: 'stochastic', seed: 11 }), 'same seed, same codes');
    assert.notDeepEqual(
      whole,
      encode(format, x, { rounding: 'stochastic', seed: 12 }),
      'another seed differs',
    );
    const chunked = new (whole.constructor as typeof Uint8Array)(x.length);
    for (const [start, end] of [
      [0, 1],
      [1, 4],
      [4, 9],
      [9, 1000],
      [1000, 1001],
      [1001, 5003],
    ]) {
      encode(format, x.subarray(start, end), {
        rounding: 'stochastic',
        seed: 11,
        offset: start,
        out: chunked.subarray(start, end),
      });
    }
    assert.deepEqual(chunked, whole);
  });
}

test('element i rounds up iff the i-th uint32 of Rng.fromSeed(seed) is below frac·2^32', () => {
  const cases: [FloatFormatName, number, number, number, number][] = [
    // format, x, threshold = frac·2^32, lower code, upper code
    ['float4_e2m1fn', 1.25, 2 ** 31, 0x2, 0x3], // between 1 and 1.5
    ['float4_e2m1fn', -1.125, 2 ** 30, 0xa, 0xb], // between -1 and -1.5
    ['float8_e4m3fn', 2 ** -18, 2 ** 23, 0x0, 0x1], // 2^-9 of the smallest subnormal: 32 bits discarded
    ['float8_e8m0fnu', 2 ** -127 * 1.75, 3 * 2 ** 30, 0x0, 0x1], // float32 subnormal between 2^-127 and 2^-126
    ['bfloat16', 1 + 2 ** -9, 2 ** 30, 0x3f80, 0x3f81],
  ];
  for (const [format, x, threshold, lower, upper] of cases) {
    const n = 4099;
    const codes = encode(format, new Float32Array(n).fill(x), { rounding: 'stochastic', seed: 5, offset: 3 });
    const rng = Rng.fromSeed(5);
    for (let i = 0; i < 3; i++) rng.nextUint32();
    for (let i = 0; i < n; i++) {
      assert.equal(codes[i], rng.nextUint32() < threshold ? upper : lower, `${format} ${x} element ${i}`);
    }
  }
});

test('the mean of stochastic rounding converges to the input (5σ bounds, 200k draws each)', () => {
  const n = 200000;
  const cases: [FloatFormatName, number][] = [
    ['float4_e2m1fn', 1.3],
    ['float4_e2m1fn', -4.7],
    ['float4_e2m1fn', 0.1], // between 0 and the subnormal 0.5
    ['float8_e4m3fn', 0.0031], // e4m3 subnormal range
    ['float8_e4m3fn', 300.5],
    ['float8_e5m2', -1.1e-5], // e5m2 subnormal range
    ['float8_e8m0fnu', 0.3], // between 0.25 and 0.5
    ['float8_e8m0fnu', 9e-39], // between 2^-127 and 2^-126 (a float32 subnormal input)
    ['float16', 1 + 2 ** -12],
    ['float16', 1e-7], // float16 subnormal range
    ['bfloat16', Math.PI],
  ];
  for (const [format, value] of cases) {
    const x = Math.fround(value);
    const codes = encode(format, new Float32Array(n).fill(x), { rounding: 'stochastic', seed: 2024 });
    const decoded = decode(format, codes);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += decoded[i];
    const [lo, hi] = neighbours(grid(format), x);
    const p = (x - lo) / (hi - lo);
    const sigma = (hi - lo) * Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(sum / n - x) <= 5 * sigma, `${format} ${x}: mean ${sum / n}, 5σ = ${5 * sigma}`);
  }
});

test('stochastic rounding keeps the nearest-even rules for specials and overflow', () => {
  for (const format of FORMATS) {
    // Twice max always overflows (where that is still a float32).
    const far = Math.fround(2 * FLOAT_FORMATS[format].max);
    const specials = Float32Array.from([
      0,
      -0,
      Infinity,
      -Infinity,
      NaN,
      ...(far < Infinity ? [far, -far] : []),
    ]);
    for (const saturate of [false, true]) {
      assert.deepEqual(
        encode(format, specials, { rounding: 'stochastic', seed: 1, saturate }),
        encode(format, specials, { saturate }),
        `${format} saturate=${saturate}`,
      );
    }
  }
  // Just above max the upper neighbour is what overflow gives: NaN for e4m3fn, or max when saturating.
  const above = new Float32Array(1000).fill(456);
  const codes = new Set(encode('float8_e4m3fn', above, { rounding: 'stochastic', seed: 1 }));
  assert.deepEqual([...codes].sort(), [0x7e, 0x7f]);
  const saturated = new Set(
    encode('float8_e4m3fn', above, { rounding: 'stochastic', seed: 1, saturate: true }),
  );
  assert.deepEqual([...saturated], [0x7e]);
  // float8_e8m0fnu below 2^-127 has no lower neighbour.
  assert.deepEqual(
    Array.from(
      encode('float8_e8m0fnu', Float32Array.from([2 ** -130, 2 ** -149]), {
        rounding: 'stochastic',
        seed: 1,
      }),
    ),
    [0, 0],
  );
});

test('stochastic rounding without a valid seed or offset is an UnsupportedOptionError', () => {
  const x = Float32Array.from([1.3]);
  assert.throws(() => encode('float8_e4m3fn', x, { rounding: 'stochastic' }), UnsupportedOptionError);
  assert.throws(
    () => encode('float8_e4m3fn', x, { rounding: 'stochastic', seed: -1 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => encode('float8_e4m3fn', x, { rounding: 'stochastic', seed: 1.5 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => encode('float8_e4m3fn', x, { rounding: 'stochastic', seed: 1, offset: -1 }),
    UnsupportedOptionError,
  );
  // A seed is ignored by nearest-even, so one options object can serve both modes.
  assert.deepEqual(encode('float8_e4m3fn', x, { seed: 1 }), encode('float8_e4m3fn', x));
});
