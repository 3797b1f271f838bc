/**
 * Scaled dot-product attention (Vaswani et al. 2017, eq. 1) as a composite of recorded ops:
 * O = softmax(Q·Kᵀ·s + M)·V with s = 1/√d by default and M = −∞ above the diagonal when causal
 * (query i sees keys j ≤ i + (Lk − Lq), aligned at the bottom right as FlashAttention). Its gradient
 * is the chain of the ops' backwards; a fused kernel can replace it later under its own op name.
 */
import { formatShape } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { add, mul } from './elementwise.js';
import { f64 } from './broadcast.js';
import { matmul } from './matmul.js';
import { softmax } from './softmax.js';
import { transpose } from './shape-ops.js';
import { type Var, constant } from './var.js';

export interface AttentionOptions {
  causal?: boolean;
  /** Multiplies Q·Kᵀ (default 1/√d, d the head dimension). */
  scale?: number;
}

/** q [..., Lq, d], k [..., Lk, d], v [..., Lk, dv] → [..., Lq, dv]. */
export function scaledDotProductAttention(q: Var, k: Var, v: Var, opts: AttentionOptions = {}): Var {
  const d = q.shape[q.shape.length - 1];
  const lq = q.shape[q.shape.length - 2];
  const lk = k.shape[k.shape.length - 2];
  if (q.shape.length < 2 || k.shape[k.shape.length - 1] !== d || v.shape[v.shape.length - 2] !== lk) {
    throw new ShapeError(
      `attention needs q [..., Lq, d], k [..., Lk, d], v [..., Lk, dv]; got ${formatShape(q.shape)}, ${formatShape(k.shape)}, ${formatShape(v.shape)}`,
    );
  }
  let scores = mul(matmul(q, transpose(k)), opts.scale ?? 1 / Math.sqrt(d));
  if (opts.causal === true) {
    const mask = new Float64Array(lq * lk);
    for (let i = 0; i < lq; i++) for (let j = i + lk - lq + 1; j < lk; j++) mask[i * lk + j] = -Infinity;
    scores = add(scores, constant(f64(mask, [lq, lk])));
  }
  return matmul(softmax(scores), v);
}
