/**
 * SVG2 on WebGPU: the composition of svg2.ts with every step on the GPU and nothing read back —
 * k-means of Q and K (kmeans-gpu.ts; convergence tested on the GPU, the two runs interleaved in one
 * pass), the cluster map and the variable layout from the centroids and sizes k-means left there
 * (svg2-map-gpu.ts), the permutations from k-means' own stable sort (permute-gpu.ts), the token gather,
 * the variable-block kernel over the GPU-built layout words (block-sparse-gpu.ts `planWithLayoutWords`)
 * and the inverse scatter of O and the LSE. The call stays async (the public signature), but it awaits
 * nothing on the GPU. With a centroid cache the GPU call stores GPU centroids (centroid-cache.ts).
 *
 * `planSvg2Gpu` runs the same GPU steps and reads labels, centroids, sizes and the GPU map back into a
 * host plan (what `planSvg2` returns), e.g. to score its mask or to pass as `plan`; its layout is
 * svg2Layout of the GPU map, which is the layout the GPU words describe.
 */
import { submitComputePass } from '../../gpu/dispatch.js';
import { Rng } from '../../core/rng.js';
import { Tensor } from '../../core/tensor.js';
import { download, type GpuTensor, isGpuTensor, upload } from '../../gpu/gpu-tensor.js';
import { attentionGpu } from '../dense-gpu.js';
import type { AttentionResult, AttentionWithLse } from '../options.js';
import { blockSparseAttentionGpu, planWithLayoutWords } from './block-sparse-gpu.js';
import type { CentroidCache } from './centroid-cache.js';
import { type KMeansGpuRun, readKMeansState, recordKMeansGpu } from './kmeans-gpu.js';
import { permutedAttentionGpu, recordPermutationFromOrder } from './permute-gpu.js';
import { type Svg2MapGpu, readSvg2MapGpu, recordSvg2MapGpu } from './svg2-map-gpu.js';
import {
  type ResolvedSvg2,
  type Svg2Options,
  type Svg2Plan,
  resolveSvg2,
  svg2Layout,
  svg2Permutations,
} from './svg2-plan.js';

/** A recorded clustering of Q and K: the two runs and whether they started from the cache. */
interface GpuClustering {
  q: KMeansGpuRun;
  k: KMeansGpuRun;
  warmStart: boolean;
  /** After submission: frees the work buffers and stores the centroids in the cache, which then owns them. */
  submitted(): void;
  /** Frees labels, order, sizes and state of both runs, and the centroids unless the cache holds them. */
  destroy(): void;
}

/** Records k-means of Q and K with the cache, as svg2-plan.ts `cluster` (same seeds, same rule). */
function recordClusterGpu(
  q: GpuTensor,
  k: GpuTensor,
  r: ResolvedSvg2,
  cache: CentroidCache | undefined,
  seed: Svg2Options['seed'],
  pass: GPUComputePassEncoder,
): GpuClustering {
  const { problem } = r;
  const sets = problem.batch * problem.headsQ;
  const entryShape = { sets, d: problem.headDim, qClusters: r.qClusters, kClusters: r.kClusters };
  const cached = r.warmStart ? cache?.get(r.cacheKey, entryShape) : undefined;
  const start = (c: Float64Array | GpuTensor<'float32'> | undefined) =>
    c === undefined ? {} : isGpuTensor(c) ? { initGpu: c } : { init: c };
  const maxIters = cached ? r.iterStep : r.iterInit;
  const root = Rng.fromSeed(seed ?? 0);
  const common = { maxIters, tol: r.tol, layout: problem.layout, offset: r.prefixTokens };
  const [qRun, kRun] = recordKMeansGpu(
    [
      { x: q, opts: { ...common, clusters: r.qClusters, seed: root.split(0), ...start(cached?.q) } },
      { x: k, opts: { ...common, clusters: r.kClusters, seed: root.split(1), ...start(cached?.k) } },
    ],
    pass,
  );
  let inCache = false;
  return {
    q: qRun,
    k: kRun,
    warmStart: cached !== undefined,
    submitted() {
      qRun.release();
      kRun.release();
      if (cache) {
        cache.set(r.cacheKey, { ...entryShape, q: qRun.result.centroids, k: kRun.result.centroids });
        inCache = true;
      }
    },
    destroy() {
      qRun.result.destroy();
      kRun.result.destroy();
      if (!inCache) {
        qRun.result.centroids.destroy();
        kRun.result.centroids.destroy();
      }
    },
  };
}

/** Records the clustering, the map and the permutations of a sparse call into one pass and submits it. */
function recordSparsePlanGpu(
  q: GpuTensor,
  k: GpuTensor,
  r: ResolvedSvg2,
  opts: Svg2Options,
): { g: GpuClustering; map: Svg2MapGpu; qPerm: GpuTensor<'int32'>; kPerm: GpuTensor<'int32'> } {
  const { problem } = r;
  const sets = problem.batch * problem.headsQ;
  const n = problem.tokensQ;
  const releases: (() => void)[] = [];
  let g!: GpuClustering;
  let map!: Svg2MapGpu;
  let qPerm!: GpuTensor<'int32'>;
  let kPerm!: GpuTensor<'int32'>;
  submitComputePass(q.runtime, (pass) => {
    g = recordClusterGpu(q, k, r, opts.cache, opts.seed, pass);
    map = recordSvg2MapGpu(
      {
        qCentroids: g.q.result.centroids,
        kCentroids: g.k.result.centroids,
        qSizes: g.q.result.sizes,
        kSizes: g.k.result.sizes,
        batch: problem.batch,
        heads: problem.headsQ,
        qClusters: r.qClusters,
        kClusters: r.kClusters,
        headDim: problem.headDim,
        prefixTokens: r.prefixTokens,
        tokens: n,
        topP: r.topP,
        minKeyClusterRatio: r.minKeyClusterRatio,
        smScale: problem.smScale,
      },
      pass,
    );
    releases.push(map.release);
    const qp = recordPermutationFromOrder(g.q.result.order, sets, n, r.prefixTokens, pass);
    const kp = recordPermutationFromOrder(g.k.result.order, sets, n, r.prefixTokens, pass);
    releases.push(qp.release, kp.release);
    qPerm = qp.perm;
    kPerm = kp.perm;
  });
  g.submitted();
  for (const release of releases) release();
  return { g, map, qPerm, kPerm };
}

