import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { convertLayout } from '../../src/core/layout.js';
import { Tensor, randn, tensor } from '../../src/core/tensor.js';
import { QK_SCALE_EPSILON, intGroupScale, quantizeIntGroups } from '../../src/quant/int-group-quant.js';
import { DEFAULT_QK_TILING } from '../../src/quant/qk-scale-groups.js';

const f32 = Math.fround;
const EPS = f32(1e-7);

/** [1, 1, n, d] tensor whose token t has magnitude (t + 1) in channel 0 (alternating sign) and 0 elsewhere. */
function rampTokens(n: number, d = 4): Tensor {
  const data = new Float32Array(n * d);
  for (let t = 0; t < n; t++) data[t * d] = (t % 2 === 0 ? 1 : -1) * (t + 1);
  return new Tensor(data, [1, 1, n, d], 'float32');
}

test('scale formulas: per-thread adds 1e-7 to amax/127; per-block/warp/token floor amax at 1e-7', () => {
  assert.equal(EPS, f32(1e-7));
  assert.equal(intGroupScale(127, 8, 'per-thread'), f32(1 + EPS));
  assert.equal(intGroupScale(127, 8, 'per-block'), 1);
  assert.equal(intGroupScale(127, 8, 'per-warp'), 1);
  assert.equal(intGroupScale(127, 8, 'per-token'), 1);
  assert.equal(intGroupScale(1, 8, 'per-block'), f32(1 / 127));
  assert.equal(intGroupScale(14, 4, 'per-block'), 2);
  assert.equal(intGroupScale(14, 4, 'per-thread'), f32(2 + EPS));
  // all-zero groups: small positive scales, never 0/0
  assert.equal(intGroupScale(0, 8, 'per-thread'), EPS);
  assert.equal(intGroupScale(0, 8, 'per-block'), f32(EPS / 127));
  assert.equal(intGroupScale(0, 4, 'per-warp'), f32(EPS / 7));
  assert.equal(intGroupScale(5e-8, 8, 'per-block'), f32(EPS / 127));
  assert.equal(QK_SCALE_EPSILON, EPS);
});

test('per-thread Q groups: each scale is the max of exactly tokens t, t+8, t+16, t+24 of its warp', () => {
  const { codes, scales } = quantizeIntGroups(rampTokens(64), {
    role: 'q',
    bits: 8,
    granularity: 'per-thread',
  });
  assert.deepEqual(scales.shape, [1, 1, 1 * 4 * 8]);
  for (let w = 0; w < 2; w++) {
    for (let t = 0; t < 8; t++) {
      // largest member is token 32w + 24 + t, magnitude 32w + 25 + t
      assert.equal(scales.data[w * 8 + t], f32(f32((32 * w + 25 + t) / 127) + EPS), `warp ${w} t ${t}`);
    }
  }
  // warps 2 and 3 hold no token (N = 64 < blockQ): scale is the bare epsilon
  for (let g = 16; g < 32; g++) assert.equal(scales.data[g], EPS);
  // the group's largest token codes to ±127, the others proportionally
  assert.equal(codes.data[24 * 4], 127);
  assert.equal(codes.data[0], Math.round(1 / (25 / 127 + 1e-7)));
});

test('per-thread K groups: each scale is the max of the tokens with index mod 8 in {2t, 2t+1}', () => {
  const { scales } = quantizeIntGroups(rampTokens(128), { role: 'k', bits: 8, granularity: 'per-thread' });
  assert.deepEqual(scales.shape, [1, 1, 2 * 1 * 4]);
  for (let w = 0; w < 2; w++) {
    for (let t = 0; t < 4; t++) {
      // largest member: token 64w + 56 + 2t + 1, magnitude 64w + 58 + 2t
      assert.equal(scales.data[w * 4 + t], f32(f32((64 * w + 58 + 2 * t) / 127) + EPS), `warp ${w} t ${t}`);
    }
  }
});

test('per-warp, per-block and per-token groups, with a partial last block from its valid tokens only', () => {
  const x = rampTokens(70);
  // one Q tile of 4 warps: tokens 0-31, 32-63, 64-69 (partial), and an empty warp
  const warp = quantizeIntGroups(x, { role: 'q', bits: 8, granularity: 'per-warp' });
  assert.deepEqual(
    [...warp.scales.data],
    [32, 64, 70, 0].map((m) => f32(Math.max(m, EPS) / 127)),
  );
  const blockK = quantizeIntGroups(x, { role: 'k', bits: 8, granularity: 'per-block' });
  assert.deepEqual([...blockK.scales.data], [f32(64 / 127), f32(70 / 127)]);
  const token = quantizeIntGroups(x, { role: 'k', bits: 4, granularity: 'per-token' });
  assert.deepEqual(
    [...token.scales.data],
    Array.from({ length: 70 }, (_, t) => f32((t + 1) / 7)),
  );
  // every token is its own group's max: codes ±7 in channel 0
  for (let t = 0; t < 70; t++) assert.equal(Math.abs(token.codes.data[t * 4]), 7);
  assert.equal(token.codes.dtype, 'int4');
});

