import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertLayout } from '../../../src/core/layout.js';
import { Rng } from '../../../src/core/rng.js';
import { Tensor, tensor } from '../../../src/core/tensor.js';
import { download, upload } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { kmeans } from '../../../src/attention/sparse/kmeans.js';
import { kmeansGpu } from '../../../src/attention/sparse/kmeans-gpu.js';
import { sortByLabel } from '../../../src/attention/sparse/permute.js';
import { videoWorkload } from '../../../src/attention/sparse/video-workload.js';
import { testGpu } from '../../gpu/harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

/** [1, sets, n, d] float32 points: `blobs` well-separated clusters per set, ±0.1 jitter. */
function blobPoints(sets: number, n: number, d: number, blobs: number, seed: number): Tensor<'float32'> {
  const rng = Rng.fromSeed(seed);
  const centres = Array.from({ length: sets * blobs * d }, () => 10 * rng.normal());
  const data = new Float32Array(sets * n * d);
  for (let s = 0; s < sets; s++) {
    for (let i = 0; i < n; i++) {
      const b = Math.floor(rng.uniform() * blobs);
      for (let j = 0; j < d; j++)
        data[(s * n + i) * d + j] = centres[(s * blobs + b) * d + j] + 0.2 * (rng.uniform() - 0.5);
    }
  }
  return new Tensor(data, [1, sets, n, d], 'float32');
}

test(
  'GPU k-means on separable blobs: the CPU labels, order, sizes and iterations; centroids to float32 rounding',
  { skip },
  async () => {
    // 600 points: three sort chunks of 256, the last one partial
    const x = blobPoints(3, 600, 5, 6, 1);
    const cpu = kmeans(Float64Array.from(x.data), { sets: 3, n: 600, d: 5 }, { clusters: 8, seed: 4 });
    const g = await kmeansGpu(upload(rt, x), { clusters: 8, seed: 4 });
    assert.deepEqual(Array.from((await download(g.labels)).data), Array.from(cpu.labels));
    assert.deepEqual(Array.from(g.sizes), Array.from(cpu.sizes));
    assert.equal(g.iterations, cpu.iterations);
    assert.equal(g.converged, cpu.converged);
    for (let e = 0; e < cpu.centroids.length; e++)
      assert.ok(Math.abs(g.centroids[e] - cpu.centroids[e]) < 1e-4);
    const order = (await download(g.order)).data;
    for (let s = 0; s < 3; s++) {
      const { order: ref } = sortByLabel(cpu.labels.subarray(s * 600, (s + 1) * 600), 8);
      assert.deepEqual(Array.from(order.subarray(s * 600, (s + 1) * 600)), Array.from(ref));
    }
    g.destroy();
  },
);

test(
  'GPU k-means on workload heads (D = 64, prefix offset, NHD, float16): CPU labels except float32 ties',
  { skip },
  async () => {
    const w = videoWorkload({ frames: 4, height: 8, width: 8, prefixTokens: 3, seed: 2 });
    const n = 256;
    const d = 64;
    const pts = new Float64Array(3 * n * d);
    const data = w.q.data;
    for (let s = 0; s < 3; s++) pts.set(data.subarray((s * 259 + 3) * d, (s * 259 + 259) * d), s * n * d);
    for (const [layout, dtype] of [
      ['HND', 'float32'],
      ['NHD', 'float16'],
    ] as const) {
      const hnd = dtype === 'float16' ? tensor(w.q.data as Float32Array, w.q.shape, 'float16') : w.q;
      const values = Float64Array.from(hnd.toFloat32());
      const cpuPts = new Float64Array(3 * n * d);
      for (let s = 0; s < 3; s++)
        cpuPts.set(values.subarray((s * 259 + 3) * d, (s * 259 + 259) * d), s * n * d);
      const x = upload(rt, convertLayout(hnd, 'HND', layout));
      for (const maxIters of [1, 10]) {
        const cpu = kmeans(cpuPts, { sets: 3, n, d }, { clusters: 16, seed: 3, maxIters });
        const g = await kmeansGpu(x, { clusters: 16, seed: 3, maxIters, layout, offset: 3 });
        const labels = (await download(g.labels)).data;
        let differ = 0;
        for (let e = 0; e < labels.length; e++) if (labels[e] !== cpu.labels[e]) differ++;
        // after one assignment from the same initial points a difference can only be a near-tie
        if (maxIters === 1) {
          const init = kmeans(
            cpuPts,
            { sets: 3, n, d },
            { clusters: 16, seed: 3, maxIters: 1, tol: Infinity },
          );
          for (let e = 0; e < labels.length; e++) {
            if (labels[e] === cpu.labels[e]) continue;
            const s = Math.floor(e / n);
            const dist = (c: number) => {
              let t = 0;
              for (let j = 0; j < d; j++)
                t += (cpuPts[e * d + j] - init.centroids[(s * 16 + c) * d + j]) ** 2;
              return t;
            };
            const a = dist(labels[e]);
            const b = dist(cpu.labels[e]);
            assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(a, b), `point ${e}: distances ${a} vs ${b}`);
          }
        }
        assert.ok(
          differ <= 0.01 * labels.length,
          `${layout} ${dtype} maxIters ${maxIters}: ${differ} labels differ`,
        );
        assert.equal(g.iterations, cpu.iterations);
        g.destroy();
      }
      x.destroy();
    }
  },
);

