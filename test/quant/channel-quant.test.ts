import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Tensor, randn, tensor } from '../../src/core/tensor.js';
import { decode } from '../../src/numerics/decode.js';
import {
  type ChannelFormat,
  defaultChannelScaleMax,
  quantizePerChannel,
} from '../../src/quant/channel-quant.js';

const f32 = Math.fround;

/** Dequantized values code · δ[b, h, c] of an HND result. */
function dequant(codes: Tensor, scales: Tensor): number[] {
  const [, , n, d] = codes.shape;
  const values =
    codes.dtype === 'int8'
      ? Float32Array.from(codes.data)
      : decode(codes.dtype as 'float8_e4m3fn', codes.data as Uint8Array);
  return [...values].map((v, i) => v * scales.data[Math.floor(i / (n * d)) * d + (i % d)]);
}

test('default scaleMax is the format max: 448 (E4M3), 57344 (E5M2), 127 (INT8)', () => {
  assert.equal(defaultChannelScaleMax('float8_e4m3fn'), 448);
  assert.equal(defaultChannelScaleMax('float8_e5m2'), 57344);
  assert.equal(defaultChannelScaleMax('int8'), 127);
});

test('δ_V[c] = max over tokens |V[:, c]| / scaleMax, per (batch, head, channel)', () => {
  // B=1, H=2, N=2, D=2
  const v = tensor([1, -8, -3, 2, 0.5, 0.25, -0.5, 4], [1, 2, 2, 2], 'float32');
  const { codes, scales } = quantizePerChannel(v, { format: 'float8_e4m3fn' });
  assert.deepEqual(scales.shape, [1, 2, 2]);
  assert.deepEqual(
    [...scales.data],
    [3, 8, 0.5, 4].map((a) => f32(a / 448)),
  );
  // each channel's largest element maps to ±448 (E4M3 code 0x7e / 0xfe)
  assert.equal(codes.data[2], 0xfe); // -3 in channel 0
  assert.equal(codes.data[1], 0xfe); // -8 in channel 1
  assert.equal(codes.data[7], 0x7e); // 4 in head 1 channel 1
});

test('codes = format(fround(v · fround(scaleMax/amax))), round to nearest even', () => {
  const v = tensor([3, 1, -2.6], [1, 1, 3, 1], 'float32');
  const { codes } = quantizePerChannel(v, { format: 'float8_e4m3fn' });
  const factor = f32(448 / 3);
  const scaled = [3, 1, -2.6].map((x) => f32(f32(x) * factor));
  // 149.33 → 144 (E4M3 step 16 in [128, 256)) and -388.27 → -384 (step 32 in [256, 448])
  assert.ok(Math.abs(scaled[1] - 149.33) < 0.01 && Math.abs(scaled[2] + 388.27) < 0.01);
  assert.deepEqual([...decode('float8_e4m3fn', codes.data as Uint8Array)], [448, 144, -384]);
});

test('FP8 round trip error bounds: E4M3 2^-4 relative (normal range), E5M2 2^-3', () => {
  const v = randn([1, 2, 64, 16], { seed: 5 });
  for (const [format, rel, subStep] of [
    ['float8_e4m3fn', 2 ** -4, 2 ** -9],
    ['float8_e5m2', 2 ** -3, 2 ** -16],
  ] as const) {
    const { codes, scales } = quantizePerChannel(v, { format });
    const back = dequant(codes, scales);
    for (let i = 0; i < v.size; i++) {
      const delta = scales.data[Math.floor(i / (64 * 16)) * 16 + (i % 16)];
      // relative half-ulp in the normal range, half a subnormal step below it (plus float32 slack)
      const bound = Math.max(rel * Math.abs(v.data[i]), (subStep / 2) * delta) * (1 + 1e-6);
      assert.ok(Math.abs(back[i] - v.data[i]) <= bound, `${format} [${i}] ${back[i]} vs ${v.data[i]}`);
    }
  }
});

