/**
 * Batched Euclidean k-means on the CPU, in float64: SVG2's `batch_kmeans_Euclid` (sparse_attention.md
 * §3.2 step 1, `svg/kmeans_utils.py`), one independent problem per (batch, head).
 *
 * - Initialisation: C points drawn uniformly with replacement from each set (`torch.randint`), from a
 *   seeded RNG, or given centroids (the warm start from the per-layer cache).
 * - Assignment: label = argmin_c ‖c‖² − 2·x·c (‖x‖² is the same for every c), ties to the lowest index.
 * - Update: each centroid becomes the mean of its members; an empty cluster keeps its centroid.
 * - Stop: after an iteration whose largest centroid move ‖c_new − c‖, over all sets and clusters, is
 *   below `tol` (1e-4) — the stop is global over the batch, as the reference's `.max()` — or after
 *   `maxIters`. Like the reference, a converged run returns the centroids its last assignment used (the
 *   labels are exactly their nearest centroids), while a run that hits maxIters returns the updated
 *   centroids and the labels of the assignment before that update.
 */
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { Rng, type Seed } from '../../core/rng.js';

export interface KMeansOptions {
  /** Clusters C per set. */
  clusters: number;
  /** Iteration cap (default 100, `batch_kmeans_Euclid`'s default; SVG2 uses 50 at init and 2 per step). */
  maxIters?: number;
  /** Convergence threshold on the largest centroid move (default 1e-4). */
  tol?: number;
  /** Starting centroids, sets·C·D values; when absent, C points per set are sampled with `seed`. */
  init?: Float64Array | Float32Array;
  /** Seed (or stream) of the initial sample (default 0); set s draws from `Rng.fromSeed(seed).split(s)`. */
  seed?: Seed | Rng;
}

export interface KMeansResult {
  /** sets·N labels in [0, C). */
  readonly labels: Int32Array;
  /** sets·C·D centroids. */
  readonly centroids: Float64Array;
  /** sets·C cluster sizes (of `labels`). */
  readonly sizes: Int32Array;
  /** Iterations run (≥ 1). */
  readonly iterations: number;
  /** Whether the last iteration's largest centroid move was below tol. */
  readonly converged: boolean;
  /** That largest move. */
  readonly shift: number;
}

/** The problem sizes of a call; `points` holds sets·n·d values (set-major, then point, then channel). */
export interface KMeansShape {
  readonly sets: number;
  readonly n: number;
  readonly d: number;
}