test("rounding: a value at exactly .5 after scaling goes to even ('nearest-even') or away ('half-away')", () => {
  // per-block, amax 127 → δ = 1 exactly, so codes are round(x)
  const x = tensor([127, 2.5, -2.5, 3.5, -3.5, 0.5, -0.5, 1.5], [1, 1, 1, 8], 'float32');
  const even = quantizeIntGroups(x, { role: 'k', bits: 8, granularity: 'per-block' });
  const away = quantizeIntGroups(x, { role: 'k', bits: 8, granularity: 'per-block', rounding: 'half-away' });
  assert.equal(even.scales.data[0], 1);
  assert.deepEqual([...even.codes.data], [127, 2, -2, 4, -4, 0, 0, 2]);
  assert.deepEqual([...away.codes.data], [127, 3, -3, 4, -4, 1, -1, 2]);
});

test('prescale multiplies before the max: δ carries the factor (σ·log2e for per-block Q)', () => {
  const x = randn([1, 2, 40, 8], { seed: 3 });
  const p = f32(0.25 * 1.44269504);
  const folded = quantizeIntGroups(x, { role: 'q', bits: 8, granularity: 'per-block', prescale: p });
  let amax = 0;
  for (let i = 0; i < 320; i++) amax = Math.max(amax, Math.abs(f32(x.data[i] * p)));
  assert.equal(folded.scales.data[0], f32(amax / 127));
  const plain = quantizeIntGroups(x, { role: 'q', bits: 8, granularity: 'per-block' });
  assert.notEqual(plain.scales.data[0], folded.scales.data[0]);
});

test('all-zero groups give codes 0 and a finite scale; NaN only poisons its own group', () => {
  const zeros = new Tensor(new Float32Array(2 * 40 * 8), [1, 2, 40, 8], 'float32');
  for (const granularity of ['per-block', 'per-warp', 'per-thread', 'per-token'] as const) {
    for (const role of ['q', 'k'] as const) {
      const r = quantizeIntGroups(zeros, { role, bits: 8, granularity });
      assert.ok(r.codes.data.every((c) => c === 0));
      assert.ok(
        r.scales.data.every((s) => s > 0 && Number.isFinite(s)),
        `${role} ${granularity}`,
      );
    }
  }
  const x = rampTokens(16);
  x.data[5 * 4 + 1] = NaN; // token 5 → per-thread Q group 5
  const r = quantizeIntGroups(x, { role: 'q', bits: 8, granularity: 'per-thread' });
  assert.ok(Number.isNaN(r.scales.data[5]));
  assert.equal(r.codes.data[5 * 4], 0);
  assert.equal(r.codes.data[13 * 4], 0);
  assert.ok(r.scales.data.every((s, g) => g === 5 || Number.isFinite(s)));
  assert.equal(r.codes.data[12 * 4], 127); // group 4 = tokens 4 and 12, unaffected
  x.data[5 * 4 + 1] = -Infinity; // ±inf too: an infinite scale would dequantize 0·inf = NaN elsewhere
  const inf = quantizeIntGroups(x, { role: 'q', bits: 8, granularity: 'per-thread' });
  assert.ok(Number.isNaN(inf.scales.data[5]));
  assert.equal(inf.codes.data[13 * 4], 0);
});

test('NHD layout gives the same codes (in NHD) and scales as HND', () => {
  const x = randn([2, 3, 50, 16], { seed: 4 });
  const xn = convertLayout(x, 'HND', 'NHD');
  for (const granularity of ['per-block', 'per-thread'] as const) {
    const a = quantizeIntGroups(x, { role: 'k', bits: 8, granularity });
    const b = quantizeIntGroups(xn, { role: 'k', bits: 8, granularity, layout: 'NHD' });
    assert.deepEqual(b.scales.data, a.scales.data);
    assert.deepEqual(convertLayout(b.codes, 'NHD', 'HND').data, a.codes.data);
  }
});

test('bad input is a typed error', () => {
  const x = randn([1, 1, 8, 8]);
  const base = { role: 'q', bits: 8, granularity: 'per-block' } as const;
  assert.throws(() => quantizeIntGroups(x, { ...base, role: 'v' as 'q' }), UnsupportedOptionError);
  assert.throws(() => quantizeIntGroups(x, { ...base, bits: 16 as 8 }), UnsupportedOptionError);
  assert.throws(() => quantizeIntGroups(x, { ...base, prescale: 0 }), UnsupportedOptionError);
  assert.throws(
    () => quantizeIntGroups(x, { ...base, rounding: 'stochastic' as 'nearest-even' }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => quantizeIntGroups(x, { ...base, tiling: { ...DEFAULT_QK_TILING, warpQ: 20 } }),
    UnsupportedOptionError,
  );
  assert.throws(() => quantizeIntGroups(x.reshape([8, 8]), base), ShapeError);
  assert.throws(() => quantizeIntGroups(tensor([1], [1, 1, 1, 1], 'int8'), base), DTypeError);
});
