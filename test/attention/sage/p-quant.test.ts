import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E4M3_P_OFFSET, pExponentOffset, quantizeP } from '../../../src/attention/sage/p-quant.js';

/** P̃ as the kernel forms it: exp2(S − m + offset), rounded to float32. */
const pTilde = (offset: number, ...logitsBelowMax: number[]) =>
  Float32Array.from(logitsBelowMax, (d) => 2 ** (offset - d));

test('static ranges: E4M3 uses the reference constant 8.807, the others log2 of their range', () => {
  assert.equal(E4M3_P_OFFSET, 8.807);
  assert.equal(pExponentOffset('float8_e4m3fn'), 8.807);
  assert.ok(Math.abs(2 ** pExponentOffset('float8_e5m2') - 57344) < 1e-9);
  assert.ok(Math.abs(2 ** pExponentOffset('int8') - 127) < 1e-12);
  assert.equal(pExponentOffset('fp16'), 0);
  assert.ok(Math.abs(2 ** pExponentOffset('nvfp4') - 2688) < 1e-9);
  assert.equal(pExponentOffset('nvfp4', 'two-level'), pExponentOffset('nvfp4'));
});

test("direct NVFP4 P: no level-1 offset, so P̃ ∈ [0, 1] and the group scales max/6 sit in E4M3's subnormals", () => {
  assert.equal(pExponentOffset('nvfp4', 'direct'), 0);
  // the same row, two-level (×2688) and direct: the row max and a group 2^-12 below it
  const row = [1, ...new Array(15).fill(0), 2 ** -12, 2 ** -13];
  const twoLevel = quantizeP(
    Float32Array.from(row, (p) => p * 2688),
    'nvfp4',
    'nearest-even',
  );
  const direct = quantizeP(Float32Array.from(row), 'nvfp4', 'nearest-even');
  // two-level: scales 448 and 2688·2^-12/6 = 0.109375, both normal E4M3 numbers: the small group survives
  assert.deepEqual(Array.from(twoLevel.groupScales as Float32Array), [448, 0.109375]);
  assert.deepEqual(Array.from(twoLevel.values.slice(16)), [0.65625, 0.328125]);
  // direct: 1/6 rounds to 0.171875 (the row max comes out 3% high) and 2^-12/6 < 2^-10 rounds to 0
  assert.deepEqual(Array.from(direct.groupScales as Float32Array), [0.171875, 0]);
  assert.equal(direct.values[0], 1.03125);
  assert.deepEqual(Array.from(direct.values.slice(16)), [0, 0]);
});

test('E4M3 P codes: the row max lands on 448 (code 0x7e) through the 8.807 offset', () => {
  const p = pTilde(E4M3_P_OFFSET, 0, 1, 2, 10, 17, 18);
  const { codes, values, groupScales } = quantizeP(p, 'float8_e4m3fn', 'nearest-even');
  assert.ok(Math.abs(p[0] - 447.89) < 0.01, 'exp2(8.807) ≈ 447.89, not exactly 448');
  assert.deepEqual(Array.from(codes), [0x7e, 0x76, 0x6e, 0x2e, 0x02, 0x01]);
  assert.deepEqual(Array.from(values), [448, 224, 112, 0.4375, 2 ** -8, 2 ** -9]);
  assert.equal(groupScales, null);
});

test('without the offset, E4M3 loses the small probabilities the offset keeps', () => {
  // P̃ = 2^-10 is below half of E4M3's smallest subnormal 2^-9 → 0 unscaled; 448·2^-10 survives
  const unscaled = quantizeP(Float32Array.of(1, 2 ** -10), 'float8_e4m3fn', 'nearest-even').values;
  const scaled = quantizeP(pTilde(E4M3_P_OFFSET, 0, 10), 'float8_e4m3fn', 'nearest-even').values;
  assert.deepEqual(Array.from(unscaled), [1, 0]);
  assert.deepEqual(Array.from(scaled), [448, 0.4375]);
});

test('E5M2 P saturates at 57344 and keeps two mantissa bits', () => {
  const { values } = quantizeP(Float32Array.of(57344, 60000, 1000, 3), 'float8_e5m2', 'nearest-even');
  assert.deepEqual(Array.from(values), [57344, 57344, 1024, 3]);
});

test('INT8 P: static 1/127 scale, both rounding modes at a tie', () => {
  const p = Float32Array.of(127, 63.5, 62.5, 0.5, 0.49, 0);
  assert.deepEqual(Array.from(quantizeP(p, 'int8', 'nearest-even').codes), [127, 64, 62, 0, 0, 0]);
  assert.deepEqual(Array.from(quantizeP(p, 'int8', 'half-away').codes), [127, 64, 63, 1, 0, 0]);
  assert.deepEqual(Array.from(quantizeP(Float32Array.of(127.00001), 'int8', 'nearest-even').codes), [127]);
});

test('fp16 P: P̃ ∈ [0, 1] cast as it is (SA1)', () => {
  const { values } = quantizeP(Float32Array.of(1, 1 / 3, 2 ** -25), 'fp16', 'nearest-even');
  assert.deepEqual(Array.from(values), [1, 0.333251953125, 0]);
});

test('NVFP4 two-level P: group scale max/6 in E4M3, codes from the unrounded scale', () => {
  // group 0: max 2688 → s = 448 (exact in E4M3), P̃/s = 6, 3, 1.25 → E2M1 6, 3, 1 (tie to even)
  // group 1: max 100 → s = 16.67, rounded to E4M3 16; 100/16.67 = 6 → code 6, value 6·16 = 96 (not 100)
  // group 2: all zero (masked keys) → scale 0, codes 0
  const p = new Float32Array(40);
  p.set([2688, 1344, 560], 0);
  p.set([100, 50, 8.4], 16);
  const { codes, groupScales, values } = quantizeP(p, 'nvfp4', 'nearest-even');
  assert.deepEqual(Array.from(groupScales as Float32Array), [448, 16, 0]);
  assert.deepEqual(Array.from(codes.slice(0, 3)), [0x7, 0x5, 0x2]);
  assert.deepEqual(Array.from(values.slice(0, 3)), [2688, 1344, 448]);
  assert.deepEqual(Array.from(values.slice(16, 19)), [96, 48, 8]);
  assert.ok(values.slice(32).every((x) => x === 0));
  assert.ok(codes.slice(3, 16).every((c) => c === 0));
});

test('NVFP4 P: a group whose max is below 6·2^-10 has a zero E4M3 scale and contributes nothing', () => {
  const { groupScales, values } = quantizeP(Float32Array.of(0.005, 0.004), 'nvfp4', 'nearest-even');
  assert.deepEqual(Array.from(groupScales as Float32Array), [0]);
  assert.deepEqual(Array.from(values), [0, 0]);
});
