import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertLayout } from '../../../src/core/layout.js';
import type { Tensor } from '../../../src/core/tensor.js';
import { UnsupportedOptionError } from '../../../src/core/errors.js';
import { type GpuTensor, download, isGpuTensor, upload } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { CentroidCache } from '../../../src/attention/sparse/centroid-cache.js';
import { svg2Attention } from '../../../src/attention/sparse/svg2.js';
import { planSvg2Gpu, svg2AttentionGpu } from '../../../src/attention/sparse/svg2-gpu.js';
import { planSvg2, svg2Mask } from '../../../src/attention/sparse/svg2-plan.js';
import { videoWorkload } from '../../../src/attention/sparse/video-workload.js';
import type { AttentionWithLse } from '../../../src/attention/options.js';
import { testGpu } from '../../gpu/harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const clip = { frames: 4, height: 8, width: 8 } as const;

test(
  'SVG2 on the GPU: k-means labels ≈ CPU, output = the masked float64 oracle of its plan, in-call = plan',
  { skip },
  async () => {
    const w = videoWorkload({ ...clip, prefixTokens: 4, seed: 4 });
    const opts = { prefixTokens: 4, qClusters: 8, kClusters: 24, topP: 0.85 };
    const [q, k, v] = [w.q, w.k, w.v].map((t) => upload(rt, t));
    const plan = await planSvg2Gpu(q, k, v, opts);
    const cpu = planSvg2(w.q, w.k, w.v, opts);
    const c = plan.clustering!;
    let same = 0;
    for (let e = 0; e < c.qLabels.length; e++) if (c.qLabels[e] === cpu.clustering!.qLabels[e]) same++;
    assert.ok(same >= 0.95 * c.qLabels.length, `${same} of ${c.qLabels.length} Q labels as on the CPU`);
    const ref = attentionReference(w.q, w.k, w.v, { mask: svg2Mask(plan), returnLse: true });
    const res = (await svg2AttentionGpu(q, k, v, { ...opts, returnLse: true })) as AttentionWithLse<
      GpuTensor<'float32'>
    >;
    const out = await download(res.out);
    assert.ok(maxAbsDiff(out.data, ref.out.data) < 2e-5, `out ${maxAbsDiff(out.data, ref.out.data)}`);
    assert.ok(maxAbsDiff((await download(res.lse)).data, ref.lse.data) < 2e-4);
    // k-means on the GPU is deterministic (no atomics), so the plan path gives the same bits
    const withPlan = await download((await svg2AttentionGpu(q, k, v, { ...opts, plan })) as GpuTensor);
    assert.deepEqual(withPlan.data, out.data);
    assert.deepEqual((await download(await svg2Attention(q, k, v, opts))).data, out.data);
  },
);

test('SVG2 on the GPU: NHD, the centroid cache warm start, dense warm-up', { skip }, async () => {
  const w = videoWorkload({ ...clip, seed: 5, heads: ['semantic', 'temporal'] });
  const nhd = (t: Tensor) => upload(rt, convertLayout(t, 'HND', 'NHD'));
  const cache = new CentroidCache();
  const opts = { qClusters: 8, kClusters: 16, cache, layout: 'NHD' as const };
  const [q, k, v] = [w.q, w.k, w.v].map(nhd);
  const p0 = await planSvg2Gpu(q, k, v, opts);
  assert.equal(p0.clustering!.warmStart, false);
  const w1 = videoWorkload({ ...clip, seed: 5, heads: ['semantic', 'temporal'], step: 1 });
  const [q1, k1, v1] = [w1.q, w1.k, w1.v].map(nhd);
  const p1 = await planSvg2Gpu(q1, k1, v1, opts);
  assert.equal(p1.clustering!.warmStart, true);
  assert.ok(p1.clustering!.qIterations <= 2);
  const out = await download((await svg2AttentionGpu(q1, k1, v1, { ...opts, plan: p1 })) as GpuTensor);
  const ref = attentionReference(w1.q, w1.k, w1.v, { mask: svg2Mask(p1) });
  assert.ok(maxAbsDiff(out.data, convertLayout(ref, 'HND', 'NHD').data) < 2e-5);
  const dense = await download(
    (await svg2AttentionGpu(q1, k1, v1, {
      layout: 'NHD',
      step: 0,
      numSteps: 10,
      firstTimesFp: 0.2,
    })) as GpuTensor,
  );
  assert.ok(
    maxAbsDiff(dense.data, convertLayout(attentionReference(w1.q, w1.k, w1.v), 'HND', 'NHD').data) < 2e-5,
  );
});

test(
  'SVG2 on the GPU with a cache: GPU centroids stored and warm-started from, hot path = plan path, host calls refuse them',
  { skip },
  async () => {
    const opts = { qClusters: 6, kClusters: 20, topP: 0.8 };
    const w0 = videoWorkload({ ...clip, seed: 8 });
    const w1 = videoWorkload({ ...clip, seed: 8, step: 1 });
    const [q0, k0, v0] = [w0.q, w0.k, w0.v].map((t) => upload(rt, t));
    const [q1, k1, v1] = [w1.q, w1.k, w1.v].map((t) => upload(rt, t));
    const hot = new CentroidCache();
    const planned = new CentroidCache();
    ((await svg2AttentionGpu(q0, k0, v0, { ...opts, cache: hot })) as GpuTensor).destroy();
    const entry = hot.get(0, { sets: 3, d: w0.q.shape[3], qClusters: 6, kClusters: 20 })!;
    assert.ok(isGpuTensor(entry.q) && isGpuTensor(entry.k));
    await planSvg2Gpu(q0, k0, v0, { ...opts, cache: planned });
    const plan1 = await planSvg2Gpu(q1, k1, v1, { ...opts, cache: planned });
    assert.equal(plan1.clustering!.warmStart, true);
    const out = await download((await svg2AttentionGpu(q1, k1, v1, { ...opts, cache: hot })) as GpuTensor);
    // replacing the entry freed the previous step's centroids
    assert.ok((entry.q as GpuTensor).isDestroyed && (entry.k as GpuTensor).isDestroyed);
    const viaPlan = await download(
      (await svg2AttentionGpu(q1, k1, v1, { ...opts, plan: plan1 })) as GpuTensor,
    );
    assert.deepEqual(out.data, viaPlan.data);
    const ref = attentionReference(w1.q, w1.k, w1.v, { mask: svg2Mask(plan1) });
    assert.ok(maxAbsDiff(out.data, ref.data) < 2e-5);
    assert.throws(() => svg2Attention(w1.q, w1.k, w1.v, { ...opts, cache: hot }), UnsupportedOptionError);
    hot.clear();
    planned.clear();
  },
);
