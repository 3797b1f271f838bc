import { test } from 'node:test';
import assert from 'node:assert/strict';
import { int8TileScale, quantizeInt8Tile } from '../../src/quant/int8-tile.js';

test('one scale fround(amax/127) per tile; codes round to nearest even by default, half-away on request', () => {
  const tile = [127, 2.5, -2.5, 1.5, -0.5, 0.49];
  const even = quantizeInt8Tile(tile, { rows: 2, cols: 3 });
  assert.equal(even.scale, 1);
  assert.deepEqual(Array.from(even.codes), [127, 2, -2, 2, 0, 0]);
  const away = quantizeInt8Tile(tile, { rows: 2, cols: 3, rounding: 'half-away' });
  assert.deepEqual(Array.from(away.codes), [127, 3, -3, 2, -1, 0]);
  const q = quantizeInt8Tile([0.3, -0.7], { rows: 1, cols: 2 });
  assert.equal(q.scale, Math.fround(0.7 / 127));
  assert.deepEqual(Array.from(q.codes), [Math.round(Math.fround(0.3) / q.scale), -127]);
});

test('a tile is read through offset and stride: a sub-block of a larger row-major matrix', () => {
  // 3×4 matrix, tile = rows 1–2, columns 1–2
  const m = [9, 9, 9, 9, 9, 1, -2.2, 9, 9, 4, 3, 9];
  const q = quantizeInt8Tile(m, { rows: 2, cols: 2, offset: 5, stride: 4 });
  assert.equal(q.scale, Math.fround(4 / 127));
  assert.deepEqual(Array.from(q.codes), [32, -70, 127, 95]);
});

test('no amax floor: a tile of tiny gradients keeps its full code range', () => {
  const q = quantizeInt8Tile([1e-20, -6e-21], { rows: 1, cols: 2 });
  assert.equal(q.scale, Math.fround(1e-20 / 127));
  assert.deepEqual(Array.from(q.codes), [127, -76]);
});

test('an all-zero tile (or one whose scale underflows float32) has scale 0 and codes 0; NaN gives scale NaN', () => {
  assert.deepEqual(quantizeInt8Tile([0, 0, 0, 0], { rows: 2, cols: 2 }), {
    codes: new Int8Array(4),
    scale: 0,
  });
  assert.equal(quantizeInt8Tile([1e-44, 0], { rows: 1, cols: 2 }).scale, 0);
  const bad = quantizeInt8Tile([1, NaN, 3], { rows: 1, cols: 3 });
  assert.ok(Number.isNaN(bad.scale));
  assert.deepEqual(Array.from(bad.codes), [0, 0, 0]);
  assert.ok(Number.isNaN(int8TileScale(Infinity)));
});
