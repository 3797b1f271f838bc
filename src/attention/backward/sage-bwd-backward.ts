/**
 * SageBwd's backward pass on the CPU (SA3 §4.2, Alg. 3; sageattention.md §8.2). Five matmuls per tile
 * (query block i × key block j), four of them INT8 per block and one, dP, in FP16:
 *
 *   S_ij  = Q̂_i·K̂_jᵀ·s_Q·s_K·σ                      recomputed bit for bit (block-operands.ts rowLogits)
 *   P_ij  = exp(S_ij − L_i)                          L from the forward
 *   dV_j += (P̂_ijᵀ·dÔ_i)·s_P·s_dO                    P tile and dO block INT8 per block
 *   dP_ij = dO_i·V_jᵀ                                 FP16 operands, fp32 accumulation (fp16-product.ts)
 *   dS_ij = P_ij ∘ (dP_ij − D_i),  D_i = rowsum(dO_i ∘ O_i)
 *   dQ_i += σ·(dŜ_ij·K̂_j)·s_dS·s_K  [+ σ·rowsum(dS_ij)·K_m]
 *   dK_j += σ·(dŜ_ijᵀ·Q̂_i)·s_dS·s_Q                  dS tile INT8 per block
 *
 * The P, dO and dS quantizers are quant/int8-tile.ts (one scale per tile, no amax floor: gradients have
 * no natural magnitude). Q̂ and K̂ are the forward's blocks, so a key block's scale is constant along
 * the contraction of dQ and a query block's along that of dK, as a per-block INT8 MMA needs.
 *
 * The smooth-K term. The forward attends with K_s = K − 1·K_mᵀ; softmax ignores the per-row constant
 * σ·q_i·K_m, so P, O and dS are those of the unsmoothed K. The gradient of the unsmoothed function is
 * dQ = σ·dS·K = σ·dS·K_s + σ·(dS·1)·K_mᵀ, i.e. the INT8 product with the smoothed K̂ plus the rank-one
 * term σ·rowsum(dS)·K_m of §8.2 (computed from the unquantized dS, in float64). But in exact arithmetic
 * rowsum(dS_i) = Σ_j P_ij·dP_ij − D_i·Σ_j P_ij = dO_i·(P_i·V) − dO_i·O_i = 0, because O_i = P_i·V and
 * Σ_j P_ij = 1: the term vanishes and both forms are the exact gradient. What is left of it is
 * σ·dO_i·(P_i·V − O_i)·K_m — the forward's quantization error of O (plus dP's), projected on dO and
 * amplified by |K_m|. Whether adding it helps is therefore an empirical question; `smoothKCorrection`
 * switches it (default on, as the note gives it), and the sagebwd evaluation measures both.
 * dK needs no term: the mean's own derivative would subtract the column mean of σ·dSᵀ·Q, which is
 * σ·Σ_i rowsum(dS_i)·q_i = 0 in exact arithmetic, and SA3 applies none.
 *
 * With quant 'none' every quantizer is the identity and dP is float64 unless `dP: 'fp16'` isolates the
 * FP16 product: FlashAttention-2's backward in float64. `dS: 'float64'` keeps dS unquantized (the INT8
 * K̂ and Q̂ then multiply a float64 dS), the ablation behind SB26's finding that dS carries most of
 * the error. Rows that saw no key have P = 0 and get zero
 * gradients; all-zero tiles have scale 0 and contribute exactly 0.
 */
import { quantizeInt8Tile } from '../../quant/int8-tile.js';
import type { SageBwdDims } from './block-operands.js';
import { rowLogits } from './block-operands.js';
import { halfDot, toHalf } from './fp16-product.js';
import { type SageBwdSaved, rowVisibleKeys } from './sage-bwd-forward.js';

export interface SageBwdGradients {
  /** dQ [bh, nq, d]. */
  readonly dq: Float64Array;
  /** dK [bh, nk, d], the gradient with respect to the unsmoothed K. */
  readonly dk: Float64Array;
  /** dV [bh, nk, dv]. */
  readonly dv: Float64Array;
}

