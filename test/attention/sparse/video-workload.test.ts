import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { videoHeadMass, videoWorkload } from '../../../src/attention/sparse/video-workload.js';

const small = { frames: 4, height: 8, width: 8, seed: 3 } as const;

test('the same options give the same bits; another seed gives other values', () => {
  const a = videoWorkload(small);
  const b = videoWorkload(small);
  assert.deepEqual(a.q.data, b.q.data);
  assert.deepEqual(a.k.data, b.k.data);
  assert.deepEqual(a.v.data, b.v.data);
  assert.deepEqual(a.labelOf, b.labelOf);
  const c = videoWorkload({ ...small, seed: 4 });
  assert.notDeepEqual(a.q.data, c.q.data);
});

test('shapes, token coordinates (frame-major after the prefix) and object labels', () => {
  const w = videoWorkload({ ...small, prefixTokens: 5, heads: ['spatial', 'semantic'], headDim: 32 });
  const n = 5 + 4 * 8 * 8;
  assert.deepEqual(w.q.shape, [1, 2, n, 32]);
  assert.deepEqual(w.v.shape, [1, 2, n, 32]);
  for (let i = 0; i < 5; i++) assert.equal(w.labelOf[i], -1);
  // token 5 + f·64 + y·8 + x
  const i = 5 + 2 * 64 + 3 * 8 + 6;
  assert.deepEqual([w.frameOf[i], w.rowOf[i], w.colOf[i]], [2, 3, 6]);
  const labels = new Set(w.labelOf.subarray(5));
  assert.ok(labels.has(0), 'background present');
  assert.ok([...labels].filter((l) => l > 0).length >= 3, 'several discs visible');
  assert.ok([...labels].every((l) => l >= 0 && l <= 5));
});

test('head types behave as §5 says: spatial within the frame, temporal at the same position, semantic on the same object', () => {
  const w = videoWorkload({ ...small, prefixTokens: 3 });
  const [spatial, temporal, semantic] = videoHeadMass(w);
  assert.ok(spatial.sameFrame > 0.999, `spatial same-frame mass ${spatial.sameFrame}`);
  assert.ok(temporal.samePosition > 0.99, `temporal same-position mass ${temporal.samePosition}`);
  assert.ok(temporal.sameFrame < 0.7, `temporal same-frame mass ${temporal.sameFrame}`);
  assert.ok(semantic.sameObject > 0.999, `semantic same-object mass ${semantic.sameObject}`);
  assert.ok(semantic.sameFrame < 0.5 && semantic.samePosition < 0.2, JSON.stringify(semantic));
  // same-object mass is spread: many keys are needed for 90 % of it (§5: 26 %), unlike the positional heads
  assert.ok(semantic.keysFor90 > 0.2, `semantic keys for 90 %: ${semantic.keysFor90}`);
  assert.ok(
    spatial.keysFor90 < 0.1 && temporal.keysFor90 < 0.05,
    `${spatial.keysFor90} ${temporal.keysFor90}`,
  );
});

test('denoising steps drift Q and K by drift·N(0, 1) per step and leave V alone', () => {
  const drift = 0.05;
  const s0 = videoWorkload({ ...small, drift });
  const s1 = videoWorkload({ ...small, drift, step: 1 });
  const s2 = videoWorkload({ ...small, drift, step: 2 });
  const msd = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
    return s / a.length;
  };
  for (const key of ['q', 'k'] as const) {
    const d01 = msd(s0[key].data, s1[key].data);
    const d02 = msd(s0[key].data, s2[key].data);
    assert.ok(Math.abs(d01 / drift ** 2 - 1) < 0.05, `${key}: step 0→1 mean square change ${d01}`);
    // a random walk: two steps move twice the variance
    assert.ok(Math.abs(d02 / drift ** 2 - 2) < 0.1, `${key}: step 0→2 mean square change ${d02}`);
  }
  assert.deepEqual(s0.v.data, s2.v.data);
  // step s is a pure function of the options (step 1 of the walk is shared by step 2)
  assert.deepEqual(videoWorkload({ ...small, drift, step: 2 }).q.data, s2.q.data);
});

test('bad options are typed errors', () => {
  assert.throws(() => videoWorkload({ ...small, headDim: 8 }), ShapeError);
  assert.throws(() => videoWorkload({ ...small, frames: 0 }), UnsupportedOptionError);
  assert.throws(() => videoWorkload({ ...small, heads: [] }), UnsupportedOptionError);
  assert.throws(() => videoWorkload({ ...small, heads: ['diagonal' as 'spatial'] }), UnsupportedOptionError);
  assert.throws(() => videoWorkload({ ...small, noise: -1 }), UnsupportedOptionError);
});