/** The plan of one SVG2 call on GPU tensors: the GPU steps of `svg2AttentionGpu`, read back. */
export async function planSvg2Gpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: Svg2Options = {},
): Promise<Svg2Plan> {
  const r = resolveSvg2(q, k, v, opts);
  const { batch, headsQ: heads, tokensQ: tokens } = r.problem;
  const base = { batch, heads, tokens, prefixTokens: r.prefixTokens };
  if (r.dense && !r.zeroStepKmeansInit) {
    return { ...base, dense: true, density: new Float64Array(batch * heads).fill(1) };
  }
  const { g, map, qPerm, kPerm } = recordSparsePlanGpu(q, k, r, opts);
  qPerm.destroy();
  kPerm.destroy();
  try {
    const [qs, ks] = [await readKMeansState(g.q.result.state), await readKMeansState(g.k.result.state)];
    const clustering = {
      qClusters: r.qClusters,
      kClusters: r.kClusters,
      qLabels: Int32Array.from((await download(g.q.result.labels)).data),
      kLabels: Int32Array.from((await download(g.k.result.labels)).data),
      qSizes: Int32Array.from((await download(g.q.result.sizes)).data),
      kSizes: Int32Array.from((await download(g.k.result.sizes)).data),
      qCentroids: Float64Array.from((await download(g.q.result.centroids)).data),
      kCentroids: Float64Array.from((await download(g.k.result.centroids)).data),
      qIterations: qs.iterations,
      kIterations: ks.iterations,
      warmStart: g.warmStart,
    };
    if (r.dense)
      return { ...base, dense: true, clustering, density: new Float64Array(batch * heads).fill(1) };
    const { map: gpuMap } = await readSvg2MapGpu(map, { batch, heads, tokens });
    return {
      ...base,
      dense: false,
      clustering,
      ...svg2Layout(r, clustering, gpuMap),
      ...svg2Permutations(r, clustering),
    };
  } finally {
    g.destroy();
    map.destroy();
  }
}

/**
 * SVG2 attention of GPU tensors (module comment); options as `svg2Attention`. Resolves to GPU tensors.
 */
export async function svg2AttentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: Svg2Options = {},
): Promise<AttentionResult<GpuTensor<'float32'>>> {
  const r = resolveSvg2(q, k, v, opts);
  const { problem } = r;
  const shared = { smScale: problem.smScale, returnLse: problem.returnLse, layout: problem.layout };
  const rt = q.runtime;
  const sets = problem.batch * problem.headsQ;
  const n = problem.tokensQ;
  if (opts.plan) {
    const plan = opts.plan;
    if (plan.dense || !plan.layout || !plan.qPermutation || !plan.kPermutation)
      return attentionGpu(q, k, v, shared);
    const layout = plan.layout;
    const perms = {
      q: upload(rt, new Tensor(plan.qPermutation, [sets * n], 'int32'), 'svg2 q permutation'),
      k: upload(rt, new Tensor(plan.kPermutation, [sets * n], 'int32'), 'svg2 k permutation'),
    };
    try {
      return permutedAttentionGpu(
        q,
        k,
        v,
        perms,
        problem.layout,
        problem.returnLse,
        (qp, kp, vp) =>
          blockSparseAttentionGpu(qp, kp, vp, layout, shared) as
            GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>>,
      );
    } finally {
      perms.q.destroy();
      perms.k.destroy();
    }
  }
  if (r.dense) {
    if (r.zeroStepKmeansInit) {
      let g!: GpuClustering;
      submitComputePass(rt, (pass) => {
        g = recordClusterGpu(q, k, r, opts.cache, opts.seed, pass);
      });
      g.submitted();
      g.destroy();
    }
    return attentionGpu(q, k, v, shared);
  }
  const { g, map, qPerm, kPerm } = recordSparsePlanGpu(q, k, r, opts);
  try {
    return permutedAttentionGpu(
      q,
      k,
      v,
      { q: qPerm, k: kPerm },
      problem.layout,
      problem.returnLse,
      (qp, kp, vp) => {
        // the density is not read back in the hot path (planSvg2Gpu reports it)
        const plan = planWithLayoutWords(qp, kp, vp, shared, {
          words: map.words,
          params: map.params,
          variable: true,
          blockQ: undefined,
          numQBlocks: map.numQBlocks,
          density: Number.NaN,
        });
        submitComputePass(rt, (pass) => plan.record(pass));
        plan.destroyTemporaries();
        if (!problem.returnLse) {
          plan.lse.destroy();
          return plan.out;
        }
        return { out: plan.out, lse: plan.lse } as AttentionWithLse<GpuTensor<'float32'>>;
      },
    );
  } finally {
    g.destroy();
    map.destroy();
    qPerm.destroy();
    kPerm.destroy();
  }
}
