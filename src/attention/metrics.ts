/**
 * The accuracy metrics every sparq figure uses (SA1 §4.3, SA2 App. A.7; notes §9): cosine similarity,
 * relative L1 and RMSE of an output against the float64 oracle, plus the attention recall of a sparse
 * mask (the softmax probability mass it covers, as SVG2 reports for its masks; sparse-attention notes
 * §3.3 and §4).
 *
 * All of them flatten their inputs, compute in float64, and let NaN propagate (a NaN anywhere makes the
 * metric NaN), so a broken kernel can never look accurate.
 */
import { DTypeError, ShapeError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import { resolveAttentionProblem } from './options.js';
import { broadcastStrides, forEachSoftmaxRow, type ReferenceOptions } from './reference.js';

/** What the elementwise metrics accept: a flat array, or a host tensor of any dtype (decoded). */
export type MetricInput = Float32Array | Float64Array | Tensor;

/** Keep predicate for `recall`: true when key j is kept for query i of head h in batch b. */
export type KeepPredicate = (b: number, h: number, i: number, j: number) => boolean;

/**
 * Cosine similarity Σ a·b / (‖a‖·‖b‖), clamped to [-1, 1] against rounding. Edge cases, chosen so that
 * a zero output is scored honestly: both all-zero → 1 (identical); exactly one all-zero → 0 (no
 * direction in common); empty inputs count as all-zero.
 */
function cosine(a: MetricInput, b: MetricInput): number {
  const [x, y] = pair(a, b, 'cosine');
  let dot = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < x.length; i++) {
    dot += x[i] * y[i];
    xx += x[i] * x[i];
    yy += y[i] * y[i];
  }
  if (Number.isNaN(xx) || Number.isNaN(yy)) return NaN;
  if (xx === 0 && yy === 0) return 1;
  if (xx === 0 || yy === 0) return 0;
  return Math.max(-1, Math.min(1, dot / (Math.sqrt(xx) * Math.sqrt(yy))));
}

/**
 * Relative L1 error Σ|out − ref| / Σ|ref| (SA1 §4.3). When the reference is all zero the ratio is
 * undefined: it is 0 if `out` is all zero too, and Infinity otherwise (any error is infinitely large
 * relative to nothing); NaN stays NaN.
 */
function relL1(out: MetricInput, ref: MetricInput): number {
  const [o, r] = pair(out, ref, 'relL1');
  let err = 0;
  let mag = 0;
  for (let i = 0; i < o.length; i++) {
    err += Math.abs(o[i] - r[i]);
    mag += Math.abs(r[i]);
  }
  if (mag === 0) return err === 0 ? 0 : err > 0 ? Infinity : NaN;
  return err / mag;
}

/** Root-mean-square error √(Σ(a − b)² / n); 0 for empty inputs. */
function rmse(a: MetricInput, b: MetricInput): number {
  const [x, y] = pair(a, b, 'rmse');
  if (x.length === 0) return 0;
  let sq = 0;
  for (let i = 0; i < x.length; i++) sq += (x[i] - y[i]) ** 2;
  return Math.sqrt(sq / x.length);
}

/**
 * Attention recall of a key mask: the mean over (b, h, query row) of the oracle's softmax probability
 * mass on the kept keys, i.e. how much of exact attention a sparse kernel that computes only those keys
 * would see. `keep` is a bool tensor broadcastable to [B, Hq, Nq, Nk] or a predicate. `opts` are the
 * oracle's (layout, causal and its alignment, smScale, an additional mask): keys they drop carry no mass,
 * so keeping or skipping them does not change recall. Rows that see no key have no mass to recall and
 * are left out of the mean; when no row is left (Nq = 0, or all rows fully masked) the recall is 1.
 */
function recall(q: Tensor, k: Tensor, keep: Tensor | KeepPredicate, opts?: ReferenceOptions): number {
  let keepAt: KeepPredicate;
  if (keep instanceof Tensor) {
    if (keep.dtype !== 'bool') {
      throw new DTypeError(`recall's keep mask must be dtype bool (1 = kept); got ${keep.dtype}`);
    }
    const p = resolveAttentionProblem(q, k, k, opts, ['mask']);
    const [sb, sh, si, sj] = broadcastStrides(keep.shape, [p.batch, p.headsQ, p.tokensQ, p.tokensKv], 'keep');
    const kept = keep.data;
    keepAt = (b, h, i, j) => kept[b * sb + h * sh + i * si + j * sj] !== 0;
  } else {
    keepAt = keep;
  }
  let total = 0;
  let rows = 0;
  forEachSoftmaxRow(q, k, opts, (row) => {
    if (row.count === 0) return;
    let mass = 0;
    for (let t = 0; t < row.count; t++) {
      const j = row.keys[t];
      if (keepAt(row.b, row.h, row.i, j)) mass += row.probs[j];
    }
    total += mass;
    rows++;
  });
  return rows === 0 ? 1 : total / rows;
}

export const metrics = { cosine, relL1, rmse, recall };

function values(x: MetricInput): Float32Array | Float64Array {
  return x instanceof Tensor ? x.toFloat64() : x;
}

function pair(
  a: MetricInput,
  b: MetricInput,
  what: string,
): [Float32Array | Float64Array, Float32Array | Float64Array] {
  if (a instanceof Tensor && b instanceof Tensor && a.shape.join() !== b.shape.join()) {
    throw new ShapeError(
      `${what} compares tensors of one shape; got ${formatShape(a.shape)} and ${formatShape(b.shape)}. ` +
        `Convert layouts first if one is HND and the other NHD.`,
    );
  }
  const x = values(a);
  const y = values(b);
  if (x.length !== y.length) {
    throw new ShapeError(`${what} compares inputs of equal length; got ${x.length} and ${y.length}`);
  }
  return [x, y];
}
