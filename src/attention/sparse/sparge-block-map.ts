/**
 * SpargeAttn stage 1: the sparse block prediction of `get_block_map_meansim[_fuse_quant]`
 * (sparse_attention.md §1.2), on the CPU. For each (b, h), with Q blocks of blockQ tokens and K blocks
 * of blockK tokens (the last of each partial):
 *
 * 1. K smoothing: K − k̄ with k̄ the token mean per (b, kv head); a channel that is constant over the
 *    tokens has mean exactly that constant, so identical keys smooth to exact zeros.
 * 2. Pooling: the mean of each block's tokens, dividing by the true count of a partial block.
 * 3. Self-similarity: the mean of ALL b² pairwise cosine similarities of a block's tokens, diagonal
 *    included, computed as ‖Σ x̂‖²/b² (= Σᵢⱼ x̂ᵢ·x̂ⱼ / b²) with x̂ the unit-norm tokens. A zero token
 *    has no direction: its cosine with a non-zero token is 0 and with another zero token 1 (identical
 *    tokens are similar), so zero norms never give NaN. A block of identical tokens has similarity
 *    exactly 1, and every similarity is clamped to [−1, 1] against rounding, so θ = 1 makes every block
 *    non-similar (dense). Similar iff strictly > θ.
 * 4. Compressed scores Ŝ = q̄·k̄ᵀ/√D (the reference scales by D^−½ whatever the attention scale), −∞
 *    for non-similar K blocks and, when causal, for blocks with j ≥ (i + 1)·blockQ/blockK; natural-base
 *    row softmax. A row whose scores are all −∞ selects nothing (only its fix blocks below).
 * 5. Selection on the row sorted in descending order (stable: ties keep the lower index first):
 *    TopCdf keeps n = #{prefix sums ≤ τ} ('exclusive', `searchsorted(right=True)`) or 1 + #{prefix
 *    sums < τ} ('inclusive'); TopK keeps n = ⌊topk·#Kblocks⌋; at least 1. The probabilities and prefix
 *    sums are rounded to float32, and τ and topk·#Kblocks are float32 values, as in the reference's
 *    float32 tensors, so the counts match its block maps at the boundaries.
 * 6. Fix blocks: every column of a non-similar K block and every row of a non-similar Q block is kept.
 * 7. Causal: the block-causal mask is applied; attentionSink: column 0 is kept.
 *
 * GQA: query head h pools and scores against kv head kvHeadOf(h)'s key blocks.
 *
 * NaN policy: a NaN in q or k makes the similarity of the blocks it falls in NaN, which is not > θ, so
 * those blocks are non-similar and always computed (with K smoothing a NaN key spoils k̄ and with it
 * every K block of the head); NaN scores sort last and are never selected by rank. The map is always
 * valid, and the attention output is NaN exactly where dense attention's would be for the kept keys.
 */
import { convertLayout } from '../../core/layout.js';
import { assertOptionKeys } from '../../quant/option-checks.js';
import { Tensor } from '../../core/tensor.js';
import { kvHeadOf, resolveAttentionProblem } from '../options.js';
import {
  type ResolvedSpargeMap,
  SPARGE_MAP_KEYS,
  type SpargeBlockMapOptions,
  resolveSpargeMap,
} from './sparge-options.js';

/** The θ- and τ-independent part of stage 1, computed once per (q, k) and reused by calibration. */
export interface SpargeBlockStatistics {
  batch: number;
  heads: number;
  headsKv: number;
  qBlocks: number;
  kBlocks: number;
  blockQ: number;
  blockK: number;
  /** Self-similarity of each Q block [B, H, qBlocks]. */
  simQ: Float64Array;
  /** Self-similarity of each K block [B, Hkv, kBlocks] (of the smoothed keys when smoothK). */
  simK: Float64Array;
  /** Unmasked compressed scores q̄·k̄ᵀ/√D [B, H, qBlocks, kBlocks]. */
  scores: Float64Array;
}

