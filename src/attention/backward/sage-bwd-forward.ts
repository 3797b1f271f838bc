/**
 * SageBwd's forward pass on the CPU (SA3 §4.1, Alg. 2; sageattention.md §8.1), step by step:
 *
 * 1. K ← K − K_m (K_m the token mean, kept for the backward), then Q, K, V INT8 per block
 *    (block-operands.ts).
 * 2. Per query row i and key block j (FlashAttention-2's online softmax in natural-log units):
 *    S_ij = Q̂_i·K̂_jᵀ·s_Q·s_K·σ; m_ij = max(m_i,j−1, rowmax(S_ij)); P̃_ij = exp(S_ij − m_ij);
 *    l_ij = e^(m_i,j−1 − m_ij)·l_i,j−1 + rowsum(P̃_ij).
 * 3. P̃ per token: s_P = exp(rowmax(S_ij) − m_ij)/127 — the largest P̃ of the row in this block, read off
 *    the softmax maxima with no extra max pass — and P̂ = round(P̃/s_P) ∈ [0, 127]. (SA3 judged a static
 *    1/127 scale, the inference choice, too inaccurate for training.)
 * 4. O_ij = e^(m_i,j−1 − m_ij)·O_i,j−1 + (P̂_ij·V̂_j)·s_P·s_V, the integer product exact.
 * 5. O_i = O_i / l_i and L_i = m_i + log l_i, the statistic the backward recomputes P from.
 *
 * Everything that is not a quantizer is float64 (the GPU kernels use fp32 there); the quantizers are
 * float32 as the references'. With quant 'none' steps 1–4 keep float64 values and P̃ unquantized, which
 * is FlashAttention-2's forward in float64.
 *
 * Masking: keys past a row's causal window are not read (causal.ts). A row that sees no key gives
 * O = 0 and L = −∞, never NaN. L is in the smoothed-logit frame (the true LSE is L + σ·q_i·K_m, §6.4);
 * the backward needs exactly this frame.
 */
import { visibleKeys } from '../causal.js';
import {
  type BlockOperand,
  type SageBwdDims,
  blockOperand,
  rowLogits,
  smoothTokens,
} from './block-operands.js';
import type { ResolvedSageBwdOptions } from './options.js';
import { quantizeInt } from '../../numerics/int-quant.js';

/** What the forward leaves for the backward. */
export interface SageBwdSaved {
  readonly dims: SageBwdDims;
  readonly opts: ResolvedSageBwdOptions;
  readonly q: BlockOperand;
  /** The smoothed K, quantized. */
  readonly k: BlockOperand;
  readonly v: BlockOperand;
  /** K_m [bh, d]: the subtracted token mean (zeros without smoothK). */
  readonly kMean: Float64Array;
  /** The unquantized V [bh, nk, dv], the FP16 operand of dP = dO·Vᵀ. */
  readonly vRaw: Float64Array;
  /** L = m + log l per row [bh, nq] (smoothed frame; −∞ for a row that sees no key). */
  readonly lse: Float64Array;
}

export interface SageBwdForwardResult {
  /** O [bh, nq, dv]. */
  readonly out: Float64Array;
  readonly saved: SageBwdSaved;
}

/** How many leading keys query row i reads: all Nk, or its causal window (causal.ts). */
export function rowVisibleKeys(i: number, dims: SageBwdDims, opts: ResolvedSageBwdOptions): number {
  return visibleKeys(i, {
    causal: opts.causal,
    causalAlignment: opts.causalAlignment,
    tokensQ: dims.nq,
    tokensKv: dims.nk,
  });
}

/** Alg. 2 on q [bh, nq, d], k [bh, nk, d], v [bh, nk, dv] (float64, row-major). */
export function sageBwdForward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  dims: SageBwdDims,
  opts: ResolvedSageBwdOptions,
): SageBwdForwardResult {
  const { bh, nq, nk, d, dv } = dims;
  const { quant, rounding, blockQ, blockK } = opts;
  const smooth = opts.smoothK ? smoothTokens(k, bh, nk, d, quant) : null;
  const kMean = smooth?.mean ?? new Float64Array(bh * d);
  const qOp = blockOperand(q, bh, nq, d, { quant, block: blockQ, rounding });
  const kOp = blockOperand(smooth?.smoothed ?? k, bh, nk, d, { quant, block: blockK, rounding });
  const vOp = blockOperand(v, bh, nk, dv, { quant, block: blockK, rounding });
  const sigma = opts.smScale;

  const out = new Float64Array(bh * nq * dv);
  const lse = new Float64Array(bh * nq);
  const s = new Float64Array(blockK);
  const pTilde = new Float32Array(blockK);
  const pCodes = new Int8Array(blockK);
  const acc = new Float64Array(dv);
  const pv = new Float64Array(dv);
  const vv = vOp.values;

  for (let b = 0; b < bh; b++) {
    for (let i = 0; i < nq; i++) {
      const seen = rowVisibleKeys(i, dims, opts);
      let m = -Infinity;
      let l = 0;
      acc.fill(0);
      for (let j0 = 0; j0 < seen; j0 += blockK) {
        const cols = Math.min(blockK, seen - j0);
        rowLogits(qOp, kOp, b, i, j0, cols, sigma, s);
        let tileMax = -Infinity;
        for (let c = 0; c < cols; c++) tileMax = Math.max(tileMax, s[c]);
        const mNew = Math.max(m, tileMax);
        const alpha = m === -Infinity ? 0 : Math.exp(m - mNew);
        let rowSum = 0;
        pv.fill(0);
        const vBase = (b * nk + j0) * dv;
        if (quant === 'int8') {
          for (let c = 0; c < cols; c++) {
            const p = Math.exp(s[c] - mNew);
            pTilde[c] = p;
            rowSum += p;
          }
          const sP = Math.fround(Math.exp(tileMax - mNew) / 127);
          const codes = pCodes.subarray(0, cols);
          if (sP > 0) quantizeInt(pTilde.subarray(0, cols), sP, { bits: 8, rounding, out: codes });
          else codes.fill(0);
          const factor = sP * vOp.scales[b * vOp.blocks + Math.floor(j0 / blockK)];
          for (let c = 0; c < cols; c++) {
            const p = codes[c];
            if (p === 0) continue;
            for (let x = 0; x < dv; x++) pv[x] += p * vv[vBase + c * dv + x];
          }
          for (let x = 0; x < dv; x++) pv[x] *= factor;
        } else {
          for (let c = 0; c < cols; c++) {
            const p = Math.exp(s[c] - mNew);
            rowSum += p;
            for (let x = 0; x < dv; x++) pv[x] += p * vv[vBase + c * dv + x];
          }
        }
        l = alpha * l + rowSum;
        for (let x = 0; x < dv; x++) acc[x] = alpha * acc[x] + pv[x];
        m = mNew;
      }
      const row = b * nq + i;
      if (!(l > 0)) {
        // no visible key (l = 0): zeros and L = −∞; a NaN l (NaN input) propagates
        lse[row] = Number.isNaN(l) ? NaN : -Infinity;
        if (Number.isNaN(l)) out.fill(NaN, row * dv, (row + 1) * dv);
        continue;
      }
      for (let x = 0; x < dv; x++) out[row * dv + x] = acc[x] / l;
      lse[row] = m + Math.log(l);
    }
  }
  return { out, saved: { dims, opts, q: qOp, k: kOp, v: vOp, kMean, vRaw: v, lse } };
}
