/**
 * A seeded synthetic "video attention" workload (sparse_attention.md §5): Q/K/V for F×H×W latent tokens
 * (frame-major, as every video DiT flattens video) plus optional prefix (text) tokens, with the three
 * head types the sparse methods are judged on.
 *
 * Every video token carries, in separate groups of channels,
 * - Fourier features of its frame t, row y and column x: φ(c) = [cos ω_m c, sin ω_m c]_m, so the dot
 *   product of two tokens' features is Σ_m cos(ω_m·Δc), which peaks where the coordinates match. The
 *   frequencies are geometric from π/n to π (n the axis length): with the few channels a head has, that
 *   family keeps the largest gap between the peak and every other offset (checked over n = 8…32);
 * - an embedding of the object it shows: one of `objects` moving discs (seeded radius, start and
 *   velocity, bouncing off the frame border; later discs are drawn on top) or the background. The
 *   embeddings are orthonormal, so different objects have dot product 0;
 * - and independent Gaussian noise in every channel of Q and of K.
 *
 * A head type is a choice of strengths β (in nats: the scaled logit σ·q·k gains β·mean_m cos(ω_m Δ) from
 * a positional group, and β from a matching object):
 * - `spatial`: strong t, mild y/x → attention stays within the query's frame, mostly nearby;
 * - `temporal`: strong y/x, weak t → attention goes to the same position in every frame;
 * - `semantic`: strong embedding → attention goes to tokens of the same object anywhere in the clip.
 * V carries 2·(the object embedding) plus unit Gaussian noise (§5). Prefix tokens are Gaussian in Q, K
 * and V (text is not positional), with label −1.
 *
 * Denoising steps: `step` s > 0 returns Q_s = Q_0 + drift·(ε_1 + … + ε_s) and likewise K, with fresh
 * Gaussian ε per step (V does not change), so consecutive steps differ by a small drift, which is what
 * SVG2's centroid cache relies on (§3.2). Every draw comes from `Rng.fromSeed(seed)` splits: the same
 * options give the same bits.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { Rng, type Seed } from '../../core/rng.js';
import { Tensor } from '../../core/tensor.js';
import { forEachSoftmaxRow } from '../reference.js';

export type VideoHeadKind = 'spatial' | 'temporal' | 'semantic';
export const VIDEO_HEAD_KINDS: readonly VideoHeadKind[] = ['spatial', 'temporal', 'semantic'];

export interface VideoWorkloadOptions {
  frames: number;
  height: number;
  width: number;
  /** Text/context tokens placed before the video tokens (default 0). */
  prefixTokens?: number;
  /** Head dim D (default 64, §5); needs room for every feature group (at least 32 with 5 objects). */
  headDim?: number;
  /** One entry per head (default one of each kind). */
  heads?: readonly VideoHeadKind[];
  /** Moving discs (default 5, §5). */
  objects?: number;
  /** Std of the Gaussian noise added to every channel of Q and K (default 0.2). */
  noise?: number;
  /** Denoising step index s ≥ 0 (default 0). */
  step?: number;
  /** Std per element of the change of Q and K from one step to the next (default 0.1). */
  drift?: number;
  /** Default 0. */
  seed?: Seed;
  /** Element type of q, k, v (default 'float32'). */
  dtype?: 'float32' | 'float64';
}

export interface VideoWorkload {
  /** [1, heads, N, D] each, HND, N = prefixTokens + frames·height·width. */
  readonly q: Tensor<'float32' | 'float64'>;
  readonly k: Tensor<'float32' | 'float64'>;
  readonly v: Tensor<'float32' | 'float64'>;
  readonly heads: readonly VideoHeadKind[];
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly prefixTokens: number;
  /** Per token: frame, row, column (−1 for prefix tokens). */
  readonly frameOf: Int32Array;
  readonly rowOf: Int32Array;
  readonly colOf: Int32Array;
  /** Per token: 0 background, 1…objects a disc, −1 a prefix token. */
  readonly labelOf: Int32Array;
}

/** Strengths β (nats) of the feature groups per head type; see the module comment. */
const HEAD_STRENGTHS: Readonly<Record<VideoHeadKind, { t: number; y: number; x: number; e: number }>> = {
  spatial: { t: 24, y: 3, x: 3, e: 1 },
  temporal: { t: 1, y: 16, x: 16, e: 1 },
  semantic: { t: 0.5, y: 0.5, x: 0.5, e: 14 },
};