test("scaleMax 2.25 (SA2++) vs 448: codes span ±2.25, so more of them fall in E4M3's subnormal range", () => {
  const v = randn([1, 1, 256, 8], { seed: 6 });
  const wide = quantizePerChannel(v, { format: 'float8_e4m3fn' });
  const narrow = quantizePerChannel(v, { format: 'float8_e4m3fn', scaleMax: 2.25 });
  const wideCodes = decode('float8_e4m3fn', wide.codes.data as Uint8Array);
  const narrowCodes = decode('float8_e4m3fn', narrow.codes.data as Uint8Array);
  assert.equal(Math.max(...wideCodes.map(Math.abs)), 448);
  assert.equal(Math.max(...narrowCodes.map(Math.abs)), 2.25);
  for (let c = 0; c < 8; c++) {
    let amax = 0;
    for (let t = 0; t < 256; t++) amax = Math.max(amax, Math.abs(v.data[t * 8 + c]));
    assert.equal(wide.scales.data[c], f32(amax / 448));
    assert.equal(narrow.scales.data[c], f32(amax / 2.25));
  }
  const err = (r: { codes: Tensor; scales: Tensor }) =>
    dequant(r.codes, r.scales).reduce((s, x, i) => s + Math.abs(x - v.data[i]), 0);
  assert.ok(err(narrow) > err(wide), `${err(narrow)} vs ${err(wide)}`);
  assert.ok(err(narrow) < 0.05 * [...v.data].reduce((s, x) => s + Math.abs(x), 0));
});

test('INT8 per-channel: δ = amax/127 and codes round half to even', () => {
  const v = tensor([127, 2.5, -2.5, 3.5, -1.5, 0.4], [1, 1, 6, 1], 'float32');
  const { codes, scales } = quantizePerChannel(v, { format: 'int8' });
  assert.equal(codes.dtype, 'int8');
  assert.equal(scales.data[0], 1);
  assert.deepEqual([...codes.data], [127, 2, -2, 4, -2, 0]);
});

test('all-zero channels give scale 0 and codes 0 (the reference gives NaN); tiny channels never NaN', () => {
  for (const format of ['float8_e4m3fn', 'float8_e5m2', 'int8'] as ChannelFormat[]) {
    const v = tensor([0, 1, 0, -2, 0, 0.5], [1, 1, 3, 2], 'float32');
    const { codes, scales } = quantizePerChannel(v, { format });
    assert.equal(scales.data[0], 0);
    assert.deepEqual([codes.data[0], codes.data[2], codes.data[4]], [0, 0, 0]);
    assert.ok(dequant(codes, scales).every(Number.isFinite));
  }
  // a subnormal channel: 448/amax overflows float32, the float64 fallback keeps the codes exact
  const tiny = new Tensor(Float32Array.from([1e-45, -1e-45, 0]), [1, 1, 3, 1], 'float32');
  const { codes } = quantizePerChannel(tiny, { format: 'float8_e4m3fn' });
  assert.deepEqual([...decode('float8_e4m3fn', codes.data as Uint8Array)], [448, -448, 0]);
});

test('a channel with NaN gets scale NaN and codes 0; the other channels are unaffected', () => {
  const v = tensor([NaN, 1, 2, -2], [1, 1, 2, 2], 'float32');
  const { codes, scales } = quantizePerChannel(v, { format: 'float8_e4m3fn' });
  assert.ok(Number.isNaN(scales.data[0]));
  assert.equal(scales.data[1], f32(2 / 448));
  assert.deepEqual([codes.data[0], codes.data[2]], [0, 0]);
  assert.equal(codes.data[3], 0xfe);
});

test('bad options are typed errors', () => {
  const v = randn([1, 1, 4, 4]);
  assert.throws(() => quantizePerChannel(v, { format: 'float16' as ChannelFormat }), UnsupportedOptionError);
  assert.throws(() => quantizePerChannel(v, { format: 'toString' as ChannelFormat }), UnsupportedOptionError);
  for (const scaleMax of [0, -1, NaN, 449, Infinity]) {
    assert.throws(() => quantizePerChannel(v, { format: 'float8_e4m3fn', scaleMax }), UnsupportedOptionError);
  }
  assert.throws(() => quantizePerChannel(v, { format: 'int8', scaleMax: 128 }), UnsupportedOptionError);
  assert.throws(() => quantizePerChannel(tensor([1], [1, 1, 1, 1], 'uint8'), { format: 'int8' }), DTypeError);
});
