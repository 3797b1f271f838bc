/**
 * SVG2's cluster-level map (sparse_attention.md §3.2 steps 2–3, `kmeans_utils.py::identify_dynamic_map`):
 *
 * - Criticality. S_ij = σ·c^q_i·c^k_j (σ = 1/√D by default, the reference's `/ D**0.5`), and
 *   P′_ij = |K_j|·exp(S_ij) / Σ_k |K_k|·exp(S_ik): a softmax over key clusters weighted by their sizes,
 *   computed in float64 with the row max subtracted. The max is taken over the non-empty key clusters
 *   (the reference takes it over all and clamps the sum at 1e-12); the two agree unless every non-empty
 *   cluster's weight underflows, where ours still normalises. Query-cluster sizes do not enter.
 * - Top-p. Each row sorted by P′ descending (ties by cluster index; torch.sort makes no promise); a
 *   cluster is kept while the mass before it is ≤ p, so the cluster that crosses p is kept (inclusive,
 *   unlike SpargeAttn's TopCdf); the top-1 is always kept, and the top ⌊minKeyClusterRatio·C_k⌋ are forced.
 * - Density accounting: Σ_ij M_ij·|Q_i|·|K_j| / (N_q·N_k) (`density_calculation`).
 */
import { UnsupportedOptionError } from '../../core/errors.js';

export interface ClusterMapOptions {
  /** Top-p budget p (the reference's `top_p_kmeans`, default 0.9). */
  topP: number;
  /** Fraction of key clusters always kept, the top ⌊ratio·C_k⌋ by P′ (`min_kc_ratio`, default 0). */
  minKeyClusterRatio: number;
  /** Logit scale σ. */
  smScale: number;
}

export function checkTopP(topP: unknown, ratio: unknown): void {
  if (typeof topP !== 'number' || !(topP >= 0 && topP <= 1)) {
    throw new UnsupportedOptionError(
      `topP must be in [0, 1] (the attention mass to keep); got ${String(topP)}`,
    );
  }
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) {
    throw new UnsupportedOptionError(`minKeyClusterRatio must be in [0, 1]; got ${String(ratio)}`);
  }
}

/**
 * P′ for one query centroid against every key centroid of its set, into `out` (length C_k).
 * `qc` / `kc` hold the centroids; `qi` / `kBase` are element offsets.
 */
export function clusterCriticality(
  qc: ArrayLike<number>,
  qi: number,
  kc: ArrayLike<number>,
  kBase: number,
  kSizes: ArrayLike<number>,
  sBase: number,
  kClusters: number,
  d: number,
  smScale: number,
  out: Float64Array,
): Float64Array {
  let m = -Infinity;
  for (let j = 0; j < kClusters; j++) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += qc[qi + c] * kc[kBase + j * d + c];
    out[j] = smScale * dot;
    if (kSizes[sBase + j] > 0 && out[j] > m) m = out[j];
  }
  let sum = 0;
  for (let j = 0; j < kClusters; j++) {
    out[j] = kSizes[sBase + j] > 0 ? kSizes[sBase + j] * Math.exp(out[j] - m) : 0;
    sum += out[j];
  }
  for (let j = 0; j < kClusters; j++) out[j] = sum > 0 ? out[j] / sum : 0;
  return out;
}

/** The top-p rule on one row of P′ (module comment); writes 1 into `keep` for kept clusters. */
export function topPSelect(
  probs: Float64Array,
  topP: number,
  forced: number,
  keep: Uint8Array,
  kOffset = 0,
): void {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  let before = 0;
  for (const [r, j] of order.entries()) {
    if (r === 0 || r < forced || before <= topP) keep[kOffset + j] = 1;
    before += probs[j];
  }
}

/**
 * The dynamic map M [sets, C_q, C_k] (1 = compute the cluster pair) from centroids and key-cluster sizes.
 */
export function svg2ClusterMap(
  qCentroids: ArrayLike<number>,
  kCentroids: ArrayLike<number>,
  kSizes: ArrayLike<number>,
  shape: { sets: number; qClusters: number; kClusters: number; d: number },
  o: ClusterMapOptions,
): Uint8Array {
  checkTopP(o.topP, o.minKeyClusterRatio);
  const { sets, qClusters: cq, kClusters: ck, d } = shape;
  const map = new Uint8Array(sets * cq * ck);
  const probs = new Float64Array(ck);
  const forced = Math.floor(o.minKeyClusterRatio * ck);
  for (let s = 0; s < sets; s++) {
    for (let i = 0; i < cq; i++) {
      clusterCriticality(
        qCentroids,
        (s * cq + i) * d,
        kCentroids,
        s * ck * d,
        kSizes,
        s * ck,
        ck,
        d,
        o.smScale,
        probs,
      );
      topPSelect(probs, o.topP, forced, map, (s * cq + i) * ck);
    }
  }
  return map;
}

/** Σ M_ij·|Q_i|·|K_j| / (Σ|Q_i|·Σ|K_j|) for one set (the reference's `density_calculation`). */
export function clusterMapDensity(
  map: Uint8Array,
  qSizes: ArrayLike<number>,
  kSizes: ArrayLike<number>,
  set: number,
  qClusters: number,
  kClusters: number,
): number {
  let kept = 0;
  let nq = 0;
  let nk = 0;
  for (let j = 0; j < kClusters; j++) nk += kSizes[set * kClusters + j];
  for (let i = 0; i < qClusters; i++) {
    const qi = qSizes[set * qClusters + i];
    nq += qi;
    for (let j = 0; j < kClusters; j++) {
      if (map[(set * qClusters + i) * kClusters + j]) kept += qi * kSizes[set * kClusters + j];
    }
  }
  return nq * nk === 0 ? 0 : kept / (nq * nk);
}
