import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsupportedOptionError } from '../../src/core/errors.js';
import { convertLayout } from '../../src/core/layout.js';
import { Tensor, randn } from '../../src/core/tensor.js';
import { decode } from '../../src/numerics/decode.js';
import { microscaleGroupSize, quantizeMicroscaled } from '../../src/quant/microscaling.js';
import { MXFP4_GROUP_SIZE, mxfp4Scale, mxfp4ScaleExponent } from '../../src/quant/mxfp4.js';
import { NVFP4_GROUP_SIZE, nvfp4Scale } from '../../src/quant/nvfp4.js';
import type { MxScaleRule } from '../../src/quant/types.js';

/** E2M1 code of each magnitude 0, 0.5, 1, 1.5, 2, 3, 4, 6 is its index; the sign is bit 3. */
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const code = (v: number) => (v < 0 || Object.is(v, -0) ? 8 : 0) | E2M1.indexOf(Math.abs(v));

/** One token of D channels as a [1, 1, 1, D] tensor. */
const row = (values: number[]) => new Tensor(Float32Array.from(values), [1, 1, 1, values.length], 'float32');

const dequant = (codes: Uint8Array, scale: number) =>
  [...decode('float4_e2m1fn', codes)].map((c) => c * scale);

test('group sizes: NVFP4 16, MXFP4 32', () => {
  assert.equal(NVFP4_GROUP_SIZE, 16);
  assert.equal(MXFP4_GROUP_SIZE, 32);
  assert.equal(microscaleGroupSize('nvfp4'), 16);
  assert.equal(microscaleGroupSize('mxfp4'), 32);
});

test('NVFP4 scale: amax/6 rounded to E4M3 (nearest even, saturating at 448)', () => {
  assert.equal(nvfp4Scale(6), 1);
  assert.equal(nvfp4Scale(12), 2);
  assert.equal(nvfp4Scale(6.6), 1.125); // 1.1 → E4M3 neighbours 1 and 1.125
  assert.equal(nvfp4Scale(6.3), 1); // 1.05 → 1
  assert.equal(nvfp4Scale(2688), 448);
  assert.equal(nvfp4Scale(1e6), 448);
  assert.equal(nvfp4Scale(0), 0);
  assert.equal(nvfp4Scale(6 * 2 ** -10), 0); // half the smallest subnormal 2^-9: tie to even (0)
  assert.equal(nvfp4Scale(6 * 1.5 * 2 ** -10), 2 ** -9);
});

test('NVFP4 known answer: [6, 3, 1.5, 0.5, …] has amax 6, so s = 1 and the codes are the values', () => {
  const values = [6, 3, 1.5, 0.5, -6, -3, 2, 4, 1, 0, -0.5, -1, -1.5, -2, -4, 0];
  const { codes, scales } = quantizeMicroscaled(row(values), { format: 'nvfp4', axis: 'channels' });
  assert.equal(codes.dtype, 'float4_e2m1fn');
  assert.deepEqual(scales.shape, [1, 1, 1, 1]);
  assert.equal(scales.data[0], 1);
  assert.deepEqual([...codes.data], values.map(code));
  assert.deepEqual([...codes.data.slice(0, 4)], [0x7, 0x5, 0x3, 0x1]);
});

test('NVFP4 known answer with s = 2: x/s rounds to nearest even on the E2M1 grid', () => {
  // amax 12 → s = 2; 5/2 = 2.5 ties to 2, 7/2 = 3.5 ties to 4, 0.5/2 = 0.25 ties to 0, 1.4/2 = 0.7 → 0.5,
  // -2.6/2 = -1.3 → -1.5
  const values = [12, 5, 7, 0.5, 1.4, -2.6, ...new Array<number>(10).fill(0)];
  const { codes, scales } = quantizeMicroscaled(row(values), { format: 'nvfp4', axis: 'channels' });
  assert.equal(scales.data[0], 2);
  assert.deepEqual(dequant(codes.data as Uint8Array, 2).slice(0, 6), [12, 4, 8, 0, 1, -3]);
});