/** The channel groups of one head: [offset, frequencies] per axis, and the embedding's offset and size. */
interface FeatureLayout {
  t: { at: number; m: number };
  y: { at: number; m: number };
  x: { at: number; m: number };
  e: { at: number; size: number };
}

function featureLayout(d: number, objects: number): FeatureLayout {
  const mt = Math.max(1, Math.round(d / 16));
  const my = Math.max(1, Math.round((3 * d) / 32));
  const e = Math.max(objects + 1, Math.round(d / 4));
  const used = 2 * mt + 4 * my + e;
  if (used > d) {
    throw new ShapeError(
      `videoWorkload needs headDim ≥ ${used} for ${objects} objects (t, y, x Fourier features and an ` +
        `embedding of ${e} channels); got headDim ${d}. Use a larger headDim or fewer objects.`,
    );
  }
  return {
    t: { at: 0, m: mt },
    y: { at: 2 * mt, m: my },
    x: { at: 2 * mt + 2 * my, m: my },
    e: { at: 2 * mt + 4 * my, size: e },
  };
}

/** Geometric frequencies from π down to π/n (one when m = 1: π/n keeps a single peak over the axis). */
function frequencies(n: number, m: number): number[] {
  if (m === 1) return [Math.PI / Math.max(n, 1)];
  return Array.from({ length: m }, (_, i) => (Math.PI / n) * n ** ((m - 1 - i) / (m - 1)));
}

function positiveInt(value: unknown, name: string, min: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new UnsupportedOptionError(`${name} must be an integer ≥ ${min}; got ${String(value)}`);
  }
  return value as number;
}

function nonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new UnsupportedOptionError(`${name} must be a finite number ≥ 0; got ${String(value)}`);
  }
  return value;
}

/** Which object each video token shows: seeded discs moving linearly and bouncing off the borders. */
function objectLabels(rng: Rng, frames: number, height: number, width: number, objects: number): Int32Array {
  const labels = new Int32Array(frames * height * width);
  const side = Math.min(height, width);
  const discs = Array.from({ length: objects }, () => {
    const r = side * (0.12 + 0.1 * rng.uniform());
    const angle = 2 * Math.PI * rng.uniform();
    const speed = ((0.5 + rng.uniform()) * side) / Math.max(frames, 1) / 2;
    return {
      r,
      y: r + (height - 2 * r) * rng.uniform(),
      x: r + (width - 2 * r) * rng.uniform(),
      vy: speed * Math.sin(angle),
      vx: speed * Math.cos(angle),
    };
  });
  const bounce = (p: number, lo: number, hi: number): number => {
    if (hi <= lo) return lo;
    const span = hi - lo;
    let u = (p - lo) % (2 * span);
    if (u < 0) u += 2 * span;
    return lo + (u <= span ? u : 2 * span - u);
  };
  for (let f = 0; f < frames; f++) {
    for (const [o, disc] of discs.entries()) {
      const cy = bounce(disc.y + f * disc.vy, disc.r, height - disc.r);
      const cx = bounce(disc.x + f * disc.vx, disc.r, width - disc.r);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          if ((y + 0.5 - cy) ** 2 + (x + 0.5 - cx) ** 2 <= disc.r * disc.r) {
            labels[(f * height + y) * width + x] = o + 1;
          }
        }
      }
    }
  }
  return labels;
}

/** `count` orthonormal vectors of length `size` (Gram–Schmidt on Gaussian draws), row-major. */
function orthonormal(rng: Rng, count: number, size: number): Float64Array {
  const out = new Float64Array(count * size);
  for (let i = 0; i < count; i++) {
    const row = out.subarray(i * size, (i + 1) * size);
    for (;;) {
      rng.fillNormal(row);
      for (let j = 0; j < i; j++) {
        const prev = out.subarray(j * size, (j + 1) * size);
        let dot = 0;
        for (let c = 0; c < size; c++) dot += row[c] * prev[c];
        for (let c = 0; c < size; c++) row[c] -= dot * prev[c];
      }
      let norm = 0;
      for (let c = 0; c < size; c++) norm += row[c] * row[c];
      norm = Math.sqrt(norm);
      if (norm > 1e-6) {
        for (let c = 0; c < size; c++) row[c] /= norm;
        break;
      }
    }
  }
  return out;
}

