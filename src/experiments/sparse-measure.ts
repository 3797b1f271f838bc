/**
 * Measurement helpers of the sparse-attention evaluation (sparse-eval.ts): exact float64 attention for a
 * set of query rows of one head, and the accuracy a key mask gives on those rows — attention recall (the
 * softmax mass it keeps), and the relative L1 and cosine similarity of the masked output against the
 * exact one. The masked output of a row is its exact softmax renormalised over the kept keys, which is
 * what a block-sparse kernel computes for that mask (blockSparseAttention equals the masked float64
 * oracle; its tests), so a mask can be scored without running the kernel.
 */
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { forEachSoftmaxRow } from '../attention/reference.js';

/** Exact attention of some query rows of one head (b = 0). */
export interface OracleRows {
  readonly rows: Int32Array;
  readonly n: number;
  readonly d: number;
  /** rows.length × n softmax probabilities. */
  readonly probs: Float64Array;
  /** rows.length × d outputs. */
  readonly out: Float64Array;
  /** The head's V, n × d, float64. */
  readonly v: Float64Array;
}

/** The query rows scored: all of them (count 0 or ≥ n), else `count` distinct rows drawn with `rng`, ascending. */
export function evaluationRows(n: number, count: number, rng: Rng): Int32Array {
  if (count <= 0 || count >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.min(n - i - 1, Math.floor(rng.uniform() * (n - i)));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count).sort();
}

/** One head of a [1, H, N, D] tensor as its own [1, 1, N, D] float64 tensor. */
export function headSlice(t: Tensor, h: number, rows?: Int32Array): Tensor<'float64'> {
  const [, , n, d] = t.shape;
  const src = t.data;
  const pick = rows ?? Int32Array.from({ length: n }, (_, i) => i);
  const out = new Float64Array(pick.length * d);
  for (const [r, i] of pick.entries()) for (let c = 0; c < d; c++) out[r * d + c] = src[(h * n + i) * d + c];
  return new Tensor(out, [1, 1, pick.length, d], 'float64');
}

/** Float64 softmax rows and outputs of head h for the given query rows. */
export function oracleRows(q: Tensor, k: Tensor, v: Tensor, h: number, rows: Int32Array): OracleRows {
  const [, , n, d] = q.shape;
  const probs = new Float64Array(rows.length * n);
  const out = new Float64Array(rows.length * d);
  const vh = headSlice(v, h).data as Float64Array;
  forEachSoftmaxRow(headSlice(q, h, rows), headSlice(k, h), undefined, (row) => {
    probs.set(row.probs, row.i * n);
    for (let t = 0; t < row.count; t++) {
      const j = row.keys[t];
      const p = row.probs[j];
      for (let c = 0; c < d; c++) out[row.i * d + c] += p * vh[j * d + c];
    }
  });
  return { rows, n, d, probs, out, v: vh };
}

export interface MaskScore {
  /** Mean over the rows of the exact probability mass on kept keys. */
  recall: number;
  /** Σ|o_mask − o| / Σ|o| over the rows. */
  relL1: number;
  /** Cosine similarity of the masked and the exact outputs over the rows. */
  cosine: number;
}

/** Scores `keep(i, j)` (query row i, key j, original indices) on the oracle rows (module comment). */
export function scoreMask(o: OracleRows, keep: (i: number, j: number) => boolean): MaskScore {
  const { rows, n, d, probs, out, v } = o;
  const masked = new Float64Array(d);
  const kept = new Int32Array(n);
  let recall = 0;
  let err = 0;
  let mag = 0;
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (const [r, i] of rows.entries()) {
    masked.fill(0);
    let mass = 0;
    const pr = r * n;
    let count = 0;
    for (let j = 0; j < n; j++) {
      if (probs[pr + j] !== 0 && keep(i, j)) kept[count++] = j;
    }
    // the kept keys in ascending order, four at a time: each channel's sum is formed in the same order
    // as one key at a time (bit for bit), with a quarter of the loads and stores of `masked`
    let t = 0;
    for (; t + 4 <= count; t += 4) {
      const j0 = kept[t];
      const j1 = kept[t + 1];
      const j2 = kept[t + 2];
      const j3 = kept[t + 3];
      const p0 = probs[pr + j0];
      const p1 = probs[pr + j1];
      const p2 = probs[pr + j2];
      const p3 = probs[pr + j3];
      mass += p0;
      mass += p1;
      mass += p2;
      mass += p3;
      const o0 = j0 * d;
      const o1 = j1 * d;
      const o2 = j2 * d;
      const o3 = j3 * d;
      for (let c = 0; c < d; c++) {
        let m = masked[c];
        m += p0 * v[o0 + c];
        m += p1 * v[o1 + c];
        m += p2 * v[o2 + c];
        m += p3 * v[o3 + c];
        masked[c] = m;
      }
    }
    for (; t < count; t++) {
      const j = kept[t];
      const p = probs[pr + j];
      mass += p;
      for (let c = 0; c < d; c++) masked[c] += p * v[j * d + c];
    }
    recall += mass;
    for (let c = 0; c < d; c++) {
      const m = mass > 0 ? masked[c] / mass : 0;
      const e = out[r * d + c];
      err += Math.abs(m - e);
      mag += Math.abs(e);
      dot += m * e;
      aa += m * m;
      bb += e * e;
    }
  }
  return {
    recall: rows.length === 0 ? 1 : recall / rows.length,
    relL1: mag === 0 ? 0 : err / mag,
    cosine: aa === 0 || bb === 0 ? (aa === bb ? 1 : 0) : dot / Math.sqrt(aa * bb),
  };
}

/** Relative L1 of a computed output (host tensor [1, H, N, D]) against the oracle rows of head h. */
export function outputRelL1(o: OracleRows, computed: Tensor, h: number): number {
  const [, , n, d] = computed.shape;
  const data = computed.data;
  let err = 0;
  let mag = 0;
  for (const [r, i] of o.rows.entries()) {
    for (let c = 0; c < d; c++) {
      const e = o.out[r * d + c];
      err += Math.abs(data[(h * n + i) * d + c] - e);
      mag += Math.abs(e);
    }
  }
  return mag === 0 ? 0 : err / mag;
}