/** Alg. 3: gradients of Σ dO∘O for the forward that produced `out` and `saved`. */
export function sageBwdBackward(saved: SageBwdSaved, out: Float64Array, dO: Float64Array): SageBwdGradients {
  const { dims, opts, q, k, v, kMean, lse } = saved;
  const { bh, nq, nk, d, dv }: SageBwdDims = dims;
  const { blockQ, blockK, rounding, dP: dpMode } = opts;
  const int8 = opts.quant === 'int8';
  const sigma = opts.smScale;
  const correction = opts.smoothK && opts.smoothKCorrection;
  const quantizeDs = int8 && opts.dS === 'int8';

  const gq = new Float64Array(bh * nq * d);
  const gk = new Float64Array(bh * nk * d);
  const gv = new Float64Array(bh * nk * dv);
  const dOHalf = dpMode === 'fp16' ? toHalf(dO) : null;
  const vHalf = dpMode === 'fp16' ? toHalf(saved.vRaw) : null;
  const vRaw = saved.vRaw;

  // D_i = rowsum(dO ∘ O), float64 (FlashAttention-2's preprocessing kernel)
  const delta = new Float64Array(bh * nq);
  for (let row = 0; row < bh * nq; row++) {
    let s = 0;
    for (let x = 0; x < dv; x++) s += dO[row * dv + x] * out[row * dv + x];
    delta[row] = s;
  }

  const pTile = new Float64Array(blockQ * blockK);
  const dsTile = new Float64Array(blockQ * blockK);
  const logits = new Float64Array(blockK);
  const seen = new Int32Array(blockQ);

  for (let b = 0; b < bh; b++) {
    for (let i0 = 0; i0 < nq; i0 += blockQ) {
      const rows = Math.min(blockQ, nq - i0);
      const qBlockScale = q.scales[b * q.blocks + i0 / blockQ];
      const dOBase = (b * nq + i0) * dv;
      const dOq = int8 ? quantizeInt8Tile(dO, { rows, cols: dv, offset: dOBase, rounding }) : null;
      let tileKeys = 0;
      for (let r = 0; r < rows; r++) {
        seen[r] = rowVisibleKeys(i0 + r, dims, opts);
        tileKeys = Math.max(tileKeys, seen[r]);
      }
      for (let j0 = 0; j0 < tileKeys; j0 += blockK) {
        const cols = Math.min(blockK, nk - j0);
        const kBlock = j0 / blockK;
        pTile.fill(0, 0, rows * cols);
        dsTile.fill(0, 0, rows * cols);

        // P and dS of the tile (zero where a row does not see the key)
        for (let r = 0; r < rows; r++) {
          const row = b * nq + i0 + r;
          const width = Math.min(cols, seen[r] - j0);
          if (width <= 0 || lse[row] === -Infinity) continue;
          rowLogits(q, k, b, i0 + r, j0, width, sigma, logits);
          for (let c = 0; c < width; c++) {
            const p = Math.exp(logits[c] - lse[row]);
            const key = b * nk + j0 + c;
            let dp: number;
            if (dpMode === 'fp16') {
              dp = halfDot(dOHalf as Float64Array, row * dv, vHalf as Float64Array, key * dv, dv);
            } else if (dpMode === 'int8') {
              const codes = (dOq as { codes: Int8Array }).codes;
              let acc = 0;
              for (let x = 0; x < dv; x++) acc += codes[r * dv + x] * v.values[key * dv + x];
              dp = acc * (dOq as { scale: number }).scale * v.scales[b * v.blocks + kBlock];
            } else {
              dp = 0;
              for (let x = 0; x < dv; x++) dp += dO[row * dv + x] * vRaw[key * dv + x];
            }
            pTile[r * cols + c] = p;
            dsTile[r * cols + c] = p * (dp - delta[row]);
          }
        }

        // dV_j += Pᵀ·dO
        if (int8) {
          const pq = quantizeInt8Tile(pTile, { rows, cols, rounding });
          const dOc = (dOq as { codes: Int8Array }).codes;
          const factor = pq.scale * (dOq as { scale: number }).scale;
          if (factor !== 0) {
            for (let c = 0; c < cols; c++) {
              const gRow = (b * nk + j0 + c) * dv;
              for (let x = 0; x < dv; x++) {
                let acc = 0;
                for (let r = 0; r < rows; r++) acc += pq.codes[r * cols + c] * dOc[r * dv + x];
                gv[gRow + x] += acc * factor;
              }
            }
          }
        } else {
          for (let c = 0; c < cols; c++) {
            const gRow = (b * nk + j0 + c) * dv;
            for (let r = 0; r < rows; r++) {
              const p = pTile[r * cols + c];
              if (p === 0) continue;
              for (let x = 0; x < dv; x++) gv[gRow + x] += p * dO[dOBase + r * dv + x];
            }
          }
        }

        // dQ_i += σ·dS·K, dK_j += σ·dSᵀ·Q
        const dsq = quantizeDs ? quantizeInt8Tile(dsTile, { rows, cols, rounding }) : null;
        const ds = dsq === null ? dsTile : Float64Array.from(dsq.codes);
        const dsScale = dsq === null ? 1 : dsq.scale;
        const dqFactor = sigma * dsScale * k.scales[b * k.blocks + kBlock];
        const dkFactor = sigma * dsScale * qBlockScale;
        for (let r = 0; r < rows; r++) {
          const gRow = (b * nq + i0 + r) * d;
          for (let x = 0; x < d; x++) {
            let acc = 0;
            for (let c = 0; c < cols; c++) acc += ds[r * cols + c] * k.values[(b * nk + j0 + c) * d + x];
            gq[gRow + x] += acc * dqFactor;
          }
          if (correction) {
            let rowSum = 0;
            for (let c = 0; c < cols; c++) rowSum += dsTile[r * cols + c];
            for (let x = 0; x < d; x++) gq[gRow + x] += sigma * rowSum * kMean[b * d + x];
          }
        }
        for (let c = 0; c < cols; c++) {
          const gRow = (b * nk + j0 + c) * d;
          for (let x = 0; x < d; x++) {
            let acc = 0;
            for (let r = 0; r < rows; r++) acc += ds[r * cols + c] * q.values[(b * nq + i0 + r) * d + x];
            gk[gRow + x] += acc * dkFactor;
          }
        }
      }
    }
  }
  return { dq: gq, dk: gk, dv: gv };
}
