import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor, randn, rand, shapeSize } from '../../src/core/tensor.js';
import { convertLayout, layoutDims, layoutShape } from '../../src/core/layout.js';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { decode } from '../../src/numerics/decode.js';

test('tensor() keeps storage-typed data as is and converts values otherwise', () => {
  const f = new Float32Array([1, 2, 3, 4]);
  const t = tensor(f, [2, 2], 'float32');
  assert.equal(t.data, f, 'no copy for matching storage');
  const h = tensor([0.1, 1, 65504, 70000], [4], 'float16');
  assert.ok(h.data instanceof Uint16Array);
  // 0.1 rounds to the nearest float16; 70000 overflows to +inf as ml_dtypes does
  assert.deepEqual(Array.from(decode('float16', h.data as Uint16Array)), [
    0.0999755859375,
    1,
    65504,
    Infinity,
  ]);
  const i4 = tensor([-8, 7, 0], [3], 'int4');
  assert.deepEqual(Array.from(i4.data), [-8, 7, 0]);
  assert.deepEqual(Array.from(tensor(f, [4], 'float8_e4m3fn').toFloat32()), [1, 2, 3, 4]);
});

test('tensor() rejects bad shapes, dtypes and out-of-range integers with typed errors', () => {
  assert.throws(() => tensor([1, 2, 3], [2, 2], 'float32'), ShapeError);
  assert.throws(() => tensor([1], [-1], 'float32'), ShapeError);
  assert.throws(() => tensor([1], [1], 'float128' as never), DTypeError);
  assert.throws(() => tensor([8], [1], 'int4'), DTypeError);
  assert.throws(() => tensor([0.5], [1], 'int8'), DTypeError);
  assert.throws(() => new Tensor(new Float64Array(1), [1], 'float32'), DTypeError);
  assert.throws(() => tensor([1, 2], [2], 'float32').reshape([3]), ShapeError);
});

test('randn and rand are deterministic per seed and differ between seeds', () => {
  const a = randn([3, 5], { seed: 9 });
  const b = randn([3, 5], { seed: 9 });
  const c = randn([3, 5], { seed: 10 });
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
  assert.equal(randn([2], { dtype: 'float64' }).dtype, 'float64');
  const u = rand([1000], { seed: 1, low: -2, high: 3 });
  assert.ok(Array.from(u.data).every((x) => x >= -2 && x < 3));
  assert.equal(shapeSize([2, 3, 0]), 0);
});

test('layouts: HND and NHD dims, shapes, and a conversion round trip', () => {
  const t = randn([2, 3, 5, 4], { seed: 2 }); // HND: B=2, H=3, N=5, D=4
  assert.deepEqual(layoutDims(t.shape, 'HND'), { batch: 2, heads: 3, tokens: 5, headDim: 4 });
  const n = convertLayout(t, 'HND', 'NHD');
  assert.deepEqual(n.shape, [2, 5, 3, 4]);
  assert.deepEqual(layoutDims(n.shape, 'NHD'), layoutDims(t.shape, 'HND'));
  // element (b=1, h=2, n=4, d=3) lands at [b, n, h, d]
  const hnd = ((1 * 3 + 2) * 5 + 4) * 4 + 3;
  const nhd = ((1 * 5 + 4) * 3 + 2) * 4 + 3;
  assert.equal(n.data[nhd], t.data[hnd]);
  assert.deepEqual(convertLayout(n, 'NHD', 'HND').data, t.data);
  assert.deepEqual(layoutShape({ batch: 1, heads: 2, tokens: 3, headDim: 4 }, 'NHD'), [1, 3, 2, 4]);
  assert.throws(() => layoutDims([1, 2, 3], 'HND'), ShapeError);
  assert.throws(() => layoutDims([1, 2, 3, 4], 'BHND' as never), UnsupportedOptionError);
});