export interface SpargeMapStats {
  /** Fraction of Q blocks (over B·H) that are similar. */
  qSimilar: number;
  /** Fraction of K blocks (over B·Hkv) that are similar. */
  kSimilar: number;
  /** Fraction of the blocks the block-causal mask allows (all blocks when not causal) that are kept. */
  density: number;
  /** The same density per query head, averaged over the batch. */
  headDensity: Float64Array;
}

export interface SpargeBlockMap {
  /** [B, H, ⌈Nq/blockQ⌉, ⌈Nk/blockK⌉], 1 = compute the block. */
  map: Tensor<'bool'>;
  stats: SpargeMapStats;
}

/**
 * SpargeAttn's stage-1 block map for host q [B, H, Nq, D] and k [B, Hkv, Nk, D] (or NHD). See the file
 * comment for the algorithm and SpargeBlockMapOptions for the options and their defaults.
 */
export function spargeBlockMap(q: Tensor, k: Tensor, opts: SpargeBlockMapOptions = {}): SpargeBlockMap {
  assertOptionKeys(opts, SPARGE_MAP_KEYS, 'spargeBlockMap');
  const { problem, resolved } = resolveSpargeMapCall(q, k, opts);
  const stats = spargeBlockStatistics(q, k, { ...resolved, headDim: problem.headDim });
  return selectBlocks(stats, resolved);
}

/**
 * Checks q and k as attention checks them (shapes, dtypes, GQA; v stands in as k) and resolves the
 * stage-1 options for their head count.
 */
export function resolveSpargeMapCall(
  q: { shape: readonly number[]; dtype: Tensor['dtype'] },
  k: { shape: readonly number[]; dtype: Tensor['dtype'] },
  o: SpargeBlockMapOptions,
) {
  const problem = resolveAttentionProblem(q, k, k, { layout: o.layout, causal: o.causal });
  return { problem, resolved: resolveSpargeMap(o, problem.headsQ) };
}

/**
 * Steps 1–4 of stage 1 without the thresholds: similarities of every Q and K block and the unmasked
 * compressed scores.
 */
export function spargeBlockStatistics(
  q: Tensor,
  k: Tensor,
  o: Pick<ResolvedSpargeMap, 'layout' | 'blockQ' | 'blockK' | 'smoothK'> & { headDim: number },
): SpargeBlockStatistics {
  const d = o.headDim;
  const qh = convertLayout(new Tensor(q.toFloat64(), q.shape, 'float64'), o.layout, 'HND');
  const kh = convertLayout(new Tensor(k.toFloat64(), k.shape, 'float64'), o.layout, 'HND');
  const [batch, heads, nq] = qh.shape;
  const [, headsKv, nk] = kh.shape;
  const qv = qh.data as Float64Array;
  const kv = kh.data as Float64Array;
  if (o.smoothK) subtractTokenMean(kv, batch * headsKv, nk, d);
  const qBlocks = Math.ceil(nq / o.blockQ);
  const kBlocks = Math.ceil(nk / o.blockK);
  const poolQ = new Float64Array(batch * heads * qBlocks * d);
  const poolK = new Float64Array(batch * headsKv * kBlocks * d);
  const simQ = new Float64Array(batch * heads * qBlocks);
  const simK = new Float64Array(batch * headsKv * kBlocks);
  poolAndSimilarity(qv, batch * heads, nq, d, o.blockQ, poolQ, simQ);
  poolAndSimilarity(kv, batch * headsKv, nk, d, o.blockK, poolK, simK);
  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(batch * heads * qBlocks * kBlocks);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const hk = kvHeadOf(h, heads, headsKv);
      for (let i = 0; i < qBlocks; i++) {
        const qi = ((b * heads + h) * qBlocks + i) * d;
        for (let j = 0; j < kBlocks; j++) {
          const kj = ((b * headsKv + hk) * kBlocks + j) * d;
          let dot = 0;
          for (let x = 0; x < d; x++) dot += poolQ[qi + x] * poolK[kj + x];
          scores[((b * heads + h) * qBlocks + i) * kBlocks + j] = dot * scale;
        }
      }
    }
  }
  return { batch, heads, headsKv, qBlocks, kBlocks, blockQ: o.blockQ, blockK: o.blockK, simQ, simK, scores };
}

