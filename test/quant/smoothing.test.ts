import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { convertLayout } from '../../src/core/layout.js';
import { Tensor, randn, tensor } from '../../src/core/tensor.js';
import { subtractBlockMeans, subtractTokenMean } from '../../src/quant/smoothing.js';

test('token mean per (batch, head) over all tokens, returned as [B, H, D]', () => {
  // B=1, H=2, N=3, D=2: head 0 tokens (1,10) (2,20) (3,30); head 1 tokens (0,-1) (0,-1) (6,2)
  const x = tensor([1, 10, 2, 20, 3, 30, 0, -1, 0, -1, 6, 2], [1, 2, 3, 2], 'float32');
  const { smoothed, mean } = subtractTokenMean(x);
  assert.deepEqual(mean.shape, [1, 2, 2]);
  assert.deepEqual([...mean.data], [2, 20, 2, 0]);
  assert.deepEqual([...smoothed.data], [-1, -10, 0, 0, 1, 10, -2, -1, -2, -1, 4, 2]);
  assert.equal(smoothed.dtype, 'float32');
  // the input is untouched
  assert.equal(x.data[0], 1);
});

test('NHD layout averages over the token axis, not the head axis', () => {
  const x = randn([2, 3, 5, 4], { seed: 1 });
  const hnd = subtractTokenMean(x);
  const nhd = subtractTokenMean(convertLayout(x, 'HND', 'NHD'), { layout: 'NHD' });
  assert.deepEqual(nhd.mean.data, hnd.mean.data);
  assert.deepEqual(convertLayout(nhd.smoothed, 'NHD', 'HND').data, hnd.smoothed.data);
});

test('block means: a partial last block averages its valid tokens only', () => {
  // one head, N = 5, D = 1, blocks of 2: [0, 2] [4, 6] [9]
  const x = tensor([0, 2, 4, 6, 9], [1, 1, 5, 1], 'float32');
  const { smoothed, mean } = subtractBlockMeans(x, 2);
  assert.deepEqual(mean.shape, [1, 1, 3, 1]);
  assert.deepEqual([...mean.data], [1, 5, 9]);
  assert.deepEqual([...smoothed.data], [-1, 1, -1, 1, 0]);
});

test('means accumulate in float64 and are rounded to float32 once', () => {
  // summed in float32, each 1 + 2^-24 rounds back to 1 and the mean would be exactly 0.25
  const x = new Tensor(Float32Array.from([1, 2 ** -24, 2 ** -24, 2 ** -24]), [1, 1, 4, 1], 'float32');
  const { mean } = subtractTokenMean(x);
  assert.equal(mean.data[0], Math.fround((1 + 3 * 2 ** -24) / 4));
  assert.equal(mean.data[0], 0.25 + 2 ** -24);
});

test('zero tokens: mean 0 and an empty smoothed tensor', () => {
  const x = new Tensor(new Float32Array(0), [1, 2, 0, 3], 'float32');
  const { smoothed, mean } = subtractTokenMean(x);
  assert.deepEqual([...mean.data], [0, 0, 0, 0, 0, 0]);
  assert.equal(smoothed.size, 0);
  assert.deepEqual(subtractBlockMeans(x, 4).mean.shape, [1, 2, 0, 3]);
});

test('float16 and float64 inputs are read as float32', () => {
  const x16 = tensor([1, 3], [1, 1, 2, 1], 'float16');
  assert.deepEqual([...subtractTokenMean(x16).smoothed.data], [-1, 1]);
  const x64 = tensor([0.1, 0.3], [1, 1, 2, 1], 'float64');
  assert.equal(subtractTokenMean(x64).mean.data[0], Math.fround((Math.fround(0.1) + Math.fround(0.3)) / 2));
});

test('bad input is a typed error', () => {
  const x = randn([1, 1, 4, 2]);
  assert.throws(() => subtractBlockMeans(x, 0), UnsupportedOptionError);
  assert.throws(() => subtractBlockMeans(x, 2.5), UnsupportedOptionError);
  assert.throws(() => subtractTokenMean(x, { layout: 'BHND' as 'HND' }), UnsupportedOptionError);
  assert.throws(() => subtractTokenMean(x.reshape([4, 2])), ShapeError);
  assert.throws(() => subtractTokenMean(tensor([1, 2], [1, 1, 2, 1], 'int32')), DTypeError);
  assert.throws(() => subtractTokenMean({ kind: 'gpu' } as unknown as Tensor), DTypeError);
});