/** Generates the workload; see the module comment for what each head type does. */
export function videoWorkload(opts: VideoWorkloadOptions): VideoWorkload {
  const frames = positiveInt(opts.frames, 'frames', 1);
  const height = positiveInt(opts.height, 'height', 1);
  const width = positiveInt(opts.width, 'width', 1);
  const prefix = positiveInt(opts.prefixTokens ?? 0, 'prefixTokens', 0);
  const d = positiveInt(opts.headDim ?? 64, 'headDim', 1);
  const objects = positiveInt(opts.objects ?? 5, 'objects', 0);
  const noise = nonNegative(opts.noise ?? 0.2, 'noise');
  const drift = nonNegative(opts.drift ?? 0.1, 'drift');
  const step = positiveInt(opts.step ?? 0, 'step', 0);
  const heads = [...(opts.heads ?? VIDEO_HEAD_KINDS)];
  if (heads.length === 0 || !heads.every((h) => VIDEO_HEAD_KINDS.includes(h))) {
    throw new UnsupportedOptionError(
      `heads must be a non-empty list of ${VIDEO_HEAD_KINDS.map((h) => `'${h}'`).join(', ')}; got ${JSON.stringify(opts.heads)}`,
    );
  }
  const dtype = opts.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new UnsupportedOptionError(`dtype must be 'float32' or 'float64'; got ${JSON.stringify(dtype)}`);
  }
  const layout = featureLayout(d, objects);
  const root = Rng.fromSeed(opts.seed ?? 0);
  const sceneRng = root.split(0);
  const video = frames * height * width;
  const n = prefix + video;
  const videoLabels = objectLabels(sceneRng, frames, height, width, objects);
  const embeddings = orthonormal(sceneRng, objects + 1, layout.e.size);

  const frameOf = new Int32Array(n).fill(-1);
  const rowOf = new Int32Array(n).fill(-1);
  const colOf = new Int32Array(n).fill(-1);
  const labelOf = new Int32Array(n).fill(-1);
  for (let i = 0; i < video; i++) {
    const x = i % width;
    const y = Math.floor(i / width) % height;
    const f = Math.floor(i / (width * height));
    frameOf[prefix + i] = f;
    rowOf[prefix + i] = y;
    colOf[prefix + i] = x;
    labelOf[prefix + i] = videoLabels[i];
  }

  const H = heads.length;
  const Store = dtype === 'float64' ? Float64Array : Float32Array;
  const q = new Store(H * n * d);
  const k = new Store(H * n * d);
  const v = new Store(H * n * d);
  const axes = [
    { group: layout.t, coord: frameOf, w: frequencies(frames, layout.t.m), key: 't' as const },
    { group: layout.y, coord: rowOf, w: frequencies(height, layout.y.m), key: 'y' as const },
    { group: layout.x, coord: colOf, w: frequencies(width, layout.x.m), key: 'x' as const },
  ];
  const sqrtD = Math.sqrt(d);
  const feature = new Float64Array(d);
  for (const [h, kind] of heads.entries()) {
    const beta = HEAD_STRENGTHS[kind];
    const noiseRng = root.split(1).split(h);
    for (let i = 0; i < n; i++) {
      feature.fill(0);
      if (labelOf[i] >= 0) {
        // σ·q·k = (1/√D)·amp²·Σ_m cos(ω_m Δ) = β·mean_m cos(ω_m Δ) with amp² = β·√D / m
        for (const { group, coord, w, key } of axes) {
          const amp = Math.sqrt((beta[key] * sqrtD) / group.m);
          for (let m = 0; m < group.m; m++) {
            feature[group.at + 2 * m] = amp * Math.cos(w[m] * coord[i]);
            feature[group.at + 2 * m + 1] = amp * Math.sin(w[m] * coord[i]);
          }
        }
        const amp = Math.sqrt(beta.e * sqrtD);
        const e = embeddings.subarray(labelOf[i] * layout.e.size, (labelOf[i] + 1) * layout.e.size);
        for (let c = 0; c < layout.e.size; c++) feature[layout.e.at + c] = amp * e[c];
      }
      const o = (h * n + i) * d;
      const text = labelOf[i] < 0;
      for (let c = 0; c < d; c++) {
        q[o + c] = text ? noiseRng.normal() : feature[c] + noise * noiseRng.normal();
        k[o + c] = text ? noiseRng.normal() : feature[c] + noise * noiseRng.normal();
      }
      for (let c = 0; c < d; c++) {
        const inEmbedding = !text && c >= layout.e.at && c < layout.e.at + layout.e.size;
        const signal = inEmbedding ? 2 * embeddings[labelOf[i] * layout.e.size + c - layout.e.at] : 0;
        v[o + c] = signal + noiseRng.normal();
      }
    }
  }
  for (let s = 1; s <= step; s++) {
    const stepRng = root.split(2).split(s);
    for (let i = 0; i < q.length; i++) q[i] += drift * stepRng.normal();
    for (let i = 0; i < k.length; i++) k[i] += drift * stepRng.normal();
  }
  const shape = [1, H, n, d];
  return {
    q: new Tensor(q, shape, dtype),
    k: new Tensor(k, shape, dtype),
    v: new Tensor(v, shape, dtype),
    heads,
    frames,
    height,
    width,
    prefixTokens: prefix,
    frameOf,
    rowOf,
    colOf,
    labelOf,
  };
}

