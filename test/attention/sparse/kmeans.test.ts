import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { Rng } from '../../../src/core/rng.js';
import { kmeans, kmeansInertia } from '../../../src/attention/sparse/kmeans.js';
import { videoWorkload } from '../../../src/attention/sparse/video-workload.js';

/** `per` points around each of the given centres (±0.1 uniform jitter), blob-major. */
function blobs(centres: number[][], per: number, seed: number): { points: Float64Array; blob: Int32Array } {
  const d = centres[0].length;
  const rng = Rng.fromSeed(seed);
  const points = new Float64Array(centres.length * per * d);
  const blob = new Int32Array(centres.length * per);
  for (const [b, c] of centres.entries()) {
    for (let i = 0; i < per; i++) {
      blob[b * per + i] = b;
      for (let j = 0; j < d; j++) points[(b * per + i) * d + j] = c[j] + 0.2 * (rng.uniform() - 0.5);
    }
  }
  return { points, blob };
}

const centres = [
  [0, 0, 0],
  [5, 0, 0],
  [0, 5, 0],
  [0, 0, 5],
];

test('separable blobs: one seed point per blob → labels are the blobs, centroids their exact means', () => {
  const { points, blob } = blobs(centres, 30, 1);
  const d = 3;
  // seeds: the 7th point of each blob
  const init = new Float64Array(4 * d);
  for (let b = 0; b < 4; b++) init.set(points.subarray((b * 30 + 7) * d, (b * 30 + 8) * d), b * d);
  const r = kmeans(points, { sets: 1, n: 120, d }, { clusters: 4, init });
  assert.deepEqual(Array.from(r.labels), Array.from(blob));
  assert.deepEqual(Array.from(r.sizes), [30, 30, 30, 30]);
  // iteration 1 moves the seeds to the means, iteration 2 moves nothing and stops
  assert.equal(r.iterations, 2);
  assert.equal(r.converged, true);
  for (let b = 0; b < 4; b++) {
    for (let j = 0; j < d; j++) {
      let mean = 0;
      for (let i = 0; i < 30; i++) mean += points[(b * 30 + i) * d + j] / 30;
      assert.ok(Math.abs(r.centroids[b * d + j] - mean) < 1e-12);
    }
  }
});

test('random initialisation is seeded, per set, and a converged run labels every point with its nearest centroid', () => {
  const a = blobs(centres, 25, 2).points;
  const b = blobs(
    centres.map((c) => c.map((x) => -x)),
    25,
    3,
  ).points;
  const points = new Float64Array([...a, ...b]);
  const shape = { sets: 2, n: 100, d: 3 };
  const r1 = kmeans(points, shape, { clusters: 6, seed: 9 });
  const r2 = kmeans(points, shape, { clusters: 6, seed: 9 });
  assert.deepEqual(r1.labels, r2.labels);
  assert.deepEqual(r1.centroids, r2.centroids);
  assert.equal(r1.converged, true);
  for (let s = 0; s < 2; s++) {
    for (let i = 0; i < 100; i++) {
      const x = points.subarray((s * 100 + i) * 3, (s * 100 + i + 1) * 3);
      const dist = (c: number) =>
        x.reduce((t, xv, j) => t + (xv - r1.centroids[(s * 6 + c) * 3 + j]) ** 2, 0);
      const mine = dist(r1.labels[s * 100 + i]);
      for (let c = 0; c < 6; c++) assert.ok(mine <= dist(c) + 1e-9);
    }
  }
});

test('an empty cluster keeps its centroid exactly', () => {
  const { points } = blobs(centres.slice(0, 2), 10, 4);
  const init = new Float64Array([0, 0, 0, 5, 0, 0, 100, 100, 100]);
  const r = kmeans(points, { sets: 1, n: 20, d: 3 }, { clusters: 3, init });
  assert.equal(r.sizes[2], 0);
  assert.deepEqual(Array.from(r.centroids.subarray(6)), [100, 100, 100]);
  assert.ok(!r.labels.includes(2));
});

test('all-identical points: one cluster takes them all (ties go to the lowest index), no NaN', () => {
  const points = new Float64Array(16 * 4).fill(0.5);
  const r = kmeans(points, { sets: 1, n: 16, d: 4 }, { clusters: 5, seed: 1 });
  assert.ok(r.labels.every((l) => l === 0));
  assert.deepEqual(Array.from(r.sizes), [16, 0, 0, 0, 0]);
  assert.ok(r.centroids.every((x) => x === 0.5));
  assert.equal(kmeansInertia(points, { sets: 1, n: 16, d: 4 }, r.labels, r.centroids, 5), 0);
});

test('warm start: from the previous step’s centroids, one iteration reaches the converged inertia (cold start needs more)', () => {
  const opts = { frames: 4, height: 8, width: 8, heads: ['semantic'] as const, seed: 7, drift: 0.15 };
  const pts = (step: number) => Float64Array.from(videoWorkload({ ...opts, step }).q.data);
  const shape = { sets: 1, n: 256, d: 64 };
  const c = 16;
  const previous = kmeans(pts(0), shape, { clusters: c, maxIters: 50, seed: 1 });
  const x = pts(1);
  const converged = kmeans(x, shape, { clusters: c, maxIters: 50, seed: 1 });
  assert.equal(converged.converged, true);
  const target = kmeansInertia(x, shape, converged.labels, converged.centroids, c);
  const inertia = (r: ReturnType<typeof kmeans>) => kmeansInertia(x, shape, r.labels, r.centroids, c);
  const warm1 = kmeans(x, shape, { clusters: c, maxIters: 1, init: previous.centroids });
  const cold1 = kmeans(x, shape, { clusters: c, maxIters: 1, seed: 1 });
  const cold2 = kmeans(x, shape, { clusters: c, maxIters: 2, seed: 1 });
  assert.ok(inertia(warm1) <= target * 1.01, `warm, 1 iteration: ${inertia(warm1)} vs converged ${target}`);
  assert.ok(inertia(cold1) > target * 1.5, `cold, 1 iteration: ${inertia(cold1)}`);
  assert.ok(inertia(cold2) > target * 1.1, `cold, 2 iterations: ${inertia(cold2)}`);
  // and the warm start converges (shift < tol) within two iterations
  assert.equal(kmeans(x, shape, { clusters: c, maxIters: 2, init: previous.centroids }).converged, true);
  assert.ok(converged.iterations > 2, `cold start took ${converged.iterations} iterations`);
});

test('bad input: more clusters than points, non-finite points, bad options', () => {
  const points = new Float64Array(8 * 2);
  assert.throws(() => kmeans(points, { sets: 1, n: 8, d: 2 }, { clusters: 9 }), ShapeError);
  points[3] = NaN;
  assert.throws(() => kmeans(points, { sets: 1, n: 8, d: 2 }, { clusters: 2 }), NonFiniteInputError);
  points[3] = 0;
  assert.throws(
    () => kmeans(points, { sets: 1, n: 8, d: 2 }, { clusters: 2, maxIters: 0 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => kmeans(points, { sets: 1, n: 8, d: 2 }, { clusters: 2, init: new Float64Array(3) }),
    ShapeError,
  );
  assert.throws(() => kmeans(points, { sets: 1, n: 9, d: 2 }, { clusters: 2 }), ShapeError);
});