test('NVFP4 with an E4M3-rounded scale: elements are multiplied by fround(1/s̃) and saturate at ±6', () => {
  // amax 6.6 → s̃ = 1.125; 6.6 · (1/1.125) = 5.87 → 6; 3.4/1.125 = 3.02 → 3
  const { codes, scales } = quantizeMicroscaled(row([6.6, 3.4, -1.2, ...new Array<number>(13).fill(0)]), {
    format: 'nvfp4',
    axis: 'channels',
  });
  assert.equal(scales.data[0], 1.125);
  assert.deepEqual(dequant(codes.data as Uint8Array, 1).slice(0, 3), [6, 3, -1]);
  // amax beyond 2688 saturates the scale at 448 and the largest elements at ±6
  const big = quantizeMicroscaled(row([4000, -3000, 100, ...new Array<number>(13).fill(0)]), {
    format: 'nvfp4',
    axis: 'channels',
  });
  assert.equal(big.scales.data[0], 448);
  assert.deepEqual(dequant(big.codes.data as Uint8Array, 448).slice(0, 3), [2688, -2688, 0]);
});

test('NVFP4: all-zero and tiny groups get scale 0 and codes 0 (no division by zero, no NaN)', () => {
  const values = [...new Array<number>(16).fill(0), 1e-3, -2e-3, ...new Array<number>(14).fill(0)];
  const { codes, scales } = quantizeMicroscaled(row(values), { format: 'nvfp4', axis: 'channels' });
  assert.deepEqual([...scales.data], [0, 0]); // 2e-3/6 < 2^-10
  assert.ok(codes.data.every((c) => c === 0));
});

test('a partial last channel group takes its scale from its valid channels only', () => {
  // D = 20: group 0 = channels 0-15 (amax 60), group 1 = channels 16-19 (amax 3)
  const values = [60, ...new Array<number>(15).fill(1), 3, 1.5, 0, -3];
  const { codes, scales } = quantizeMicroscaled(row(values), { format: 'nvfp4', axis: 'channels' });
  assert.deepEqual(scales.shape, [1, 1, 1, 2]);
  assert.deepEqual([...scales.data], [10, 0.5]);
  assert.deepEqual(dequant(codes.data.slice(16) as Uint8Array, 0.5), [3, 1.5, 0, -3]);
});

test("axis 'tokens' (V): groups of 16 consecutive tokens per channel, scales [B, H, ⌈N/16⌉, D]", () => {
  // N = 20 tokens, D = 2: channel 0 holds the token index, channel 1 is 0.5 everywhere except token 17
  const n = 20;
  const data = new Float32Array(n * 2);
  for (let t = 0; t < n; t++) {
    data[t * 2] = t;
    data[t * 2 + 1] = t === 17 ? 12 : 0.5;
  }
  const { scales } = quantizeMicroscaled(new Tensor(data, [1, 1, n, 2], 'float32'), {
    format: 'nvfp4',
    axis: 'tokens',
  });
  assert.deepEqual(scales.shape, [1, 1, 2, 2]);
  // group 0: ch0 amax 15 → 2.5; ch1 amax 0.5 → 0.0833, whose E4M3 neighbours are 0.078125 and 0.0859375
  // group 1 (tokens 16-19): ch0 amax 19 → 3.1667 → 3.25; ch1 amax 12 → 2
  assert.deepEqual([...scales.data], [2.5, 0.0859375, 3.25, 2]);
});

test('MXFP4 truncation-free scale 2^⌈log2(amax/6)⌉ (TetraJet) and the OCP scale 2^(⌊log2 amax⌋−2)', () => {
  const cases: [number, number, number][] = [
    // amax, truncation-free, ocp
    [6, 1, 1],
    [6.01, 2, 1],
    [3, 0.5, 0.5],
    [4, 1, 1],
    [7, 2, 1],
    [12, 2, 2],
    [31, 8, 4], // the paper's example: OCP gives S = 4 and 31/4 = 7.75 clips to 6
    [0.75, 0.125, 0.125],
  ];
  for (const [amax, tf, ocp] of cases) {
    assert.equal(mxfp4Scale(amax), tf, `truncation-free ${amax}`);
    assert.equal(mxfp4Scale(amax, 'ocp'), ocp, `ocp ${amax}`);
  }
  // exact at powers of two (no log2 rounding), and clamped to E8M0's [2^-127, 2^127]
  for (let k = -100; k <= 100; k += 7) {
    assert.equal(mxfp4ScaleExponent(6 * 2 ** k), k);
    assert.equal(mxfp4ScaleExponent(2 ** k, 'ocp'), k - 2);
    assert.equal(mxfp4ScaleExponent(2 ** k * 1.999, 'ocp'), k - 2);
  }
  assert.equal(mxfp4ScaleExponent(1e-45), -127);
  assert.equal(mxfp4ScaleExponent(3e38), 126);
  // amax 0 uses TetraJet's 1e-8 stand-in: a finite scale
  assert.equal(mxfp4ScaleExponent(0), Math.ceil(Math.log2(1e-8 / 6)));
  assert.throws(() => mxfp4Scale(1, 'floor' as MxScaleRule), UnsupportedOptionError);
});

