import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ShapeError } from '../../src/core/errors.js';
import { sampleLmBatch } from '../../src/train/lm-batch.js';

test('windows of T + 1 tokens: targets are the inputs shifted by one; same rng, same batch', () => {
  const ids = Int32Array.from({ length: 50 }, (_, i) => i);
  const a = sampleLmBatch(ids, 3, 8, Rng.fromSeed(1));
  const b = sampleLmBatch(ids, 3, 8, Rng.fromSeed(1));
  assert.deepEqual(a.inputs.shape, [3, 8]);
  assert.deepEqual(a.inputs.data, b.inputs.data);
  for (let r = 0; r < 3; r++) {
    const start = a.inputs.data[r * 8];
    for (let t = 0; t < 8; t++) {
      assert.equal(a.inputs.data[r * 8 + t], start + t);
      assert.equal(a.targets[r * 8 + t], start + t + 1);
    }
    assert.ok(start + 8 < 50);
  }
  assert.notDeepEqual(sampleLmBatch(ids, 3, 8, Rng.fromSeed(2)).inputs.data, a.inputs.data);
  assert.throws(() => sampleLmBatch(ids, 1, 50, Rng.fromSeed(0)), ShapeError);
  assert.throws(() => sampleLmBatch(ids, 0, 5, Rng.fromSeed(0)), ShapeError);
});
