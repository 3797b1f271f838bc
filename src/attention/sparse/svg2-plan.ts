/**
 * SVG2's per-call plan (arXiv 2505.18875; sparse_attention.md §3.2): k-means on Q and, separately, on K
 * per head (warm-started from the per-layer centroid cache), the cluster map from centroid criticality
 * and top-p, the permutations that make clusters contiguous (Q by Q labels; K and V by K labels), and
 * the variable-block layout the kernel runs. `svg2Attention` executes a plan; `planSvg2` exposes it
 * (labels, sizes, map, density per head, k-means iterations).
 *
 * Prefix (text) tokens are not clustered (§3.2 step 7, Hunyuan): they form one extra query segment that
 * attends to every key and one extra key segment every query attends to, placed first in both orders.
 * Cluster counts larger than the number of video tokens are clamped to it (`qClusters` / `kClusters` in
 * the plan are the counts used).
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { convertLayout } from '../../core/layout.js';
import { Rng, type Seed } from '../../core/rng.js';
import { Tensor } from '../../core/tensor.js';
import { isGpuTensor } from '../../gpu/gpu-tensor.js';
import type { KeepPredicate } from '../metrics.js';
import {
  type AttentionOptions,
  type AttentionProblem,
  type ShapedLike,
  resolveAttentionProblem,
} from '../options.js';
import type { VariableBlockLayout } from './block-layout.js';
import { type CentroidCache, type LayerKey } from './centroid-cache.js';
import { DENSE_WARMUP_KEYS, type DenseWarmupOptions, isDenseWarmup } from './dense-warmup.js';
import { kmeans } from './kmeans.js';
import { layoutFromSegments, maskFromPredicate } from './layout-builders.js';
import { sortByLabel } from './permute.js';
import { checkTopP, clusterMapDensity, svg2ClusterMap } from './svg2-map.js';
import { boolOption, intOption } from './option-values.js';

export interface Svg2Options extends AttentionOptions, DenseWarmupOptions {
  /** Query clusters C_q per head (default 50, the reference CLI; its scripts use 200–400, the paper 100). */
  qClusters?: number;
  /** Key clusters C_k per head (default 200; scripts 1000, paper 500). */
  kClusters?: number;
  /** Top-p budget (`--top_p_kmeans`, default 0.9). */
  topP?: number;
  /** Fraction of key clusters always kept (`--min_kc_ratio`, default 0; scripts 0.10). */
  minKeyClusterRatio?: number;
  /** k-means iterations of a cold start (`--kmeans_iter_init`, default 50 as the scripts; the CLI's 0 would skip k-means). */
  kmeansIterInit?: number;
  /** k-means iterations of a warm start from the cache (`--kmeans_iter_step`, default 2 as the scripts). */
  kmeansIterStep?: number;
  /** k-means convergence threshold on the largest centroid move (default 1e-4). */
  kmeansTol?: number;
  /** Text tokens before the video tokens, attended densely and not clustered (default 0). */
  prefixTokens?: number;
  /** The per-layer centroid cache; without one every call is a cold start. */
  cache?: CentroidCache;
  /** This call's key in the cache (default: `layer` when given, else 0 — the reference keys by layer index). */
  cacheKey?: LayerKey;
  /** Start from the cached centroids when the cache has a fitting entry (default true). */
  warmStart?: boolean;
  /** Run k-means during dense warm-up calls too, so the cache is warm when sparse calls start (default false). */
  zeroStepKmeansInit?: boolean;
  /** Seed of the k-means initial samples (default 0). */
  seed?: Seed;
  /** A plan from `planSvg2` for these inputs; skips planning. */
  plan?: Svg2Plan;
}

/** What k-means produced for a call (sets = B·H; labels cover the video tokens only). */
export interface Svg2Clustering {
  readonly qClusters: number;
  readonly kClusters: number;
  /** sets·N_video labels. */
  readonly qLabels: Int32Array;
  readonly kLabels: Int32Array;
  /** sets·C sizes. */
  readonly qSizes: Int32Array;
  readonly kSizes: Int32Array;
  /** sets·C·D centroids. */
  readonly qCentroids: Float64Array;
  readonly kCentroids: Float64Array;
  readonly qIterations: number;
  readonly kIterations: number;
  /** Whether this call started from cached centroids. */
  readonly warmStart: boolean;
}

