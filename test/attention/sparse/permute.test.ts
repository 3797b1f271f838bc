import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError } from '../../../src/core/errors.js';
import { randn } from '../../../src/core/tensor.js';
import {
  gatherTokens,
  invertPermutation,
  scatterTokens,
  sortByLabel,
} from '../../../src/attention/sparse/permute.js';

test('sortByLabel is a stable counting sort with counts and exclusive starts', () => {
  const { order, counts, starts } = sortByLabel([2, 0, 2, 1, 0], 4);
  assert.deepEqual(Array.from(order), [1, 4, 3, 0, 2]);
  assert.deepEqual(Array.from(counts), [2, 1, 2, 0]);
  assert.deepEqual(Array.from(starts), [0, 2, 3, 5, 5]);
  assert.throws(() => sortByLabel([0, 4], 4), ShapeError);
  assert.throws(() => sortByLabel([0, 1.5], 4), ShapeError);
});

test('gather then scatter is the identity; invertPermutation per (b, h) segment', () => {
  const x = randn([2, 1, 5, 3], { seed: 2 });
  const perm = Int32Array.from([4, 0, 3, 1, 2, 1, 2, 3, 4, 0]);
  const g = gatherTokens(x, perm);
  assert.deepEqual(Array.from(g.data.subarray(0, 3)), Array.from(x.data.subarray(12, 15)));
  assert.deepEqual(scatterTokens(g, perm).data, x.data);
  const inv = invertPermutation(perm, 5);
  assert.deepEqual(Array.from(inv), [1, 3, 4, 2, 0, 4, 0, 1, 2, 3]);
  assert.deepEqual(gatherTokens(g, inv).data, x.data);
  assert.throws(() => gatherTokens(x, perm.subarray(0, 9)), ShapeError);
});
