import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { convertLayout } from '../../../src/core/layout.js';
import { Tensor } from '../../../src/core/tensor.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import { CentroidCache } from '../../../src/attention/sparse/centroid-cache.js';
import { clusterCriticality, svg2ClusterMap, topPSelect } from '../../../src/attention/sparse/svg2-map.js';
import { svg2Attention } from '../../../src/attention/sparse/svg2.js';
import { planSvg2, svg2KeepPredicate, svg2Mask } from '../../../src/attention/sparse/svg2-plan.js';
import { videoWorkload } from '../../../src/attention/sparse/video-workload.js';

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const kept = (probs: number[], p: number, forced = 0) => {
  const keep = new Uint8Array(probs.length);
  topPSelect(Float64Array.from(probs), p, forced, keep);
  return Array.from(keep);
};

test('top-p keeps the cluster that crosses p (inclusive), always the top-1, and the forced top ⌊ratio·C_k⌋', () => {
  // sorted masses 0.5, 0.25, 0.125, 0.125 (cluster order 1, 3, 0, 2)
  const probs = [0.125, 0.5, 0.125, 0.25];
  // p = 0.7: mass before cluster 3 is 0.5 ≤ 0.7 → kept (it crosses 0.7); before the next it is 0.75 > 0.7
  assert.deepEqual(kept(probs, 0.7), [0, 1, 0, 1]);
  // p = 0.75: the mass before the third is exactly 0.75 ≤ p → kept (the reference removes where cumsum > p)
  assert.deepEqual(kept(probs, 0.75), [1, 1, 0, 1]);
  assert.deepEqual(kept(probs, 0), [0, 1, 0, 0]);
  assert.deepEqual(kept(probs, 0, 3), [1, 1, 0, 1]);
  assert.deepEqual(kept(probs, 1), [1, 1, 1, 1]);
  // equal masses: the lower cluster index ranks first
  assert.deepEqual(kept([0.25, 0.25, 0.5], 0.5), [1, 0, 1]);
});

test('criticality: softmax over key clusters weighted by their sizes; empty clusters get 0, no NaN', () => {
  // one query centroid (1, 0) against key centroids (0, 0) and (ln 2, 0) with σ = 1: S = [0, ln 2]
  const out = new Float64Array(3);
  clusterCriticality([1, 0], 0, [0, 0, Math.LN2, 0, 1e6, 0], 0, [1, 3, 0], 0, 3, 2, 1, out);
  assert.ok(Math.abs(out[0] - 1 / 7) < 1e-15 && Math.abs(out[1] - 6 / 7) < 1e-15, `${out[0]} ${out[1]}`);
  assert.equal(out[2], 0);
  const map = svg2ClusterMap(
    [1, 0],
    [0, 0, Math.LN2, 0, 1e6, 0],
    [1, 3, 0],
    { sets: 1, qClusters: 1, kClusters: 3, d: 2 },
    {
      topP: 0.5,
      minKeyClusterRatio: 0,
      smScale: 1,
    },
  );
  assert.deepEqual(Array.from(map), [0, 1, 0]);
});

const clip = { frames: 4, height: 8, width: 8 } as const;

test('svg2Attention equals the float64 oracle masked by the plan in the original order (prefix, NHD, LSE)', () => {
  const w = videoWorkload({ ...clip, prefixTokens: 6, seed: 4 });
  const opts = { prefixTokens: 6, qClusters: 8, kClusters: 24, topP: 0.8 };
  const plan = planSvg2(w.q, w.k, w.v, opts);
  assert.equal(plan.dense, false);
  const { out, lse } = svg2Attention(w.q, w.k, w.v, { ...opts, plan, returnLse: true });
  const ref = attentionReference(w.q, w.k, w.v, { mask: svg2Mask(plan), returnLse: true });
  assert.ok(maxAbsDiff(out.data, ref.out.data) < 2e-5, `out ${maxAbsDiff(out.data, ref.out.data)}`);
  assert.ok(maxAbsDiff(lse.data, ref.lse.data) < 2e-4, `lse ${maxAbsDiff(lse.data, ref.lse.data)}`);
  for (const dens of plan.density) assert.ok(dens > 0.02 && dens < 0.9, `density ${dens}`);
  // the density accounting counts exactly the mask's entries
  const mask = svg2Mask(plan);
  const n = w.q.shape[2];
  for (let h = 0; h < 3; h++) {
    let on = 0;
    for (let e = h * n * n; e < (h + 1) * n * n; e++) on += mask.data[e];
    assert.ok(Math.abs(on / (n * n) - plan.density[h]) < 1e-12);
  }
  const nhd = (t: Tensor) => convertLayout(t, 'HND', 'NHD');
  const outNhd = svg2Attention(nhd(w.q), nhd(w.k), nhd(w.v), { ...opts, plan, layout: 'NHD' });
  assert.deepEqual(outNhd.data, convertLayout(out, 'HND', 'NHD').data);
});

test('a semantic head: at p = 0.9 SVG2 covers ≥ 90 % of the attention mass at about half the density', () => {
  // this head needs 37 % of its keys for 90 % of the mass even when chosen exactly per row (videoHeadMass)
  const w = videoWorkload({ ...clip, seed: 4, heads: ['semantic'] });
  const plan = planSvg2(w.q, w.k, w.v, { qClusters: 16, kClusters: 64, topP: 0.9 });
  const recall = metrics.recall(w.q, w.k, svg2KeepPredicate(plan));
  assert.ok(recall > 0.9, `recall ${recall}`);
  assert.ok(plan.density[0] < 0.55, `density ${plan.density[0]}`);
});

