import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { convertLayout } from '../../../src/core/layout.js';
import { Tensor, randn, tensor } from '../../../src/core/tensor.js';
import { decode } from '../../../src/numerics/decode.js';
import { encode } from '../../../src/numerics/encode.js';
import { quantizeV } from '../../../src/attention/sage/quantize-v.js';
import type { PVFormat, QuantizeVOptions, QuantizedV } from '../../../src/quant/types.js';

const f32 = Math.fround;

/** code × scale (+ vMean) of an HND result, per element. */
function reconstruct(r: QuantizedV): Float64Array {
  const [, , n, d] = r.codes.shape;
  const codes = r.codes.dtype === 'int8' ? Float32Array.from(r.codes.data) : r.codes.toFloat32();
  const out = new Float64Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const bh = Math.floor(i / (n * d));
    const t = Math.floor(i / d) % n;
    const c = i % d;
    const s =
      r.format === 'nvfp4'
        ? r.scales.data[(bh * Math.ceil(n / 16) + Math.floor(t / 16)) * d + c]
        : r.scales.data[bh * d + c];
    out[i] = codes[i] * s + r.vMean.data[bh * d + c];
  }
  return out;
}

test('default: per-channel E4M3 with scaleMax 448, scales [B, Hkv, D] = amax/448', () => {
  const v = randn([2, 3, 40, 16], { seed: 1 });
  const r = quantizeV(v);
  assert.equal(r.format, 'float8_e4m3fn');
  assert.equal(r.scaleMax, 448);
  assert.equal(r.codes.dtype, 'float8_e4m3fn');
  assert.deepEqual(r.codes.shape, v.shape);
  assert.deepEqual(r.scales.shape, [2, 3, 16]);
  assert.ok(r.vMean.data.every((x) => x === 0));
  for (const [b, h, c] of [
    [0, 0, 0],
    [1, 2, 15],
  ]) {
    let amax = 0;
    for (let t = 0; t < 40; t++) amax = Math.max(amax, Math.abs(v.data[((b * 3 + h) * 40 + t) * 16 + c]));
    assert.equal(r.scales.data[(b * 3 + h) * 16 + c], f32(amax / 448));
  }
  const back = reconstruct(r);
  for (let i = 0; i < v.size; i++) {
    // E4M3: half an ulp (2^-4 relative) in the normal range, half the subnormal step 2^-9 below it
    const delta = r.scales.data[Math.floor(i / (40 * 16)) * 16 + (i % 16)];
    const bound = Math.max(2 ** -4 * Math.abs(v.data[i]), 2 ** -10 * delta) * (1 + 1e-6);
    assert.ok(Math.abs(back[i] - v.data[i]) <= bound, `[${i}]`);
  }
});

test('E5M2 (scaleMax 57344), INT8 (127) and SA2++ E4M3 with scaleMax 2.25', () => {
  const v = randn([1, 1, 64, 8], { seed: 2 });
  const e5 = quantizeV(v, { format: 'float8_e5m2' });
  assert.equal(e5.scaleMax, 57344);
  assert.equal(Math.max(...e5.codes.toFloat32().map(Math.abs)), 57344);
  const i8 = quantizeV(v, { format: 'int8' });
  assert.equal(i8.scaleMax, 127);
  assert.equal(i8.codes.dtype, 'int8');
  assert.equal(Math.max(...Int8Array.from(i8.codes.data).map(Math.abs)), 127);
  const pp = quantizeV(v, { scaleMax: 2.25 });
  assert.equal(pp.scaleMax, 2.25);
  assert.equal(Math.max(...pp.codes.toFloat32().map(Math.abs)), 2.25);
  // 64 tokens · 448 · 2.25 = 64512 stays below fp16's 65504 (sageattention.md §5)
  assert.ok(64 * 448 * pp.scaleMax < 65504);
});

test("'fp16': float16 codes saturating at ±65504, unit scales", () => {
  const v = tensor([1.5, -2, 65504, 70000, 0.1, -1e6], [1, 1, 3, 2], 'float32');
  const r = quantizeV(v, { format: 'fp16' });
  assert.equal(r.codes.dtype, 'float16');
  assert.equal(r.scaleMax, 1);
  assert.deepEqual([...r.scales.data], [1, 1]);
  assert.deepEqual(
    [...r.codes.toFloat32()],
    [1.5, -2, 65504, 65504, decode('float16', encode('float16', Float32Array.of(0.1)))[0], -65504],
  );
});

