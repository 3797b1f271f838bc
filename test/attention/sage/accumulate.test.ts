import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/core/rng.js';
import { decode } from '../../../src/numerics/decode.js';
import { encode } from '../../../src/numerics/encode.js';
import {
  type PVAccum,
  accumulateBlock,
  accumulationPlan,
  mergeBlock,
  mmaStep,
  rescaleAccumulator,
  roundFp16,
  truncateFp22,
} from '../../../src/attention/sage/accumulate.js';

test('roundFp16 equals the float16 cast on float32 inputs (normals, subnormals, ties, overflow)', () => {
  const rng = Rng.fromSeed(7);
  const values = new Float32Array(20000);
  rng.fillNormal(values);
  for (let i = 0; i < values.length; i++) values[i] *= 2 ** ((i % 60) - 30);
  // ties between neighbouring halves: 1 + 2^-11 (to even: 1), 1 + 3·2^-11 (to even: 1 + 2^-9)
  values.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 65504, 65519, 65520, -65520, 0, -0], 0);
  const expected = decode('float16', encode('float16', values));
  for (let i = 0; i < values.length; i++) {
    assert.ok(
      Object.is(roundFp16(values[i]), expected[i]),
      `${values[i]}: ${roundFp16(values[i])} vs ${expected[i]}`,
    );
  }
});

test('roundFp16 overflows to ±inf from 65520 on, as IEEE half does (no saturation)', () => {
  assert.equal(roundFp16(65519.99), 65504);
  assert.equal(roundFp16(65520), Infinity);
  assert.equal(roundFp16(-1e6), -Infinity);
  assert.equal(roundFp16(Infinity), Infinity);
  assert.ok(Number.isNaN(roundFp16(NaN)));
});

test('truncateFp22 keeps 13 mantissa bits and truncates toward zero', () => {
  assert.equal(truncateFp22(1 + 2 ** -13), 1 + 2 ** -13);
  assert.equal(truncateFp22(1 + 2 ** -14), 1);
  assert.equal(truncateFp22(1 + 2 ** -13 - 2 ** -40), 1, 'truncation, not rounding');
  assert.equal(truncateFp22(-(3 - 2 ** -20)), -(3 - 2 ** -12), 'toward zero for negatives');
  assert.equal(truncateFp22(212856), 212848, 'ulp 16 in [2^17, 2^18)');
  assert.equal(truncateFp22(1e39), Infinity, 'beyond the fp32 range');
  assert.ok(Object.is(truncateFp22(-0), -0));
});

test('accumulation plans: which level holds which format', () => {
  const plans = Object.fromEntries(
    (['fp32', 'fp16', 'fp32+fp16', 'fp22', 'fp32+fp22'] as PVAccum[]).map((m) => [m, accumulationPlan(m)]),
  );
  assert.deepEqual(plans, {
    fp32: { buffer: null, running: 'fp32' },
    fp16: { buffer: null, running: 'fp16' },
    'fp32+fp16': { buffer: 'fp16', running: 'fp32' },
    fp22: { buffer: null, running: 'fp22' },
    'fp32+fp22': { buffer: 'fp22', running: 'fp32' },
  });
  assert.deepEqual(
    ['fp16', 'float8_e4m3fn', 'float8_e5m2', 'int8', 'nvfp4'].map((f) => mmaStep(f as never)),
    [16, 32, 32, 32, 64],
  );
});

/** A block of `keys` keys with P̂ = 448 everywhere and the given V codes in one channel. */
function block(vCodes: number[]): { p: Float32Array; v: Float32Array } {
  return { p: new Float32Array(vCodes.length).fill(448), v: Float32Array.from(vCodes) };
}

/** 448·448 = 200704 on key 0 and 448·0.875 = 392 elsewhere: an odd multiple of 8 per step at most. */
const first = block([448, ...new Array<number>(63).fill(0.875)]);
const second = block([0, ...new Array<number>(63).fill(0.875)]);

