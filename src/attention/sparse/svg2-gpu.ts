/**
 * SVG2 on WebGPU: the composition of svg2.ts with k-means (kmeans-gpu.ts), the permutations (made on the
 * GPU from k-means' own stable sort, permute-gpu.ts), the token gather, the variable-block kernel
 * (block-sparse-gpu.ts) and the inverse scatter of O and the LSE on the GPU. The cluster map is computed
 * on the host from the read-back centroids and sizes (C_q·C_k·D per head, small next to attention), and
 * so is the variable layout the kernel takes — hence the call is async.
 *
 * `planSvg2Gpu` also reads the labels back and returns a host plan (what `planSvg2` returns), e.g. to
 * score its mask or to pass as `plan`. Like the CPU path, the centroid cache holds host centroids.
 */
import { Rng } from '../../core/rng.js';
import { Tensor } from '../../core/tensor.js';
import { download, type GpuTensor, upload } from '../../gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../gpu/runtime.js';
import { attentionGpu } from '../dense-gpu.js';
import type { AttentionResult, AttentionWithLse } from '../options.js';
import type { VariableBlockLayout } from './block-layout.js';
import { blockSparseAttentionGpu } from './block-sparse-gpu.js';
import type { CentroidCache } from './centroid-cache.js';
import { type KMeansGpuResult, kmeansGpu } from './kmeans-gpu.js';
import { recordPermutationFromOrder, recordPermuteTokens } from './permute-gpu.js';
import {
  type ResolvedSvg2,
  type Svg2ClusterSummary,
  type Svg2Options,
  type Svg2Plan,
  resolveSvg2,
  svg2Layout,
  svg2Permutations,
} from './svg2-plan.js';

function encodePass(rt: GpuRuntime, record: (pass: GPUComputePassEncoder) => void): void {
  const enc = rt.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  rt.device.queue.submit([enc.finish()]);
}

interface GpuClustering {
  summary: Svg2ClusterSummary & { qIterations: number; kIterations: number; warmStart: boolean };
  q: KMeansGpuResult;
  k: KMeansGpuResult;
}

/** k-means of Q and K on the GPU with the cache, as svg2-plan.ts `cluster` (same seeds, same rule). */
async function clusterGpu(
  q: GpuTensor,
  k: GpuTensor,
  r: ResolvedSvg2,
  cache: CentroidCache | undefined,
  seed: Svg2Options['seed'],
): Promise<GpuClustering> {
  const { problem } = r;
  const sets = problem.batch * problem.headsQ;
  const entryShape = { sets, d: problem.headDim, qClusters: r.qClusters, kClusters: r.kClusters };
  const cached = r.warmStart ? cache?.get(r.cacheKey, entryShape) : undefined;
  const maxIters = cached ? r.iterStep : r.iterInit;
  const root = Rng.fromSeed(seed ?? 0);
  const common = { maxIters, tol: r.tol, layout: problem.layout, offset: r.prefixTokens };
  const qk = await kmeansGpu(q, { ...common, clusters: r.qClusters, init: cached?.q, seed: root.split(0) });
  const kk = await kmeansGpu(k, { ...common, clusters: r.kClusters, init: cached?.k, seed: root.split(1) });
  cache?.set(r.cacheKey, { ...entryShape, q: qk.centroids, k: kk.centroids });
  return {
    summary: {
      qClusters: r.qClusters,
      kClusters: r.kClusters,
      qSizes: qk.sizes,
      kSizes: kk.sizes,
      qCentroids: qk.centroids,
      kCentroids: kk.centroids,
      qIterations: qk.iterations,
      kIterations: kk.iterations,
      warmStart: cached !== undefined,
    },
    q: qk,
    k: kk,
  };
}

/** The plan of one SVG2 call on GPU tensors: k-means on the GPU, labels read back, the rest as `planSvg2`. */
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
  const g = await clusterGpu(q, k, r, opts.cache, opts.seed);
  try {
    const clustering = {
      ...g.summary,
      qLabels: Int32Array.from((await download(g.q.labels)).data),
      kLabels: Int32Array.from((await download(g.k.labels)).data),
    };
    if (r.dense)
      return { ...base, dense: true, clustering, density: new Float64Array(batch * heads).fill(1) };
    return {
      ...base,
      dense: false,
      clustering,
      ...svg2Layout(r, clustering),
      ...svg2Permutations(r, clustering),
    };
  } finally {
    g.q.destroy();
    g.k.destroy();
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
  let layout: VariableBlockLayout;
  let qPerm: GpuTensor<'int32'>;
  let kPerm: GpuTensor<'int32'>;
  const releases: (() => void)[] = [];
  if (opts.plan) {
    const plan = opts.plan;
    if (plan.dense || !plan.layout || !plan.qPermutation || !plan.kPermutation)
      return attentionGpu(q, k, v, shared);
    layout = plan.layout;
    qPerm = upload(rt, new Tensor(plan.qPermutation, [sets * n], 'int32'), 'svg2 q permutation');
    kPerm = upload(rt, new Tensor(plan.kPermutation, [sets * n], 'int32'), 'svg2 k permutation');
  } else {
    if (r.dense) {
      if (r.zeroStepKmeansInit) {
        const g = await clusterGpu(q, k, r, opts.cache, opts.seed);
        g.q.destroy();
        g.k.destroy();
      }
      return attentionGpu(q, k, v, shared);
    }
    const g = await clusterGpu(q, k, r, opts.cache, opts.seed);
    layout = svg2Layout(r, g.summary).layout;
    let qp!: ReturnType<typeof recordPermutationFromOrder>;
    let kp!: ReturnType<typeof recordPermutationFromOrder>;
    encodePass(rt, (pass) => {
      qp = recordPermutationFromOrder(g.q.order, sets, n, r.prefixTokens, pass);
      kp = recordPermutationFromOrder(g.k.order, sets, n, r.prefixTokens, pass);
    });
    releases.push(qp.release, kp.release, g.q.destroy, g.k.destroy);
    qPerm = qp.perm;
    kPerm = kp.perm;
  }
  const moved: GpuTensor[] = [];
  encodePass(rt, (pass) => {
    for (const [x, perm] of [
      [q, qPerm],
      [k, kPerm],
      [v, kPerm],
    ] as const) {
      const g = recordPermuteTokens(x, perm, problem.layout, false, pass);
      moved.push(g.out);
      releases.push(g.release);
    }
  });
  const result = blockSparseAttentionGpu(moved[0], moved[1], moved[2], layout, shared) as
    GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>>;
  const [out, lse] = problem.returnLse
    ? [
        (result as AttentionWithLse<GpuTensor<'float32'>>).out,
        (result as AttentionWithLse<GpuTensor<'float32'>>).lse,
      ]
    : [result as GpuTensor<'float32'>, undefined];
  let outBack!: GpuTensor;
  let lseBack: GpuTensor | undefined;
  encodePass(rt, (pass) => {
    const o = recordPermuteTokens(out, qPerm, problem.layout, true, pass);
    outBack = o.out;
    releases.push(o.release);
    if (lse) {
      const l = recordPermuteTokens(lse, qPerm, 'lse', true, pass);
      lseBack = l.out;
      releases.push(l.release);
    }
  });
  for (const t of [...moved, out, qPerm, kPerm, ...(lse ? [lse] : [])]) t.destroy();
  for (const release of releases) release();
  const outF = outBack as GpuTensor<'float32'>;
  return lseBack ? { out: outF, lse: lseBack as GpuTensor<'float32'> } : outF;
}
