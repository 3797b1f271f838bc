import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsupportedOptionError } from '../../src/core/errors.js';
import {
  DEFAULT_QK_TILING,
  assertQKTiling,
  qkScaleCount,
  qkScaleIndex,
} from '../../src/quant/qk-scale-groups.js';
import type { QKGranularity } from '../../src/quant/types.js';

const T = DEFAULT_QK_TILING;

/** Tokens 0..n-1 grouped by their scale index. */
function groups(role: 'q' | 'k', granularity: QKGranularity, n: number, tiling = T): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let t = 0; t < n; t++) {
    const g = qkScaleIndex(role, granularity, t, tiling);
    out.set(g, [...(out.get(g) ?? []), t]);
  }
  return out;
}

test('defaults are the sm80/sm89 tiles: blockQ 128, warpQ 32, blockK 64, warpK 64', () => {
  assert.deepEqual({ ...T }, { blockQ: 128, warpQ: 32, blockK: 64, warpK: 64 });
});

test('per-thread Q: tokens t, t+8, t+16, t+24 of each 32-token warp share a scale', () => {
  const g = groups('q', 'per-thread', 256);
  assert.deepEqual(g.get(0), [0, 8, 16, 24]);
  assert.deepEqual(g.get(1), [1, 9, 17, 25]);
  assert.deepEqual(g.get(7), [7, 15, 23, 31]);
  assert.deepEqual(g.get(8), [32, 40, 48, 56]); // warp 1, t = 0
  assert.deepEqual(g.get(31), [103, 111, 119, 127]); // warp 3 of tile 0
  assert.deepEqual(g.get(32), [128, 136, 144, 152]); // tile 1 starts a new warp
  assert.equal(g.size, 64);
  // warpQ 16 (sm90): two tokens per group
  assert.deepEqual(groups('q', 'per-thread', 64, { ...T, blockQ: 64, warpQ: 16 }).get(9), [17, 25]);
});

test('per-thread K: tokens with index mod 8 in {2t, 2t+1} of each warpK segment share a scale', () => {
  const g = groups('k', 'per-thread', 128);
  const expect = (w: number, t: number) =>
    Array.from({ length: 8 }, (_, i) => [w * 64 + 8 * i + 2 * t, w * 64 + 8 * i + 2 * t + 1]).flat();
  for (let w = 0; w < 2; w++) for (let t = 0; t < 4; t++) assert.deepEqual(g.get(w * 4 + t), expect(w, t));
  assert.equal(g.size, 8);
  // warpK 32 inside blockK 64: two warps per tile, 4 groups each of 8 tokens
  const g32 = groups('k', 'per-thread', 64, { ...T, warpK: 32 });
  assert.deepEqual(g32.get(5), [34, 35, 42, 43, 50, 51, 58, 59]);
});

test('per-warp: Q by warpQ consecutive tokens; K stays per block (WARP_K = CTA_K)', () => {
  const q = groups('q', 'per-warp', 130);
  assert.deepEqual(
    q.get(0),
    Array.from({ length: 32 }, (_, i) => i),
  );
  assert.deepEqual(q.get(4), [128, 129]);
  const k = groups('k', 'per-warp', 130, { ...T, warpK: 32 });
  assert.deepEqual(
    k.get(1),
    Array.from({ length: 64 }, (_, i) => 64 + i),
  );
});

test('per-block and per-token indices', () => {
  assert.equal(qkScaleIndex('q', 'per-block', 127, T), 0);
  assert.equal(qkScaleIndex('q', 'per-block', 128, T), 1);
  assert.equal(qkScaleIndex('k', 'per-block', 63, T), 0);
  assert.equal(qkScaleIndex('k', 'per-block', 64, T), 1);
  assert.equal(qkScaleIndex('q', 'per-token', 77, T), 77);
  assert.equal(qkScaleIndex('k', 'per-token', 5, T), 5);
});

test('scale counts are the reference tensor sizes, covering whole tiles', () => {
  // N = 130 queries, 70 keys
  assert.equal(qkScaleCount('q', 'per-block', 130, T), 2);
  assert.equal(qkScaleCount('k', 'per-block', 70, T), 2);
  assert.equal(qkScaleCount('q', 'per-warp', 130, T), 2 * 4);
  assert.equal(qkScaleCount('k', 'per-warp', 70, T), 2);
  assert.equal(qkScaleCount('q', 'per-thread', 130, T), 2 * 4 * 8);
  assert.equal(qkScaleCount('k', 'per-thread', 70, T), 2 * 1 * 4);
  assert.equal(qkScaleCount('k', 'per-thread', 70, { ...T, blockK: 128, warpK: 32 }), 1 * 4 * 4);
  assert.equal(qkScaleCount('q', 'per-token', 130, T), 130);
  assert.equal(qkScaleCount('q', 'per-thread', 0, T), 0);
  // every token's index is inside the count
  for (const g of ['per-block', 'per-warp', 'per-thread', 'per-token'] as const) {
    for (const role of ['q', 'k'] as const) {
      const tiling = { blockQ: 64, warpQ: 16, blockK: 128, warpK: 32 };
      const count = qkScaleCount(role, g, 300, tiling);
      for (let t = 0; t < 300; t++) assert.ok(qkScaleIndex(role, g, t, tiling) < count, `${role} ${g} ${t}`);
    }
  }
});

test('tiling validation: positive integers, warps multiples of 8 that divide their block', () => {
  assert.doesNotThrow(() => assertQKTiling({ blockQ: 64, warpQ: 16, blockK: 128, warpK: 128 }));
  for (const bad of [
    { ...T, blockQ: 0 },
    { ...T, blockK: 1.5 },
    { ...T, warpK: NaN },
    { ...T, warpQ: 12 },
    { ...T, warpQ: 48 },
    { ...T, warpK: 24 },
    { ...T, warpK: 128 },
  ]) {
    assert.throws(() => assertQKTiling(bad), UnsupportedOptionError, JSON.stringify(bad));
  }
  assert.throws(() => qkScaleIndex('q', 'per-tensor' as QKGranularity, 0, T), UnsupportedOptionError);
});