/** How a head's exact attention mass falls on the three structures the head types are built from. */
export interface HeadMass {
  /** Mean over video query rows of the mass on keys in the query's frame. */
  sameFrame: number;
  /** … on keys at the query's (row, column), in any frame. */
  samePosition: number;
  /** … on keys showing the query's object (background included), anywhere. */
  sameObject: number;
  /** Mean fraction of all keys a row needs, largest first, to cover 90 % of its mass (§5: 26 % for semantic heads). */
  keysFor90: number;
}

/**
 * The float64 oracle's attention mass per head on same-frame, same-position and same-object keys,
 * averaged over the video query rows (every `rowStride`-th one, to bound the cost on large workloads).
 * This is the check that a head type behaves as §5 says.
 */
export function videoHeadMass(w: VideoWorkload, rowStride = 1): HeadMass[] {
  const stride = positiveInt(rowStride, 'rowStride', 1);
  const [, H, n, d] = w.q.shape;
  const rows: number[] = [];
  for (let i = w.prefixTokens; i < n; i += stride) rows.push(i);
  const qs = new (w.q.dtype === 'float64' ? Float64Array : Float32Array)(H * rows.length * d);
  const qData = w.q.data;
  for (let h = 0; h < H; h++) {
    for (const [r, i] of rows.entries()) {
      for (let c = 0; c < d; c++) qs[(h * rows.length + r) * d + c] = qData[(h * n + i) * d + c];
    }
  }
  const sums = w.heads.map(() => ({ sameFrame: 0, samePosition: 0, sameObject: 0, keysFor90: 0 }));
  const { frameOf, rowOf, colOf, labelOf } = w;
  const sorted = new Float64Array(n);
  const qSub = new Tensor(qs, [1, H, rows.length, d], w.q.dtype);
  forEachSoftmaxRow(qSub, w.k, undefined, (row) => {
    const i = rows[row.i];
    const s = sums[row.h];
    for (let t = 0; t < row.count; t++) {
      const j = row.keys[t];
      const p = row.probs[j];
      if (frameOf[j] === frameOf[i]) s.sameFrame += p;
      if (rowOf[j] === rowOf[i] && colOf[j] === colOf[i]) s.samePosition += p;
      if (labelOf[j] === labelOf[i]) s.sameObject += p;
    }
    sorted.set(row.probs);
    sorted.sort().reverse();
    let mass = 0;
    let used = 0;
    while (used < n && mass < 0.9) mass += sorted[used++];
    s.keysFor90 += used / n;
  });
  const count = Math.max(rows.length, 1);
  return sums.map((s) => ({
    sameFrame: s.sameFrame / count,
    samePosition: s.samePosition / count,
    sameObject: s.sameObject / count,
    keysFor90: s.keysFor90 / count,
  }));
}
