/**
 * Dense attention on the CPU backend: FlashAttention-2's forward pass (Dao 2023, Alg. 1), the same
 * tiling and online softmax the WebGPU kernel uses, so a difference between the two points at the
 * GPU code rather than at the algorithm. Values are JS doubles throughout; only the output (and LSE)
 * is rounded to float32.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { convertLayout, type Layout } from '../core/layout.js';
import { Tensor } from '../core/tensor.js';
import { visibleKeys } from './causal.js';
import {
  type AttentionOptions,
  type AttentionResult,
  type AttentionWithLse,
  assertFiniteInputs,
  kvHeadOf,
  resolveAttentionProblem,
} from './options.js';

export interface CpuAttentionOptions extends AttentionOptions {
  /** Query rows per tile, B_r in FlashAttention-2 Alg. 1 (default 64, as the GPU kernel's CTA_Q). */
  blockQ?: number;
  /** Keys per tile, B_c in FlashAttention-2 Alg. 1 (default 64, as SageAttention's CTA_K). */
  blockK?: number;
}

/**
 * softmax(σ·QKᵀ)·V by FlashAttention-2 Alg. 1. For each query tile Q_i (blockQ rows) the key/value
 * tiles K_j, V_j (blockK keys) are streamed, keeping per row a running max m, a running sum l and an
 * unnormalised accumulator O:
 *   m' = max(m, rowmax(S_ij)),  P̃ = exp(S_ij − m'),  l' = e^(m − m')·l + rowsum(P̃),
 *   O' = e^(m − m')·O + P̃·V_j,
 * and only after the last tile O / l (FA2's change over FA1: one division per row, not per tile) and
 * LSE = m + log l. Every step of the inner loop is row-wise, so S_ij is formed one row at a time.
 *
 * Causal masking (both alignments, causal.ts): a query tile stops at the keys its last row sees, so key
 * tiles wholly above the diagonal are never visited, and within a tile each row stops at its own limit.
 * A row that has seen no key keeps m = -Infinity; it is skipped rather than rescaled by
 * exp(-inf − -inf) = NaN, and finishes as zeros with LSE -Infinity (bottom-right with Nq > Nk).
 *
 * GQA/MQA, Nq ≠ Nk, lengths that are not tile multiples and any head dim are supported. Inputs may be
 * float32, float64, float16 or bfloat16; the output is float32 in the input layout, the LSE float32
 * [B, Hq, Nq] in natural-log units.
 */
export function attentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: CpuAttentionOptions & { returnLse: true },
): AttentionWithLse<Tensor<'float32'>>;
export function attentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: CpuAttentionOptions & { returnLse?: false },
): Tensor<'float32'>;
export function attentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: CpuAttentionOptions,
): AttentionResult<Tensor<'float32'>>;
export function attentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: CpuAttentionOptions,
): AttentionResult<Tensor<'float32'>> {
  const problem = resolveAttentionProblem(q, k, v, opts, ['blockQ', 'blockK']);
  const blockQ = tileOption(opts?.blockQ, 'blockQ');
  const blockK = tileOption(opts?.blockK, 'blockK');
  if (problem.nanPolicy === 'error') assertFiniteInputs({ q, k, v });
  const { batch, headsQ, headsKv, tokensQ, tokensKv, headDim: d, smScale } = problem;
  const qh = toHnd(q, problem.layout);
  const kh = toHnd(k, problem.layout);
  const vh = toHnd(v, problem.layout);

  const out = new Float32Array(batch * headsQ * tokensQ * d);
  const lse = new Float32Array(batch * headsQ * tokensQ);
  const s = new Float64Array(blockK);
  const m = new Float64Array(blockQ);
  const l = new Float64Array(blockQ);
  const acc = new Float64Array(blockQ * d);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < headsQ; h++) {
      const kvBase = (b * headsKv + kvHeadOf(h, headsQ, headsKv)) * tokensKv * d;
      const qHead = (b * headsQ + h) * tokensQ;
      for (let i0 = 0; i0 < tokensQ; i0 += blockQ) {
        const rows = Math.min(blockQ, tokensQ - i0);
        m.fill(-Infinity);
        l.fill(0);
        acc.fill(0);
        const tileKeys = visibleKeys(i0 + rows - 1, problem);
        for (let j0 = 0; j0 < tileKeys; j0 += blockK) {
          for (let r = 0; r < rows; r++) {
            const cols = Math.min(blockK, visibleKeys(i0 + r, problem) - j0);
            if (cols <= 0) continue;
            const qRow = (qHead + i0 + r) * d;
            let tileMax = -Infinity;
            for (let c = 0; c < cols; c++) {
              const kRow = kvBase + (j0 + c) * d;
              let dot = 0;
              for (let x = 0; x < d; x++) dot += qh[qRow + x] * kh[kRow + x];
              s[c] = smScale * dot;
              tileMax = Math.max(tileMax, s[c]);
            }
            const mNew = Math.max(m[r], tileMax);
            if (mNew === -Infinity) continue;
            const alpha = Math.exp(m[r] - mNew);
            const a = r * d;
            for (let x = 0; x < d; x++) acc[a + x] *= alpha;
            let rowSum = 0;
            for (let c = 0; c < cols; c++) {
              const p = Math.exp(s[c] - mNew);
              rowSum += p;
              const vRow = kvBase + (j0 + c) * d;
              for (let x = 0; x < d; x++) acc[a + x] += p * vh[vRow + x];
            }
            l[r] = alpha * l[r] + rowSum;
            m[r] = mNew;
          }
        }
        for (let r = 0; r < rows; r++) {
          const row = qHead + i0 + r;
          if (m[r] === -Infinity) {
            lse[row] = -Infinity;
            continue;
          }
          for (let x = 0; x < d; x++) out[row * d + x] = acc[r * d + x] / l[r];
          lse[row] = m[r] + Math.log(l[r]);
        }
      }
    }
  }

  const result = convertLayout(
    new Tensor(out, [batch, headsQ, tokensQ, d], 'float32'),
    'HND',
    problem.layout,
  );
  if (!problem.returnLse) return result;
  return { out: result, lse: new Tensor(lse, [batch, headsQ, tokensQ], 'float32') };
}

function tileOption(value: unknown, name: string): number {
  if (value === undefined) return 64;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UnsupportedOptionError(`${name} must be a positive integer (default 64); got ${String(value)}`);
  }
  return value;
}

/**
 * Values in HND order, the order the loops index. float64 inputs keep their precision; every other
 * dtype becomes float32 (exact for float16/bfloat16 codes).
 */
function toHnd(t: Tensor, layout: Layout): Float32Array | Float64Array {
  const values =
    t.dtype === 'float64'
      ? new Tensor(t.data, t.shape, 'float64')
      : new Tensor(t.toFloat32(), t.shape, 'float32');
  return convertLayout(values, layout, 'HND').data as Float32Array | Float64Array;
}