export interface Svg2Plan {
  readonly batch: number;
  readonly heads: number;
  readonly tokens: number;
  readonly prefixTokens: number;
  /** The dense warm-up applies: the call runs dense attention. */
  readonly dense: boolean;
  /** Present when k-means ran (always for sparse calls; in dense calls with zeroStepKmeansInit). */
  readonly clustering?: Svg2Clustering;
  /** sets·C_q·C_k cluster map of the video clusters (1 = computed); sparse calls only. */
  readonly map?: Uint8Array;
  /** Segments in permuted order: [prefix,] Q clusters × [prefix,] K clusters; sparse calls only. */
  readonly layout?: VariableBlockLayout;
  /** Gather permutations (permute.ts convention): Q by Q labels, K and V by K labels; sparse calls only. */
  readonly qPermutation?: Int32Array;
  readonly kPermutation?: Int32Array;
  /** Per (b, h): Σ M_ij·|Q_i|·|K_j| / N², prefix segments included (1 when dense). */
  readonly density: Float64Array;
}

export const SVG2_OPTION_KEYS = [
  'qClusters',
  'kClusters',
  'topP',
  'minKeyClusterRatio',
  'kmeansIterInit',
  'kmeansIterStep',
  'kmeansTol',
  'prefixTokens',
  'cache',
  'cacheKey',
  'warmStart',
  'zeroStepKmeansInit',
  'seed',
  'plan',
  ...DENSE_WARMUP_KEYS,
];

export interface ResolvedSvg2 {
  problem: AttentionProblem;
  prefixTokens: number;
  qClusters: number;
  kClusters: number;
  topP: number;
  minKeyClusterRatio: number;
  iterInit: number;
  iterStep: number;
  tol: number;
  warmStart: boolean;
  zeroStepKmeansInit: boolean;
  cacheKey: LayerKey;
  dense: boolean;
}

/** Shape and option checks shared by the CPU and GPU paths; cluster counts clamped to the video tokens. */
export function resolveSvg2(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  opts: Svg2Options = {},
): ResolvedSvg2 {
  const problem = resolveAttentionProblem(q, k, v, opts, SVG2_OPTION_KEYS);
  if (problem.causal) {
    throw new UnsupportedOptionError(
      'SVG2 is for bidirectional video attention; causal: true is not supported',
    );
  }
  if (problem.headsKv !== problem.headsQ) {
    throw new UnsupportedOptionError(
      `SVG2 clusters and permutes K and V per head, so every query head needs its own kv head; got ` +
        `${problem.headsQ} query heads and ${problem.headsKv} kv heads. Repeat k and v per query head first.`,
    );
  }
  if (problem.tokensQ !== problem.tokensKv) {
    throw new ShapeError(
      `SVG2 attends a clip to itself: q and k must have the same number of tokens; got Nq = ${problem.tokensQ}, Nk = ${problem.tokensKv}`,
    );
  }
  const prefixTokens = intOption(opts.prefixTokens, 'prefixTokens', 0, 0);
  const video = problem.tokensQ - prefixTokens;
  if (video < 1) {
    throw new ShapeError(
      `SVG2 clusters the video tokens: q has ${problem.tokensQ} tokens and prefixTokens is ${prefixTokens}, leaving none`,
    );
  }
  const topP = opts.topP ?? 0.9;
  const minKeyClusterRatio = opts.minKeyClusterRatio ?? 0;
  checkTopP(topP, minKeyClusterRatio);
  const tol = opts.kmeansTol ?? 1e-4;
  if (typeof tol !== 'number' || !(tol >= 0))
    throw new UnsupportedOptionError(`kmeansTol must be ≥ 0; got ${String(tol)}`);
  const cacheKey = opts.cacheKey ?? opts.layer ?? 0;
  if (typeof cacheKey !== 'number' && typeof cacheKey !== 'string') {
    throw new UnsupportedOptionError(`cacheKey must be a number or a string; got ${String(cacheKey)}`);
  }
  return {
    problem,
    prefixTokens,
    qClusters: Math.min(intOption(opts.qClusters, 'qClusters', 50, 1), video),
    kClusters: Math.min(intOption(opts.kClusters, 'kClusters', 200, 1), video),
    topP,
    minKeyClusterRatio,
    iterInit: intOption(opts.kmeansIterInit, 'kmeansIterInit', 50, 1),
    iterStep: intOption(opts.kmeansIterStep, 'kmeansIterStep', 2, 1),
    tol,
    warmStart: boolOption(opts.warmStart, 'warmStart', true),
    zeroStepKmeansInit: boolOption(opts.zeroStepKmeansInit, 'zeroStepKmeansInit', false),
    cacheKey,
    dense: isDenseWarmup(opts),
  };
}