/** K − k̄ in place per (b, kv head); a channel constant over the tokens gets its exact value as mean. */
function subtractTokenMean(x: Float64Array, sets: number, n: number, d: number): void {
  if (n === 0) return;
  for (let s = 0; s < sets; s++) {
    const base = s * n * d;
    for (let c = 0; c < d; c++) {
      let sum = 0;
      let constant = true;
      const first = x[base + c];
      for (let t = 0; t < n; t++) {
        const v = x[base + t * d + c];
        sum += v;
        if (v !== first) constant = false;
      }
      const mean = constant ? first : sum / n;
      for (let t = 0; t < n; t++) x[base + t * d + c] -= mean;
    }
  }
}

/**
 * Block means (true counts) and block self-similarities ‖Σ x̂‖²/b² with the zero-token rule of the file
 * comment; a block of bitwise-identical tokens gets exactly 1.
 */
function poolAndSimilarity(
  x: Float64Array,
  sets: number,
  n: number,
  d: number,
  block: number,
  pool: Float64Array,
  sim: Float64Array,
): void {
  const blocks = Math.ceil(n / block);
  const unitSum = new Float64Array(d);
  for (let s = 0; s < sets; s++) {
    for (let i = 0; i < blocks; i++) {
      const t0 = i * block;
      const t1 = Math.min(n, t0 + block);
      const count = t1 - t0;
      const p = (s * blocks + i) * d;
      unitSum.fill(0);
      let zeros = 0;
      let identical = true;
      for (let t = t0; t < t1; t++) {
        const row = (s * n + t) * d;
        let norm2 = 0;
        for (let c = 0; c < d; c++) {
          const v = x[row + c];
          pool[p + c] += v;
          norm2 += v * v;
          if (identical && v !== x[(s * n + t0) * d + c]) identical = false;
        }
        if (norm2 === 0) {
          zeros++;
          continue;
        }
        const inv = 1 / Math.sqrt(norm2);
        for (let c = 0; c < d; c++) unitSum[c] += x[row + c] * inv;
      }
      for (let c = 0; c < d; c++) pool[p + c] /= count;
      let value: number;
      if (identical) {
        value = 1;
      } else {
        let s2 = 0;
        for (let c = 0; c < d; c++) s2 += unitSum[c] * unitSum[c];
        value = (s2 + zeros * zeros) / (count * count);
      }
      sim[s * blocks + i] = Number.isNaN(value) ? NaN : Math.max(-1, Math.min(1, value));
    }
  }
}

