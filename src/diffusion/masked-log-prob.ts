/**
 * The one reduction every masked-diffusion objective needs (LLaDA 1.5 Eq. 4 and 14; LLaDA
 * GUIDELINES.md pre-training and SFT losses): weighted sums of log p_θ(x_i | x_t) over masked
 * positions, grouped per estimate,
 *
 *   out[g] = Σ_{rows r of group g} Σ_i w[r, i] · log softmax(logits[r, i, 0..V))[x_i],
 *
 * where w is 0 at unmasked positions (they are skipped) and carries the estimator's weight (1/t,
 * R/l, 1/n, 1/p_mask, …) at masked ones. Only the first V classes enter the softmax: the predictor
 * never predicts [MASK] — MDLM's "zero masking probabilities" (Sahoo et al. 2024 §3.2.1, the SUBS
 * parameterisation), so a model whose head also scores [MASK] still defines a distribution over the
 * V real tokens. One fused op instead of gather + log-softmax + mask + sum keeps the tape short.
 *
 * Backward: ∂out[g]/∂logits[r, i, j] = w[r, i]·(1[j = x_i] − softmax_j) for j < V, 0 for j ≥ V.
 */
import { ShapeError } from '../core/errors.js';
import { formatShape } from '../core/tensor.js';
import { f64 } from '../autograd/broadcast.js';
import { applyOp, registerOp } from '../autograd/op-table.js';
import type { Var } from '../autograd/var.js';

export interface MaskedLogProbOptions {
  /** Target token per position, [B·T]; read only where the weight is non-zero. */
  readonly targets: Int32Array;
  /** Weight per position, [B·T]; 0 skips the position. */
  readonly weights: Float64Array;
  /** Number of real tokens V (the softmax runs over classes 0..V). */
  readonly vocabSize: number;
  /** Group of each row (sequence) b, [B]; default: one group per row. */
  readonly groups?: Int32Array;
  /** Number of groups G (default B). */
  readonly groupCount?: number;
}

interface Attrs {
  targets: Int32Array;
  weights: Float64Array;
  vocabSize: number;
  groups: Int32Array;
  groupCount: number;
}

interface Saved {
  /** Per position with a non-zero weight: its log-normaliser over the V real classes. */
  lse: Float64Array;
}

registerOp<Attrs>('masked_log_prob', 'cpu', {
  forward([logits], { targets, weights, vocabSize: v, groups, groupCount }) {
    const c = logits.shape[2];
    const t = logits.shape[1];
    const x = logits.data as Float64Array;
    const out = new Float64Array(groupCount);
    const lse = new Float64Array(weights.length);
    for (let p = 0; p < weights.length; p++) {
      const w = weights[p];
      if (w === 0) continue;
      const o = p * c;
      let max = -Infinity;
      for (let j = 0; j < v; j++) if (x[o + j] > max) max = x[o + j];
      let s = 0;
      for (let j = 0; j < v; j++) s += Math.exp(x[o + j] - max);
      const z = max + Math.log(s);
      lse[p] = z;
      out[groups[Math.floor(p / t)]] += w * (x[o + targets[p]] - z);
    }
    return { out: f64(out, [groupCount]), saved: { lse } satisfies Saved };
  },
  backward(g, { inputs: [logits], saved, attrs: { targets, weights, vocabSize: v, groups } }) {
    const { lse } = saved as Saved;
    const c = logits.shape[2];
    const t = logits.shape[1];
    const x = logits.data as Float64Array;
    const gx = new Float64Array(logits.size);
    for (let p = 0; p < weights.length; p++) {
      const w = weights[p];
      if (w === 0) continue;
      const scale = g.data[groups[Math.floor(p / t)]] * w;
      const o = p * c;
      for (let j = 0; j < v; j++) gx[o + j] = -scale * Math.exp(x[o + j] - lse[p]);
      gx[o + targets[p]] += scale;
    }
    return [f64(gx, logits.shape)];
  },
});

/** Grouped weighted log-likelihood sums of logits [B, T, C ≥ V] (see the module comment) → [G]. */
export function maskedLogProb(logits: Var, opts: MaskedLogProbOptions): Var {
  const shape = logits.shape;
  if (shape.length !== 3) {
    throw new ShapeError(`maskedLogProb needs logits [B, T, C]; got ${formatShape(shape)}`);
  }
  const [b, t, c] = shape;
  const v = opts.vocabSize;
  if (!Number.isSafeInteger(v) || v < 1 || v > c) {
    throw new ShapeError(
      `vocabulary mismatch: the predictor gives ${c} classes per position, the vocabulary has ${v} tokens; ` +
        `the head must score at least every real token`,
    );
  }
  if (opts.targets.length !== b * t || opts.weights.length !== b * t) {
    throw new ShapeError(
      `maskedLogProb: logits ${formatShape(shape)} need ${b * t} targets and weights; ` +
        `got ${opts.targets.length} and ${opts.weights.length}`,
    );
  }
  const groups = opts.groups ?? Int32Array.from({ length: b }, (_, i) => i);
  let groupCount = opts.groupCount ?? b;
  if (opts.groupCount === undefined && opts.groups !== undefined) {
    groupCount = 0;
    for (const gi of groups) groupCount = Math.max(groupCount, gi + 1);
  }
  if (groups.length !== b || groups.some((gi) => !(gi >= 0 && gi < groupCount))) {
    throw new ShapeError(`maskedLogProb: need one group in [0, ${groupCount}) per row of ${b}`);
  }
  for (let p = 0; p < b * t; p++) {
    if (opts.weights[p] !== 0 && !(opts.targets[p] >= 0 && opts.targets[p] < v)) {
      throw new ShapeError(
        `maskedLogProb: target ${opts.targets[p]} at position ${p} is outside the vocabulary 0..${v - 1}`,
      );
    }
  }
  return applyOp<Attrs>('masked_log_prob', [logits], {
    targets: opts.targets,
    weights: opts.weights,
    vocabSize: v,
    groups,
    groupCount,
  });
}