/** The video tokens of every (b, h) as float64 points, set-major [B·H, N − P, D]. */
function videoPoints(t: Tensor, r: ResolvedSvg2): Float64Array {
  const { problem, prefixTokens: p } = r;
  const hnd = convertLayout(new Tensor(t.toFloat64(), t.shape, 'float64'), problem.layout, 'HND')
    .data as Float64Array;
  const n = problem.tokensQ;
  const d = problem.headDim;
  const sets = problem.batch * problem.headsQ;
  const out = new Float64Array(sets * (n - p) * d);
  for (let s = 0; s < sets; s++) out.set(hnd.subarray((s * n + p) * d, (s + 1) * n * d), s * (n - p) * d);
  return out;
}

/** k-means of Q and K with the cache (§3.2 step 1); updates the cache. */
function cluster(
  q: Tensor,
  k: Tensor,
  r: ResolvedSvg2,
  cache: CentroidCache | undefined,
  seed: Seed,
): Svg2Clustering {
  const { problem } = r;
  const sets = problem.batch * problem.headsQ;
  const shape = { sets, n: problem.tokensQ - r.prefixTokens, d: problem.headDim };
  const entryShape = { sets, d: shape.d, qClusters: r.qClusters, kClusters: r.kClusters };
  const cached = r.warmStart ? cache?.get(r.cacheKey, entryShape) : undefined;
  if (cached && (isGpuTensor(cached.q) || isGpuTensor(cached.k))) {
    throw new UnsupportedOptionError(
      `the centroid cache entry of layer ${String(r.cacheKey)} holds GPU centroids (written by a GPU call); ` +
        'a host call cannot start from them. Use one CentroidCache per backend.',
    );
  }
  const maxIters = cached ? r.iterStep : r.iterInit;
  const root = Rng.fromSeed(seed);
  const qk = kmeans(videoPoints(q, r), shape, {
    clusters: r.qClusters,
    maxIters,
    tol: r.tol,
    init: cached?.q as Float64Array | undefined,
    seed: root.split(0),
  });
  const kk = kmeans(videoPoints(k, r), shape, {
    clusters: r.kClusters,
    maxIters,
    tol: r.tol,
    init: cached?.k as Float64Array | undefined,
    seed: root.split(1),
  });
  cache?.set(r.cacheKey, { ...entryShape, q: qk.centroids, k: kk.centroids });
  return {
    qClusters: r.qClusters,
    kClusters: r.kClusters,
    qLabels: qk.labels,
    kLabels: kk.labels,
    qSizes: qk.sizes,
    kSizes: kk.sizes,
    qCentroids: qk.centroids,
    kCentroids: kk.centroids,
    qIterations: qk.iterations,
    kIterations: kk.iterations,
    warmStart: cached !== undefined,
  };
}

/** What the map and layout need from k-means: counts, sizes and centroids (no labels). */
export type Svg2ClusterSummary = Pick<
  Svg2Clustering,
  'qClusters' | 'kClusters' | 'qSizes' | 'kSizes' | 'qCentroids' | 'kCentroids'
>;

/**
 * Everything after k-means that needs no labels, shared with the GPU path: the map (computed here from
 * the centroids unless given, e.g. read back from svg2-map-gpu.ts), the segments with the prefix, the
 * variable layout and the density per head.
 */