test('MXFP4 codes: truncation-free never clips; OCP clips 7.75 to 6', () => {
  const values = [31, 9, -4, ...new Array<number>(29).fill(0)];
  const tf = quantizeMicroscaled(row(values), { format: 'mxfp4', axis: 'channels' });
  assert.deepEqual(tf.scales.shape, [1, 1, 1, 1]);
  assert.equal(tf.scales.data[0], 8);
  assert.deepEqual(dequant(tf.codes.data as Uint8Array, 8).slice(0, 3), [32, 8, -4]); // 3.875 → 4, 1.125 → 1
  const ocp = quantizeMicroscaled(row(values), { format: 'mxfp4', axis: 'channels', scaleRule: 'ocp' });
  assert.equal(ocp.scales.data[0], 4);
  assert.deepEqual(dequant(ocp.codes.data as Uint8Array, 4).slice(0, 3), [24, 8, -4]);
  const zeros = quantizeMicroscaled(row(new Array<number>(32).fill(0)), {
    format: 'mxfp4',
    axis: 'channels',
  });
  assert.ok(zeros.codes.data.every((c) => c === 0));
  assert.ok(zeros.scales.data[0] > 0);
});

test('round trip: every dequantized element is within one scale unit (half the largest E2M1 gap)', () => {
  const x = randn([1, 2, 8, 64], { seed: 9 });
  for (const format of ['nvfp4', 'mxfp4'] as const) {
    const g = microscaleGroupSize(format);
    const { codes, scales } = quantizeMicroscaled(x, { format, axis: 'channels' });
    const values = decode('float4_e2m1fn', codes.data as Uint8Array);
    for (let i = 0; i < x.size; i++) {
      const s = scales.data[Math.floor(i / g)];
      // half of E2M1's largest gap (4 → 6) is 1; a rounded-down NVFP4 scale pushes x/s̃ to at most
      // 6·(1 + 2^-4) = 6.375, which saturates to 6 with an error of 0.375 < 1
      assert.ok(Math.abs(values[i] * s - x.data[i]) <= s, `${format} [${i}]`);
    }
  }
});

test('NHD gives the same codes and scales as HND; NaN poisons only its own group', () => {
  const x = randn([1, 3, 5, 32], { seed: 2 });
  const a = quantizeMicroscaled(x, { format: 'nvfp4', axis: 'tokens' });
  const b = quantizeMicroscaled(convertLayout(x, 'HND', 'NHD'), {
    format: 'nvfp4',
    axis: 'tokens',
    layout: 'NHD',
  });
  assert.deepEqual(b.scales.data, a.scales.data);
  assert.deepEqual(convertLayout(b.codes, 'NHD', 'HND').data, a.codes.data);
  const bad = row([NaN, ...new Array<number>(15).fill(1), 6, ...new Array<number>(15).fill(0)]);
  const r = quantizeMicroscaled(bad, { format: 'nvfp4', axis: 'channels' });
  assert.ok(Number.isNaN(r.scales.data[0]));
  assert.equal(r.scales.data[1], 1);
  assert.ok(r.codes.data.slice(0, 16).every((c) => c === 0));
});

test('bad options are typed errors', () => {
  const x = row(new Array<number>(16).fill(1));
  assert.throws(
    () => quantizeMicroscaled(x, { format: 'fp4' as 'nvfp4', axis: 'channels' }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => quantizeMicroscaled(x, { format: 'nvfp4', axis: 'rows' as 'tokens' }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => quantizeMicroscaled(x, { format: 'nvfp4', axis: 'channels', scaleRule: 'ocp' }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => quantizeMicroscaled(x, { format: 'mxfp4', axis: 'channels', scaleRule: 'nearest' as MxScaleRule }),
    UnsupportedOptionError,
  );
});