test("'nvfp4': groups of 16 tokens per channel with E4M3 scales [B, Hkv, ⌈Nk/16⌉, D]", () => {
  // channel 0 of tokens 0-15 is [6, 3, 1.5, 0.5, 0, …] (s = 1); tokens 16-19 form a partial group
  const n = 20;
  const data = new Float32Array(n * 2);
  [6, 3, 1.5, 0.5].forEach((x, t) => (data[t * 2] = x));
  for (let t = 16; t < n; t++) data[t * 2] = 12;
  for (let t = 0; t < n; t++) data[t * 2 + 1] = 0;
  const r = quantizeV(new Tensor(data, [1, 1, n, 2], 'float32'), { format: 'nvfp4' });
  assert.equal(r.codes.dtype, 'float4_e2m1fn');
  assert.equal(r.scaleMax, 6);
  assert.deepEqual(r.scales.shape, [1, 1, 2, 2]);
  assert.deepEqual([...r.scales.data], [1, 0, 2, 0]);
  assert.deepEqual(
    [0, 2, 4, 6].map((i) => r.codes.data[i]),
    [0x7, 0x5, 0x3, 0x1],
  );
  assert.deepEqual([...reconstruct(r)], [...data]);
});

test('smoothV: V − token mean is quantized, vMean is returned, and code·δ + v̄ reconstructs V', () => {
  const v = randn([1, 2, 32, 8], { seed: 3 });
  for (let i = 0; i < v.size; i += 8) v.data[i] += 9; // CogVideoX-like channel bias (SA2 §3.4)
  const plain = quantizeV(v);
  const smooth = quantizeV(v, { smoothV: true });
  let mean = 0;
  for (let t = 0; t < 32; t++) mean += v.data[t * 8];
  assert.ok(Math.abs(smooth.vMean.data[0] - mean / 32) < 1e-5);
  const err = (r: QuantizedV) => reconstruct(r).reduce((s, x, i) => s + Math.abs(x - v.data[i]), 0);
  assert.ok(err(smooth) < err(plain), `${err(smooth)} vs ${err(plain)}`);
});

test('all-zero channels: scale 0 and codes 0 for every format, never NaN', () => {
  const v = tensor([0, 1, 0, -2, 0, 0.5], [1, 1, 3, 2], 'float32');
  for (const format of ['fp16', 'float8_e4m3fn', 'float8_e5m2', 'int8', 'nvfp4'] as PVFormat[]) {
    const r = quantizeV(v, { format });
    assert.ok(reconstruct(r).every(Number.isFinite), format);
    assert.deepEqual(
      [0, 2, 4].map((i) => r.codes.data[i]),
      [0, 0, 0],
      format,
    );
    if (format !== 'fp16') assert.equal(r.scales.data[0], 0, format);
  }
  // smoothV of a constant channel is all-zero too
  const r = quantizeV(tensor([3, 3, 3], [1, 1, 3, 1], 'float32'), { smoothV: true });
  assert.deepEqual([...r.scales.data], [0]);
  assert.deepEqual([...reconstruct(r)], [3, 3, 3]);
});

test('NHD layout gives the NHD codes of the HND result', () => {
  const v = randn([2, 3, 20, 16], { seed: 4 });
  for (const format of ['float8_e4m3fn', 'nvfp4'] as PVFormat[]) {
    const a = quantizeV(v, { format, smoothV: true });
    const b = quantizeV(convertLayout(v, 'HND', 'NHD'), { format, smoothV: true, layout: 'NHD' });
    assert.deepEqual(convertLayout(b.codes, 'NHD', 'HND').data, a.codes.data);
    assert.deepEqual(b.scales.data, a.scales.data);
    assert.deepEqual(b.vMean.data, a.vMean.data);
  }
});

test('bad input is a typed error', () => {
  const v = randn([1, 2, 8, 16]);
  const option = (o: unknown) =>
    assert.throws(() => quantizeV(v, o as QuantizeVOptions), UnsupportedOptionError, JSON.stringify(o));
  option(null);
  option({ fromat: 'int8' });
  option({ format: 'fp8' });
  option({ format: 'mxfp4' });
  option({ layout: 'HN' });
  option({ smoothV: 'no' });
  option({ format: 'fp16', scaleMax: 448 });
  option({ format: 'nvfp4', scaleMax: 6 });
  for (const scaleMax of [0, -2, NaN, 449, '448']) option({ scaleMax });
  option({ format: 'int8', scaleMax: 200 });
  assert.throws(() => quantizeV(v.reshape([2, 8, 16])), ShapeError);
  assert.throws(() => quantizeV(tensor([1], [1, 1, 1, 1], 'int32')), DTypeError);
});