test(
  'GPU k-means: an empty cluster keeps its centroid; a warm start uses the given centroids',
  { skip },
  async () => {
    const x = blobPoints(1, 50, 3, 2, 5);
    const init = new Float64Array(
      [...x.data.subarray(0, 3)].concat([...x.data.subarray(3, 6)], [1e3, 1e3, 1e3]),
    );
    const g = await kmeansGpu(upload(rt, x), { clusters: 3, init });
    const cpu = kmeans(Float64Array.from(x.data), { sets: 1, n: 50, d: 3 }, { clusters: 3, init });
    assert.equal(g.sizes[2], 0);
    assert.deepEqual(Array.from(g.centroids.subarray(6)), [1000, 1000, 1000]);
    assert.deepEqual(Array.from((await download(g.labels)).data), Array.from(cpu.labels));
    g.destroy();
  },
);

test(
  'GPU k-means: starting centroids on the GPU (initGpu) give what the same host init gives; state counts the iterations',
  { skip },
  async () => {
    const x = upload(rt, blobPoints(2, 300, 6, 5, 7));
    const first = await kmeansGpu(x, { clusters: 5, seed: 2, maxIters: 1 });
    const initGpu = upload(rt, new Tensor(Float32Array.from(first.centroids), [2, 5, 6], 'float32'));
    const host = await kmeansGpu(x, { clusters: 5, init: first.centroids, maxIters: 3 });
    const dev = await kmeansGpu(x, { clusters: 5, initGpu, maxIters: 3 });
    assert.deepEqual(
      Array.from((await download(dev.labels)).data),
      Array.from((await download(host.labels)).data),
    );
    assert.deepEqual(Array.from(dev.centroids), Array.from(host.centroids));
    assert.equal(dev.iterations, host.iterations);
    assert.ok(dev.iterations >= 1 && dev.iterations <= 3);
    await assert.rejects(
      kmeansGpu(x, { clusters: 4, initGpu }),
      /initGpu must be a float32 GPU tensor of sets·clusters·d = 48 values/,
    );
    for (const r of [first, host, dev]) r.destroy();
    initGpu.destroy();
    x.destroy();
  },
);

test(
  "GPU k-means: the 'tiled' and 'per-point' assignment kernels give the same labels and centroids (D = 64, 70 clusters)",
  { skip },
  async () => {
    // 70 centroids: two 64-wide tiles, the second partial; 300 points: five 64-point tiles
    const w = videoWorkload({ frames: 3, height: 10, width: 10, seed: 9 });
    const x = upload(rt, w.k);
    const runs = [];
    for (const assignKernel of ['tiled', 'per-point'] as const)
      runs.push(await kmeansGpu(x, { clusters: 70, seed: 5, maxIters: 4, assignKernel }));
    const [a, b] = runs;
    assert.deepEqual(
      Array.from((await download(a.labels)).data),
      Array.from((await download(b.labels)).data),
    );
    assert.deepEqual(Array.from(a.centroids), Array.from(b.centroids));
    for (const r of runs) r.destroy();
    x.destroy();
  },
);
