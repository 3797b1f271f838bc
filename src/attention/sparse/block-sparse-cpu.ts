/**
 * Block-sparse attention on the CPU backend: FlashAttention-2's online softmax (Dao 2023, Alg. 1)
 * over only the kept key blocks of each query block (sparse_attention.md §4 "Shared core"), with
 * SpargeAttn's stage-2 PV skip (§1.3) and optional SageAttention quantization (§1.4,
 * tile-operands-cpu.ts).
 *
 * Visit order, the one the WebGPU kernels follow (stage 2 depends on it): for each (b, h) and query
 * block i, its rows in query tiles of `tileQ`; for each tile, the kept key blocks in ascending order,
 * each in key tiles of `tileK` keys, the last one partial. Per row, in log2 units:
 *   m_local = max S₂ over the tile's visible keys,  m' = max(m, m_local),  α = exp2(m − m'),
 *   O ← α·O, l ← α·l, and unless stage 2 skips: P̃ = exp2(S₂ − m'), l += ΣP̃, O += P̃·V.
 * After the last tile O / l, LSE = (m + log2 l)·ln 2; a row that saw no key gives zeros and LSE −∞.
 *
 * Keys a row sees: those of the kept blocks of its query block, and with `causal` only those inside
 * its causal window (causal.ts), so the result equals the float64 oracle with `layoutToMask` as its
 * mask (and the same causal option). Values are JS doubles throughout; only the output and the LSE are
 * rounded to float32.
 *
 * NaN policy (as the oracle's): 'error' scans q, k, v first; under 'propagate' a NaN or ±Infinity
 * reaches only the rows that read it — a key in a block that is not kept is never read. A NaN logit
 * makes its row's running max NaN, so that row's output is NaN whatever stage 2 decides.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { convertLayout } from '../../core/layout.js';
import { Tensor } from '../../core/tensor.js';
import { visibleKeys } from '../causal.js';
import { type AttentionResult, assertFiniteInputs } from '../options.js';
import { resolveSageOptions, quantizeQKOptions, quantizeVOptions } from '../sage/options.js';
import { quantizeQK } from '../sage/quantize-qk.js';
import { quantizeV } from '../sage/quantize-v.js';
import {
  type BlockSparseLayout,
  csrRow,
  keyBlockBounds,
  layoutDensity,
  numQueryBlocks,
  queryBlockBounds,
} from './block-layout.js';
import {
  type BlockSparseOptions,
  type BlockSparseStats,
  type BlockSparseWithStats,
  resolveBlockSparse,
  tileOption,
} from './block-sparse-options.js';
import { floatOperands, sageOperands, type TileOperands } from './tile-operands-cpu.js';

/** Variable layouts: the Triton reference's BLOCK_M / BLOCK_N for long sequences (§3.2 step 5). */
const VARIABLE_TILE_Q = 128;
const VARIABLE_TILE_K = 64;

export function blockSparseAttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions & { returnStats: true },
): BlockSparseWithStats<Tensor<'float32'>>;
export function blockSparseAttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts?: BlockSparseOptions,
): AttentionResult<Tensor<'float32'>>;
/**
 * softmax(σ·QKᵀ)·V over the kept blocks of `layout` (see the file comment). q is [B, Hq, Nq, D]
 * ('HND') or [B, Nq, Hq, D] ('NHD'), k and v [B, Hkv, Nk, D] likewise (GQA: query head h reads kv
 * head kvHeadOf(h)). Float32 output in the input layout; the natural-log LSE [B, Hq, Nq] with
 * `returnLse`; statistics with `returnStats`.
 */