function run(mode: PVAccum): number {
  const o = new Float64Array(1);
  const plan = accumulationPlan(mode);
  accumulateBlock(o, 0, first.p, first.v, 0, 1, 32, plan);
  accumulateBlock(o, 1, second.p, second.v, 0, 1, 32, plan);
  return o[0];
}

test('FP22 truncation: direct FP22 < two-level FP22 < fp32 on a sum where it drops low bits', () => {
  // exact: 200704 + 126·392 = 250096. Step 1 = 212856 truncates to 212848 (ulp 16) in every FP22
  // mode; block 2's first step (31·392 = 12152) truncates again when added straight into O ≈ 225k,
  // but not in a fresh buffer, whose sum 24696 is exact and is added to O in fp32 (SA2 §3.4).
  assert.equal(run('fp32'), 250096);
  assert.equal(run('fp32+fp22'), 250088);
  assert.equal(run('fp22'), 250080);
});

test('fp16 accumulation without range limits overflows to ±inf; SA2++ limits keep a block finite', () => {
  // 32 products 448·448 per step: far past 65504
  const big = block(new Array<number>(64).fill(448));
  for (const mode of ['fp16', 'fp32+fp16'] as const) {
    const o = new Float64Array(1);
    accumulateBlock(o, 0, big.p, big.v, 0, 1, 32, accumulationPlan(mode));
    assert.equal(o[0], Infinity, mode);
  }
  // P_r·V_r = 448·2.25 = 1008: two steps of 32256 give 64512 < 65504, exact in fp16 (SA2++ §3.2)
  const limited = block(new Array<number>(64).fill(2.25));
  const o = new Float64Array(1);
  accumulateBlock(o, 0, limited.p, limited.v, 0, 1, 32, accumulationPlan('fp32+fp16'));
  assert.equal(o[0], 64512);
});

test('overflow never turns into NaN: sticky ±inf across blocks, α = 0 drops the old O', () => {
  const plan = accumulationPlan('fp32+fp16');
  const o = new Float64Array(1);
  const up = block(new Array<number>(32).fill(448));
  const down = block(new Array<number>(32).fill(-448));
  accumulateBlock(o, 0, up.p, up.v, 0, 1, 32, plan);
  assert.equal(o[0], Infinity);
  accumulateBlock(o, 0.5, down.p, down.v, 0, 1, 32, plan);
  assert.equal(o[0], Infinity, 'IEEE would give inf + -inf = NaN; the first overflow stays');
  assert.equal(mergeBlock(-Infinity, 1, Infinity), -Infinity);
  assert.equal(mergeBlock(Infinity, 0, 5), 5, 'weight exp2(-inf) = 0: the old O is gone');
  assert.equal(rescaleAccumulator(Infinity, 0, 'fp32'), 0);
  assert.equal(rescaleAccumulator(-Infinity, 2 ** -26, 'fp16'), 0, 'α rounds to 0 in half');
  assert.equal(rescaleAccumulator(Infinity, 0.5, 'fp16'), Infinity);
  assert.equal(
    rescaleAccumulator(3, 1 / 3, 'fp16'),
    roundFp16(roundFp16(1 / 3) * 3),
    'α is a half in fp16 mode',
  );
  assert.ok(Number.isNaN(mergeBlock(NaN, 1, 1)), 'NaN from the input still propagates');
});

test('the MMA step decides where fp16 rounds: per step, not per product', () => {
  // 2048 + 16 × 0.5: per-product rounding in fp16 would lose every 0.5 (ulp 2 at 2048); one rounding
  // per 16-key step keeps the 8
  const p = new Float32Array(17).fill(1);
  const v = Float32Array.from([2048, ...new Array<number>(16).fill(0.5)]);
  const o = new Float64Array(1);
  accumulateBlock(o, 0, p, v, 0, 1, 16, accumulationPlan('fp16'));
  assert.equal(o[0], 2048 + 8, 'step 1: 2048 + 15·0.5 = 2055.5 → 2056; step 2: + 0.5 → 2056.5 → 2056');
});
