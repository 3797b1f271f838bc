/**
 * `sageAttentionTrainable(q, k, v, opts)`: SageBwd, the 8-bit trainable attention of SA3 §4
 * (sageattention.md §8), as one autograd op with a hand-written backward. The forward is Alg. 2
 * (attention/backward/sage-bwd-forward.ts: INT8 Q, K, V per block with K smoothed, P̃ INT8 per token)
 * and saves the quantized blocks and L = m + log l; the backward is Alg. 3
 * (attention/backward/sage-bwd-backward.ts: dP = dO·Vᵀ in FP16, S recompute, dV, dQ, dK INT8 per block,
 * the smooth-K term in dQ). Registered as 'sage_attention_trainable' on the cpu backend, so a WebGPU
 * kernel can be registered later under the same name.
 *
 * `quant: 'none'` runs the same tiled algorithm in float64 with no quantizer: the full-precision
 * reference arm (FlashAttention-2 forward and backward), whose gradients equal those of the composite
 * scaledDotProductAttention to float64 rounding.
 *
 * Shapes: q [..., Nq, D], k [..., Nk, D], v [..., Nk, Dv] with identical leading axes (batch, heads:
 * each leading index is an independent attention problem) → [..., Nq, Dv]. Nk ≥ 1.
 *
 * NaN policy: plain propagation. A NaN or ±inf input makes its INT8 block's scale NaN (the quantizers'
 * rule), so every output and gradient that reads that block is NaN and nothing else is. Finite inputs,
 * including all-zero blocks, fully masked causal rows (zeros) and lengths that are not a multiple of the
 * block, never give NaN.
 */
import { ShapeError } from '../core/errors.js';
import { formatShape } from '../core/tensor.js';
import type { SageBwdDims } from '../attention/backward/block-operands.js';
import { type SageBwdOptions, resolveSageBwdOptions } from '../attention/backward/options.js';
import { sageBwdBackward } from '../attention/backward/sage-bwd-backward.js';
import { type SageBwdSaved, sageBwdForward } from '../attention/backward/sage-bwd-forward.js';
import { f64 } from './broadcast.js';
import { applyOp, registerOp } from './op-table.js';
import type { F64, Var } from './var.js';

export type { SageBwdOptions } from '../attention/backward/options.js';

function problemDims(q: F64, k: F64, v: F64): SageBwdDims {
  const r = q.shape.length;
  const lead = q.shape.slice(0, -2);
  const same = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  const ok =
    r >= 2 &&
    k.shape.length === r &&
    v.shape.length === r &&
    same(k.shape.slice(0, -2), lead) &&
    same(v.shape.slice(0, -2), lead) &&
    k.shape[r - 1] === q.shape[r - 1] &&
    v.shape[r - 2] === k.shape[r - 2] &&
    k.shape[r - 2] >= 1;
  if (!ok) {
    throw new ShapeError(
      `sageAttentionTrainable needs q [..., Nq, D], k [..., Nk, D], v [..., Nk, Dv] with the same leading ` +
        `axes and Nk ≥ 1; got q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`,
    );
  }
  return {
    bh: lead.reduce((a, b) => a * b, 1),
    nq: q.shape[r - 2],
    nk: k.shape[r - 2],
    d: q.shape[r - 1],
    dv: v.shape[r - 1],
  };
}

registerOp<SageBwdOptions>('sage_attention_trainable', 'cpu', {
  forward([q, k, v], attrs) {
    const dims = problemDims(q, k, v);
    const opts = resolveSageBwdOptions(attrs, dims.d);
    const { out, saved } = sageBwdForward(
      q.data as Float64Array,
      k.data as Float64Array,
      v.data as Float64Array,
      dims,
      opts,
    );
    return { out: f64(out, [...q.shape.slice(0, -1), dims.dv]), saved };
  },
  backward(g, { inputs: [q, k, v], out, saved }) {
    const grads = sageBwdBackward(saved as SageBwdSaved, out.data as Float64Array, g.data as Float64Array);
    return [f64(grads.dq, q.shape), f64(grads.dk, k.shape), f64(grads.dv, v.shape)];
  },
});

/**
 * SageBwd attention O = softmax(σ·QKᵀ [+ causal mask])·V with INT8 forward and backward (see the module
 * comment; every option and its default is documented on SageBwdOptions).
 */
export function sageAttentionTrainable(q: Var, k: Var, v: Var, opts: SageBwdOptions = {}): Var {
  return applyOp('sage_attention_trainable', [q, k, v], opts);
}