export function blockSparseAttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions = {},
): AttentionResult<Tensor<'float32'>> | BlockSparseWithStats<Tensor<'float32'>> {
  const resolved = resolveBlockSparse(q, k, v, layout, opts);
  const { problem: p, pv } = resolved;
  if (opts.tier !== undefined || opts.mma !== undefined) {
    throw new UnsupportedOptionError('tier and mma select GPU kernels; upload the tensors to run on the GPU');
  }
  const fixed = layout.kind === 'fixed';
  const tileQ = tileOption(opts.tileQ, 'tileQ', fixed ? layout.blockQ : VARIABLE_TILE_Q);
  const tileK = tileOption(opts.tileK, 'tileK', fixed ? layout.blockK : VARIABLE_TILE_K);
  if (pv.groupRows > 0 && tileQ % pv.groupRows !== 0) {
    throw new UnsupportedOptionError(
      `pvGroupRows (${pv.groupRows}) must divide the query tile (tileQ = ${tileQ} rows)`,
    );
  }
  if (p.nanPolicy === 'error') assertFiniteInputs({ q, k, v });
  const operands = makeOperands(q, k, v, opts, resolved.problem);
  const { batch, headsQ, tokensQ, headDim: d } = p;

  const out = new Float32Array(batch * headsQ * tokensQ * d);
  const lse = new Float64Array(batch * headsQ * tokensQ).fill(-Infinity);
  const s = new Float64Array(tileQ * tileK);
  const tileMax = new Float64Array(tileQ);
  const m = new Float64Array(tileQ);
  const l = new Float64Array(tileQ);
  const acc = new Float64Array(tileQ * d);
  const group = pv.groupRows > 0 ? pv.groupRows : tileQ;
  const compute = new Uint8Array(Math.ceil(tileQ / group));
  let pvTested = 0;
  let pvSkipped = 0;

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < headsQ; h++) {
      const threshold = pv.thresholds ? pv.thresholds[h] : null;
      for (let i = 0; i < numQueryBlocks(layout); i++) {
        const [qLo, qHi] = queryBlockBounds(layout, b, h, i);
        const r = csrRow(layout, b, h, i);
        const [e0, e1] = [layout.rowOffsets[r], layout.rowOffsets[r + 1]];
        for (let t0 = qLo; t0 < qHi; t0 += tileQ) {
          const rows = Math.min(tileQ, qHi - t0);
          m.fill(-Infinity);
          l.fill(0);
          acc.fill(0);
          for (let e = e0; e < e1; e++) {
            const [kLo, kHi] = keyBlockBounds(layout, b, h, layout.columns[e]);
            const tested = threshold !== null && e < e1 - pv.exemptLast;
            for (let k0 = kLo; k0 < kHi; k0 += tileK) {
              const tileCols = Math.min(tileK, kHi - k0);
              // logits and tile max of every row (−∞ where the row sees none of the tile's keys)
              for (let rr = 0; rr < rows; rr++) {
                const seen = Math.min(tileCols, visibleKeys(t0 + rr, p) - k0);
                tileMax[rr] = -Infinity;
                if (seen <= 0) continue;
                const sr = s.subarray(rr * tileK, rr * tileK + seen);
                operands.logits(b, h, t0 + rr, k0, seen, sr);
                let mx = -Infinity;
                for (let c = 0; c < seen; c++) mx = Math.max(mx, sr[c]);
                tileMax[rr] = mx;
              }
              // stage 2 (§1.3): per group, compute iff max(m_local − m_prev) + pvthreshd > 0
              compute.fill(1);
              if (tested) {
                for (let g = 0; g * group < rows; g++) {
                  let diff = -Infinity;
                  let any = false;
                  for (let rr = g * group; rr < Math.min(rows, (g + 1) * group); rr++) {
                    if (tileMax[rr] === -Infinity) continue;
                    any = true;
                    diff = Math.max(diff, m[rr] === -Infinity ? Infinity : tileMax[rr] - m[rr]);
                  }
                  if (!any) continue;
                  pvTested++;
                  if (!(diff + threshold > 0)) {
                    compute[g] = 0;
                    pvSkipped++;
                  }
                }
              }
              for (let rr = 0; rr < rows; rr++) {
                if (tileMax[rr] === -Infinity) continue;
                const mNew = Math.max(m[rr], tileMax[rr]);
                const alpha = m[rr] === -Infinity ? 0 : 2 ** (m[rr] - mNew);
                const accRow = acc.subarray(rr * d, (rr + 1) * d);
                if (compute[Math.floor(rr / group)]) {
                  const seen = Math.min(tileCols, visibleKeys(t0 + rr, p) - k0);
                  const sr = s.subarray(rr * tileK, rr * tileK + seen);
                  const sum = operands.accumulate(accRow, alpha, sr, mNew, seen, tileCols, b, h, k0);
                  l[rr] = alpha * l[rr] + sum;
                } else {
                  operands.rescale(accRow, alpha);
                  l[rr] *= alpha;
                }
                m[rr] = mNew;
              }
            }
          }
          for (let rr = 0; rr < rows; rr++) {
            const row = (b * headsQ + h) * tokensQ + t0 + rr;
            if (m[rr] === -Infinity || !(l[rr] > 0 || Number.isNaN(l[rr]))) continue;
            lse[row] = operands.finish(acc.subarray(rr * d, (rr + 1) * d), m[rr], l[rr], out, row * d, b, h);
          }
        }
      }
    }
  }
  operands.finishLse?.(lse);

  const result = convertLayout(new Tensor(out, [batch, headsQ, tokensQ, d], 'float32'), 'HND', p.layout);
  const lseTensor = new Tensor(Float32Array.from(lse), [batch, headsQ, tokensQ], 'float32');
  if (resolved.returnStats) {
    const stats: BlockSparseStats = {
      density: layoutDensity(layout, {
        causal: p.causal,
        causalAlignment: p.causalAlignment,
        batch,
        heads: headsQ,
      }),
      pvTested,
      pvSkipped,
      pvSkipFraction: pvTested === 0 ? 0 : pvSkipped / pvTested,
    };
    return p.returnLse ? { out: result, lse: lseTensor, stats } : { out: result, stats };
  }
  return p.returnLse ? { out: result, lse: lseTensor } : result;
}

function makeOperands(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: BlockSparseOptions,
  problem: ReturnType<typeof resolveBlockSparse>['problem'],
): TileOperands {
  if (opts.sage === undefined) return floatOperands(q, k, v, problem);
  const sage = typeof opts.sage === 'string' ? { preset: opts.sage } : opts.sage;
  if (typeof sage !== 'object' || sage === null) {
    throw new UnsupportedOptionError(
      `sage must be a SageAttention preset name ('sage1', 'sage2', 'sage2++', 'sage3') or an options object; got ${JSON.stringify(opts.sage)}`,
    );
  }
  const resolved = resolveSageOptions(q, k, v, {
    ...sage,
    layout: problem.layout,
    smScale: problem.smScale,
  });
  const qk = quantizeQK(q, k, quantizeQKOptions(resolved));
  const vq = quantizeV(v, quantizeVOptions(resolved));
  return sageOperands(qk, vq, resolved.config, problem, q);
}