export function svg2Layout(
  r: ResolvedSvg2,
  c: Svg2ClusterSummary,
  given?: Uint8Array,
): Required<Pick<Svg2Plan, 'map' | 'layout' | 'density'>> {
  const { problem, prefixTokens: p } = r;
  const { batch, headsQ: heads, headDim: d } = problem;
  const sets = batch * heads;
  const { qClusters: cq, kClusters: ck } = c;
  const map =
    given ??
    svg2ClusterMap(
      c.qCentroids,
      c.kCentroids,
      c.kSizes,
      { sets, qClusters: cq, kClusters: ck, d },
      { topP: r.topP, minKeyClusterRatio: r.minKeyClusterRatio, smScale: problem.smScale },
    );
  const extra = p > 0 ? 1 : 0;
  const cqe = cq + extra;
  const cke = ck + extra;
  const qSizes = new Int32Array(sets * cqe);
  const kSizes = new Int32Array(sets * cke);
  const full = new Uint8Array(sets * cqe * cke);
  const density = new Float64Array(sets);
  for (let s = 0; s < sets; s++) {
    if (extra) {
      qSizes[s * cqe] = p;
      kSizes[s * cke] = p;
    }
    qSizes.set(c.qSizes.subarray(s * cq, (s + 1) * cq), s * cqe + extra);
    kSizes.set(c.kSizes.subarray(s * ck, (s + 1) * ck), s * cke + extra);
    for (let i = 0; i < cqe; i++) {
      for (let j = 0; j < cke; j++) {
        const text = i < extra || j < extra;
        full[(s * cqe + i) * cke + j] = text ? 1 : map[(s * cq + i - extra) * ck + j - extra];
      }
    }
    density[s] = clusterMapDensity(full, qSizes, kSizes, s, cqe, cke);
  }
  const layout = layoutFromSegments({
    qSizes,
    kSizes,
    map: new Tensor(full, [batch, heads, cqe, cke], 'bool'),
  });
  return { map, layout, density };
}

/**
 * The gather permutations from the labels (§3.2 step 4): prefix tokens first, then the video tokens in
 * the stable counting sort of their labels — Q by Q labels, K (and V) by K labels.
 */
export function svg2Permutations(
  r: ResolvedSvg2,
  c: Pick<Svg2Clustering, 'qClusters' | 'kClusters' | 'qLabels' | 'kLabels'>,
): { qPermutation: Int32Array; kPermutation: Int32Array } {
  const { batch, headsQ: heads, tokensQ: n } = r.problem;
  const p = r.prefixTokens;
  const sets = batch * heads;
  const nv = n - p;
  const qPermutation = new Int32Array(sets * n);
  const kPermutation = new Int32Array(sets * n);
  for (let s = 0; s < sets; s++) {
    for (const [labels, perm, clusters] of [
      [c.qLabels, qPermutation, c.qClusters],
      [c.kLabels, kPermutation, c.kClusters],
    ] as const) {
      const { order } = sortByLabel(labels.subarray(s * nv, (s + 1) * nv), clusters);
      for (let r0 = 0; r0 < p; r0++) perm[s * n + r0] = r0;
      for (let r0 = 0; r0 < nv; r0++) perm[s * n + p + r0] = p + order[r0];
    }
  }
  return { qPermutation, kPermutation };
}

/** The plan of one SVG2 call on host tensors (module comment). */
export function planSvg2(q: Tensor, k: Tensor, v: Tensor, opts: Svg2Options = {}): Svg2Plan {
  const r = resolveSvg2(q, k, v, opts);
  const { batch, headsQ: heads, tokensQ: tokens } = r.problem;
  const base = { batch, heads, tokens, prefixTokens: r.prefixTokens };
  if (r.dense) {
    const clustering = r.zeroStepKmeansInit ? cluster(q, k, r, opts.cache, opts.seed ?? 0) : undefined;
    return { ...base, dense: true, clustering, density: new Float64Array(batch * heads).fill(1) };
  }
  const clustering = cluster(q, k, r, opts.cache, opts.seed ?? 0);
  return {
    ...base,
    dense: false,
    clustering,
    ...svg2Layout(r, clustering),
    ...svg2Permutations(r, clustering),
  };
}

/**
 * Which keys a plan keeps, in the original token order, as a `metrics.recall` predicate: prefix rows
 * and columns always; video query i and key j iff the map keeps (label(i), label(j)).
 */
export function svg2KeepPredicate(plan: Svg2Plan): KeepPredicate {
  const c = plan.clustering;
  if (plan.dense || !c || !plan.map) return () => true;
  const { prefixTokens: p, tokens: n, heads } = plan;
  const nv = n - p;
  const map = plan.map;
  return (b, h, i, j) => {
    if (i < p || j < p) return true;
    const s = b * heads + h;
    return map[(s * c.qClusters + c.qLabels[s * nv + i - p]) * c.kClusters + c.kLabels[s * nv + j - p]] === 1;
  };
}

/** The plan's keep mask as a bool tensor [B, H, N, N] in the original order (for the float64 oracle). */
export function svg2Mask(plan: Svg2Plan): Tensor<'bool'> {
  return maskFromPredicate(plan.batch, plan.heads, plan.tokens, svg2KeepPredicate(plan));
}