/** Steps 4–7 of stage 1 on precomputed statistics: the block map for the thresholds of `o`. */
export function selectBlocks(st: SpargeBlockStatistics, o: ResolvedSpargeMap): SpargeBlockMap {
  const { batch, heads, headsKv, qBlocks, kBlocks } = st;
  const map = new Uint8Array(batch * heads * qBlocks * kBlocks);
  const prob = new Float64Array(kBlocks);
  const order = new Int32Array(kBlocks);
  const ratio = o.blockQ / o.blockK;
  const causalOk = (i: number, j: number) => !o.causal || j < (i + 1) * ratio;
  let qSimilar = 0;
  let kSimilar = 0;
  for (let s = 0; s < batch * headsKv * kBlocks; s++) if (st.simK[s] > simThresholdOfKv(o, st, s)) kSimilar++;
  const headKept = new Float64Array(heads);
  const headAllowed = new Float64Array(heads);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const theta = o.simThreshold[h];
      const hk = kvHeadOf(h, heads, headsKv);
      const kSim = (j: number) => st.simK[(b * headsKv + hk) * kBlocks + j] > theta;
      for (let i = 0; i < qBlocks; i++) {
        const qSim = st.simQ[(b * heads + h) * qBlocks + i] > theta;
        if (qSim) qSimilar++;
        const row = ((b * heads + h) * qBlocks + i) * kBlocks;
        // compressed softmax over the similar, causally visible K blocks
        let max = -Infinity;
        for (let j = 0; j < kBlocks; j++) {
          const ok = kSim(j) && causalOk(i, j);
          prob[j] = ok ? st.scores[row + j] : -Infinity;
          if (prob[j] > max) max = prob[j];
        }
        if (max > -Infinity) {
          let sum = 0;
          for (let j = 0; j < kBlocks; j++) {
            prob[j] = prob[j] === -Infinity ? 0 : Math.exp(prob[j] - max);
            sum += prob[j];
          }
          for (let j = 0; j < kBlocks; j++) prob[j] = Math.fround(prob[j] / sum);
          const n = Math.max(1, blockCount(prob, order, kBlocks, o, h));
          for (let t = 0; t < n; t++) map[row + order[t]] = 1;
        }
        // fix blocks: non-similar K columns and non-similar Q rows are always computed
        for (let j = 0; j < kBlocks; j++) if (!qSim || !kSim(j)) map[row + j] = 1;
        for (let j = 0; j < kBlocks; j++) {
          if (!causalOk(i, j)) map[row + j] = 0;
          else headAllowed[h]++;
        }
        if (o.attentionSink && kBlocks > 0) map[row] = 1;
        for (let j = 0; j < kBlocks; j++) headKept[h] += map[row + j];
      }
    }
  }
  const kept = headKept.reduce((a, x) => a + x, 0);
  const allowed = headAllowed.reduce((a, x) => a + x, 0);
  return {
    map: new Tensor(map, [batch, heads, qBlocks, kBlocks], 'bool'),
    stats: {
      qSimilar: batch * heads * qBlocks === 0 ? 0 : qSimilar / (batch * heads * qBlocks),
      kSimilar: batch * headsKv * kBlocks === 0 ? 0 : kSimilar / (batch * headsKv * kBlocks),
      density: allowed === 0 ? 0 : kept / allowed,
      headDensity: Float64Array.from(headKept, (x, h) => (headAllowed[h] === 0 ? 0 : x / headAllowed[h])),
    },
  };
}

/** θ for kv block index s of the statistics: a kv head's blocks use the first query head of its group. */
function simThresholdOfKv(o: ResolvedSpargeMap, st: SpargeBlockStatistics, s: number): number {
  const hk = Math.floor(s / st.kBlocks) % st.headsKv;
  return o.simThreshold[hk * (st.heads / st.headsKv)];
}

/**
 * Sorts `prob` descending into `order` (stable; NaN last) and returns how many of the top blocks the
 * rule keeps (before the at-least-one rule).
 */
function blockCount(
  prob: Float64Array,
  order: Int32Array,
  kBlocks: number,
  o: ResolvedSpargeMap,
  h: number,
): number {
  for (let j = 0; j < kBlocks; j++) order[j] = j;
  const key = (j: number) => (Number.isNaN(prob[j]) ? -Infinity : prob[j]);
  const sorted = Array.from(order).sort((a, b) => key(b) - key(a) || a - b);
  order.set(sorted);
  if (o.topk) return Math.floor(Math.fround(Math.fround(o.topk[h]) * kBlocks));
  const tau = Math.fround((o.cdfThreshold as Float64Array)[h]);
  let cdf = 0;
  let n = 0;
  for (let t = 0; t < kBlocks; t++) {
    cdf = Math.fround(cdf + prob[order[t]]);
    if (o.cdfRule === 'exclusive' ? cdf <= tau : cdf < tau) n++;
    else break;
  }
  return o.cdfRule === 'exclusive' ? n : Math.min(kBlocks, n + 1);
}