export function checkKMeansOptions(
  shape: KMeansShape,
  opts: KMeansOptions,
): Required<Omit<KMeansOptions, 'init'>> {
  const { sets, n, d } = shape;
  for (const [name, value] of [
    ['sets', sets],
    ['n', n],
    ['d', d],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new ShapeError(`k-means needs ${name} ≥ 1; got ${value}`);
  }
  const c = opts.clusters;
  if (!Number.isSafeInteger(c) || c < 1) {
    throw new UnsupportedOptionError(`clusters must be an integer ≥ 1; got ${String(c)}`);
  }
  if (c > n) {
    throw new ShapeError(
      `k-means cannot make ${c} clusters from ${n} points per set; ask for at most ${n} clusters ` +
        `(svg2Attention clamps its cluster counts to the number of tokens)`,
    );
  }
  const maxIters = opts.maxIters ?? 100;
  if (!Number.isSafeInteger(maxIters) || maxIters < 1) {
    throw new UnsupportedOptionError(`maxIters must be an integer ≥ 1; got ${String(opts.maxIters)}`);
  }
  const tol = opts.tol ?? 1e-4;
  if (typeof tol !== 'number' || !(tol >= 0)) {
    throw new UnsupportedOptionError(`tol must be a number ≥ 0; got ${String(opts.tol)}`);
  }
  if (opts.init !== undefined && opts.init.length !== sets * c * d) {
    throw new ShapeError(
      `init must hold sets·clusters·d = ${sets}·${c}·${d} = ${sets * c * d} centroid values; got ${opts.init.length}`,
    );
  }
  return { clusters: c, maxIters, tol, seed: opts.seed ?? 0 };
}

/** The initial sample: for each set, C indices drawn uniformly with replacement from [0, n). */
export function kmeansInitIndices(sets: number, n: number, clusters: number, seed: Seed | Rng): Int32Array {
  const root = seed instanceof Rng ? seed : Rng.fromSeed(seed);
  const idx = new Int32Array(sets * clusters);
  for (let s = 0; s < sets; s++) {
    const rng = root.split(s);
    for (let c = 0; c < clusters; c++) idx[s * clusters + c] = Math.min(n - 1, Math.floor(rng.uniform() * n));
  }
  return idx;
}

function assertFinite(points: ArrayLike<number>, what: string): void {
  for (let i = 0; i < points.length; i++) {
    if (!Number.isFinite(points[i])) {
      throw new NonFiniteInputError(
        `${what} element ${i} is ${points[i]}; k-means cannot place non-finite points (a NaN would ` +
          `poison its cluster's centroid). Fix the input before clustering.`,
      );
    }
  }
}

/** Nearest-centroid labels of every point of one set (ties → lowest index). */
function assign(
  x: ArrayLike<number>,
  xBase: number,
  n: number,
  d: number,
  cent: Float64Array,
  cBase: number,
  clusters: number,
  cNorm: Float64Array,
  labels: Int32Array,
  lBase: number,
): void {
  for (let c = 0; c < clusters; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += cent[cBase + c * d + j] ** 2;
    cNorm[c] = s;
  }
  for (let i = 0; i < n; i++) {
    const xo = xBase + i * d;
    let best = Infinity;
    let arg = 0;
    for (let c = 0; c < clusters; c++) {
      const co = cBase + c * d;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += x[xo + j] * cent[co + j];
      const dist = cNorm[c] - 2 * dot;
      if (dist < best) {
        best = dist;
        arg = c;
      }
    }
    labels[lBase + i] = arg;
  }
}

/**
 * k-means of `shape.sets` independent sets of n points in d dimensions (module comment). `points` is
 * set-major: point i of set s starts at (s·n + i)·d. Non-finite points are a NonFiniteInputError; more
 * clusters than points a ShapeError.
 */
export function kmeans(points: ArrayLike<number>, shape: KMeansShape, opts: KMeansOptions): KMeansResult {
  const o = checkKMeansOptions(shape, opts);
  const { sets, n, d } = shape;
  const C = o.clusters;
  if (points.length !== sets * n * d) {
    throw new ShapeError(
      `points must hold sets·n·d = ${sets}·${n}·${d} = ${sets * n * d} values; got ${points.length}`,
    );
  }
  assertFinite(points, 'points');
  let cent = new Float64Array(sets * C * d);
  if (opts.init) {
    assertFinite(opts.init, 'init');
    cent.set(opts.init);
  } else {
    const idx = kmeansInitIndices(sets, n, C, o.seed);
    for (let s = 0; s < sets; s++) {
      for (let c = 0; c < C; c++) {
        const from = (s * n + idx[s * C + c]) * d;
        for (let j = 0; j < d; j++) cent[(s * C + c) * d + j] = points[from + j];
      }
    }
  }
  const labels = new Int32Array(sets * n);
  const sizes = new Int32Array(sets * C);
  const cNorm = new Float64Array(C);
  let next = new Float64Array(sets * C * d);
  let iterations = 0;
  let shift = Infinity;
  let converged = false;
  for (let it = 0; it < o.maxIters; it++) {
    iterations = it + 1;
    next.fill(0);
    sizes.fill(0);
    for (let s = 0; s < sets; s++) {
      assign(points, s * n * d, n, d, cent, s * C * d, C, cNorm, labels, s * n);
      for (let i = 0; i < n; i++) {
        const c = labels[s * n + i];
        sizes[s * C + c]++;
        const to = (s * C + c) * d;
        const from = (s * n + i) * d;
        for (let j = 0; j < d; j++) next[to + j] += points[from + j];
      }
    }
    shift = 0;
    for (let sc = 0; sc < sets * C; sc++) {
      const count = sizes[sc];
      let move = 0;
      for (let j = 0; j < d; j++) {
        const e = sc * d + j;
        next[e] = count === 0 ? cent[e] : next[e] / count;
        move += (next[e] - cent[e]) ** 2;
      }
      shift = Math.max(shift, Math.sqrt(move));
    }
    if (shift < o.tol) {
      converged = true;
      break;
    }
    [cent, next] = [next, cent];
  }
  return { labels, centroids: cent, sizes, iterations, converged, shift };
}

/** Mean squared distance of each point to its labelled centroid (the k-means objective per point). */
export function kmeansInertia(
  points: ArrayLike<number>,
  shape: KMeansShape,
  labels: Int32Array,
  centroids: ArrayLike<number>,
  clusters: number,
): number {
  const { sets, n, d } = shape;
  let total = 0;
  for (let s = 0; s < sets; s++) {
    for (let i = 0; i < n; i++) {
      const x = (s * n + i) * d;
      const c = (s * clusters + labels[s * n + i]) * d;
      for (let j = 0; j < d; j++) total += (points[x + j] - centroids[c + j]) ** 2;
    }
  }
  return total / (sets * n);
}