test('centroid cache: the first call on a layer runs the init iterations, the next starts warm with at most kmeansIterStep', () => {
  const cache = new CentroidCache();
  const opts = { qClusters: 8, kClusters: 16, cache, cacheKey: 'block.3' };
  const w0 = videoWorkload({ ...clip, seed: 4, heads: ['semantic', 'spatial'] });
  const p0 = planSvg2(w0.q, w0.k, w0.v, opts);
  assert.equal(p0.clustering!.warmStart, false);
  assert.ok(p0.clustering!.qIterations > 2 && p0.clustering!.qIterations <= 50);
  assert.ok(cache.has('block.3'));
  const w1 = videoWorkload({ ...clip, seed: 4, heads: ['semantic', 'spatial'], step: 1 });
  const p1 = planSvg2(w1.q, w1.k, w1.v, opts);
  assert.equal(p1.clustering!.warmStart, true);
  assert.ok(p1.clustering!.qIterations <= 2 && p1.clustering!.kIterations <= 2);
  // warmStart: false ignores the entry; a different cluster count does not fit it and starts cold
  assert.equal(planSvg2(w1.q, w1.k, w1.v, { ...opts, warmStart: false }).clustering!.warmStart, false);
  assert.equal(planSvg2(w1.q, w1.k, w1.v, { ...opts, qClusters: 4 }).clustering!.warmStart, false);
});

test('dense warm-up runs dense attention; with zeroStepKmeansInit it still fills the cache', () => {
  const w = videoWorkload({ ...clip, seed: 4, heads: ['semantic'] });
  const cache = new CentroidCache();
  const warm = { step: 0, numSteps: 10, firstTimesFp: 0.3, cache, qClusters: 4, kClusters: 8 };
  const plan = planSvg2(w.q, w.k, w.v, warm);
  assert.equal(plan.dense, true);
  assert.equal(plan.clustering, undefined);
  assert.equal(cache.size, 0);
  const out = svg2Attention(w.q, w.k, w.v, warm);
  assert.ok(maxAbsDiff(out.data, attentionReference(w.q, w.k, w.v).data) < 2e-5);
  planSvg2(w.q, w.k, w.v, { ...warm, zeroStepKmeansInit: true });
  assert.equal(cache.size, 1);
});

test('more clusters than tokens are clamped to the token count; all-identical tokens give no NaN', () => {
  const w = videoWorkload({ frames: 2, height: 4, width: 4, seed: 1, heads: ['spatial'] });
  const plan = planSvg2(w.q, w.k, w.v, { qClusters: 500, kClusters: 1000 });
  assert.equal(plan.clustering!.qClusters, 32);
  assert.equal(plan.clustering!.kClusters, 32);
  const out = svg2Attention(w.q, w.k, w.v, { plan });
  assert.ok(maxAbsDiff(out.data, attentionReference(w.q, w.k, w.v, { mask: svg2Mask(plan) }).data) < 2e-5);

  const n = 40;
  const same = new Tensor(new Float32Array(n * 8).fill(0.25), [1, 1, n, 8], 'float32');
  const v = new Tensor(
    Float32Array.from({ length: n * 8 }, (_, i) => i % 7),
    [1, 1, n, 8],
    'float32',
  );
  const o = svg2Attention(same, same, v, { qClusters: 4, kClusters: 6 });
  assert.ok(o.data.every(Number.isFinite));
  // every logit is equal, so each row is the mean of V
  assert.ok(maxAbsDiff(o.data, attentionReference(same, same, v).data) < 1e-5);
});

test('bad input: NaN in q or k (k-means cannot cluster it), causal, GQA, prefix covering everything, topP', () => {
  const w = videoWorkload({ frames: 2, height: 4, width: 4, seed: 1, heads: ['spatial', 'temporal'] });
  const qBad = new Tensor(Float32Array.from(w.q.data), w.q.shape, 'float32');
  qBad.data[100] = NaN;
  assert.throws(() => svg2Attention(qBad, w.k, w.v, { qClusters: 4, kClusters: 4 }), NonFiniteInputError);
  assert.throws(() => svg2Attention(w.q, w.k, w.v, { causal: true }), UnsupportedOptionError);
  const k1 = new Tensor(Float32Array.from(w.k.data.subarray(0, 32 * 64)), [1, 1, 32, 64], 'float32');
  assert.throws(() => svg2Attention(w.q, k1, k1), UnsupportedOptionError);
  assert.throws(() => svg2Attention(w.q, w.k, w.v, { prefixTokens: 32 }), ShapeError);
  assert.throws(() => svg2Attention(w.q, w.k, w.v, { topP: 1.5 }), UnsupportedOptionError);
  // a NaN in V follows nanPolicy 'propagate' like the oracle: the same rows become NaN
  const vBad = new Tensor(Float32Array.from(w.v.data), w.v.shape, 'float32');
  vBad.data[5 * 64] = NaN;
  const opts = { qClusters: 4, kClusters: 8 };
  const plan = planSvg2(w.q, w.k, vBad, opts);
  const o = svg2Attention(w.q, w.k, vBad, { ...opts, plan });
  const ref = attentionReference(w.q, w.k, vBad, { mask: svg2Mask(plan) });
  assert.deepEqual(Array.from(o.data, Number.isNaN), Array.from(ref.data, Number.isNaN));
  assert.ok(Array.from(o.data).some(Number.isNaN));
});
