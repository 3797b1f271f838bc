/**
 * `spargeAttention`: SpargeAttn (sparse_attention.md §1) as a composition of its public steps — an
 * optional token order, the stage-1 block map (spargeBlockMap), the layout (layoutFromBlockMap), and
 * the block-sparse kernel with the stage-2 PV skip (blockSparseAttention with pvThreshold) — followed
 * by the inverse token order on O and the LSE.
 *
 * Defaults are those of the reference's recommended `spas_sage2_attn_meansim_topk_cuda` (topk 0.5,
 * simthreshd1 −0.1, pvthreshd 50, smooth_k on), or of the cdf API when a cdfThreshold is given
 * (simthreshd1 0.6). With calibrated `params` (calibrateSparge) the per-head θ, τ and pvthreshd are
 * the file's, selection is TopCdf, and attentionSink defaults to true, as the reference forces it for
 * tuned models (§1.1).
 *
 * Two deliberate departures, both documented where they apply: (1) `causal` also masks the diagonal
 * blocks token by token (the reference passes is_causal = False to its kernel, so within a kept
 * diagonal block a query sees later keys); (2) the kernel computes in float unless `sage` asks for the
 * reference's quantization (e.g. 'sage1' for its sm80 path; INT8/INT4 Q/K on the GPU too, sage3 on the
 * CPU only).
 *
 * GPU tensors: stage 1 runs on the GPU too (sparge-block-map-gpu.ts, float32: a block within float32
 * rounding of a threshold may be decided differently from the CPU's float64 scores) and writes the
 * layout words the kernel reads, all in one compute pass; the call is async only so that `returnStats`
 * can read the map back. bench/sparse.bench.ts times the predictor on its own.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import { type GpuTensor, download, isGpuTensor } from '../../gpu/gpu-tensor.js';
import { assertOptionKeys } from '../../quant/option-checks.js';
import type { AttentionProblem, AttentionResult, AttentionWithLse } from '../options.js';
import { resolveAttentionProblem } from '../options.js';
import { blockSparseAttentionCpu } from './block-sparse-cpu.js';
import {
  type GpuBlockSparseStats,
  planWithLayoutWords,
  recordBlockSparseSageGpu,
} from './block-sparse-gpu.js';
import { layoutDensity } from './block-layout.js';
import { type GpuSpargeMap, planSpargeBlockMapGpu, spargeLayoutWords } from './sparge-block-map-gpu.js';
import type { BlockSparseOptions, BlockSparseStats } from './block-sparse-options.js';
import { layoutFromBlockMap } from './layout-builders.js';
import {
  type SpargeBlockMap,
  type SpargeMapStats,
  resolveSpargeMapCall,
  spargeBlockMap,
} from './sparge-block-map.js';
import {
  type PerHead,
  type ResolvedSpargeMap,
  SPARGE_MAP_KEYS,
  SPARGE_TOPK_DEFAULTS,
  type SpargeBlockMapOptions,
  perHead,
} from './sparge-options.js';
import { type SpargeParams, assertSpargeParams } from './sparge-params.js';
import { type TokenOrder, applyTokenOrder, restoreTokenOrder, restoreTokenOrderLse } from './token-orders.js';

export interface SpargeAttentionOptions
  extends
    SpargeBlockMapOptions,
    Omit<BlockSparseOptions, 'pvThreshold' | 'returnStats' | 'layout' | 'causal'> {
  /** pvthreshd per head or one for all (default 50, §1.1; stage 2, §1.3). */
  pvThreshold?: PerHead;
  /** Calibrated per-head parameters (calibrateSparge); they set θ, τ and pvthreshd. */
  params?: SpargeParams;
  /** Reorder the video tokens first (token-orders.ts); O and the LSE come back in the stored order. */
  tokenOrder?: TokenOrder;
  /** Text tokens before the video grid that the token order leaves in place (default 0). */
  prefix?: number;
  /** Also return the block map and statistics. */
  returnStats?: boolean;
}

/** What `returnStats` gives: the kernel's statistics and stage 1's. */
export interface SpargeStats<S = BlockSparseStats> {
  kernel: S;
  map: SpargeMapStats;
}

export interface SpargeResult<T, S = BlockSparseStats> {
  out: T;
  lse?: T;
  /** The stage-1 block map [B, H, ⌈Nq/blockQ⌉, ⌈Nk/blockK⌉] (in the reordered token order, if any). */
  blockMap: SpargeBlockMap['map'];
  stats: SpargeStats<S>;
}

const KERNEL_KEYS = [
  'smScale',
  'causalAlignment',
  'returnLse',
  'nanPolicy',
  'pvThreshold',
  'pvGroupRows',
  'pvExemptLast',
  'tileQ',
  'tileK',
  'sage',
  'tier',
  'mma',
  'params',
  'tokenOrder',
  'prefix',
  'returnStats',
];

export function spargeAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SpargeAttentionOptions & { returnStats: true },
): SpargeResult<Tensor<'float32'>>;
export function spargeAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SpargeAttentionOptions & { returnLse: true; returnStats?: false },
): AttentionWithLse<Tensor<'float32'>>;
export function spargeAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: SpargeAttentionOptions & { returnLse?: false; returnStats?: false },
): Tensor<'float32'>;
export function spargeAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SpargeAttentionOptions & { returnStats: true },
): Promise<SpargeResult<GpuTensor<'float32'>, GpuBlockSparseStats>>;
export function spargeAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts?: SpargeAttentionOptions,
): Promise<AttentionResult<GpuTensor<'float32'>>>;
export function spargeAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: SpargeAttentionOptions,
): AttentionResult<Tensor<'float32'>> | SpargeResult<Tensor<'float32'>>;
/**
 * SpargeAttn attention (see the file comment). q [B, H, Nq, D] (or NHD), k, v [B, Hkv, Nk, D]; float32
 * output in the input layout; with `returnLse` the natural-log LSE; with `returnStats` also the block
 * map and the statistics of both stages. Host tensors return synchronously, GPU tensors a Promise.
 */
export function spargeAttention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  opts: SpargeAttentionOptions = {},
):
  | AttentionResult<Tensor<'float32'>>
  | SpargeResult<Tensor<'float32'>>
  | Promise<AttentionResult<GpuTensor<'float32'>> | SpargeResult<GpuTensor<'float32'>, GpuBlockSparseStats>> {
  assertOptionKeys(opts, [...SPARGE_MAP_KEYS, ...KERNEL_KEYS], 'spargeAttention');
  const onGpu = [q, k, v].map(isGpuTensor);
  if (onGpu.some(Boolean) && !onGpu.every(Boolean)) {
    throw new UnsupportedOptionError(
      'q, k and v must all be host tensors or all GPU tensors; use upload() or download() to move them',
    );
  }
  if (onGpu[0]) return spargeAttentionGpu(q as GpuTensor, k as GpuTensor, v as GpuTensor, opts);
  return spargeAttentionCpu(q as Tensor, k as Tensor, v as Tensor, opts);
}

interface Resolved {
  mapOpts: SpargeBlockMapOptions;
  kernelOpts: BlockSparseOptions;
  nq: number;
  nk: number;
}

function resolve(
  q: { shape: readonly number[]; dtype: Tensor['dtype'] },
  k: { shape: readonly number[]; dtype: Tensor['dtype'] },
  v: { shape: readonly number[]; dtype: Tensor['dtype'] },
  opts: SpargeAttentionOptions,
): Resolved {
  const p = resolveAttentionProblem(q, k, v, {
    layout: opts.layout,
    causal: opts.causal,
    causalAlignment: opts.causalAlignment,
    smScale: opts.smScale,
  });
  if (p.causal && p.causalAlignment === 'bottom-right' && p.tokensQ !== p.tokensKv) {
    throw new UnsupportedOptionError(
      "SpargeAttn's block-causal map is top-left aligned (j < (i + 1)·blockQ/blockK, §1.2); causal with causalAlignment 'bottom-right' needs Nq = Nk",
    );
  }
  const params = opts.params;
  let mapOpts: SpargeBlockMapOptions = {
    layout: opts.layout,
    blockQ: opts.blockQ,
    blockK: opts.blockK,
    smoothK: opts.smoothK,
    simThreshold: opts.simThreshold,
    cdfThreshold: opts.cdfThreshold,
    cdfRule: opts.cdfRule,
    topk: opts.topk,
    causal: opts.causal,
    attentionSink: opts.attentionSink,
  };
  let pvThreshold: PerHead = opts.pvThreshold ?? SPARGE_TOPK_DEFAULTS.pvThreshold;
  if (params !== undefined) {
    assertSpargeParams(params);
    for (const key of ['simThreshold', 'cdfThreshold', 'topk', 'pvThreshold'] as const) {
      if (opts[key] !== undefined) {
        throw new UnsupportedOptionError(
          `${key} cannot be combined with calibrated params, which set it per head`,
        );
      }
    }
    if (params.heads !== p.headsQ) {
      throw new UnsupportedOptionError(
        `the params were calibrated for ${params.heads} heads; q has ${p.headsQ}`,
      );
    }
    if (
      (opts.blockQ ?? params.blockQ) !== params.blockQ ||
      (opts.blockK ?? params.blockK) !== params.blockK
    ) {
      throw new UnsupportedOptionError(
        `the params were calibrated with blocks ${params.blockQ}×${params.blockK}; got blockQ ${opts.blockQ}, blockK ${opts.blockK}`,
      );
    }
    mapOpts = {
      ...mapOpts,
      blockQ: params.blockQ,
      blockK: params.blockK,
      simThreshold: params.simThreshold,
      cdfThreshold: params.cdfThreshold,
      attentionSink: opts.attentionSink ?? true,
    };
    pvThreshold = params.pvThreshold;
  }
  const kernelOpts: BlockSparseOptions = {
    layout: opts.layout,
    causal: opts.causal,
    causalAlignment: opts.causalAlignment,
    smScale: opts.smScale,
    nanPolicy: opts.nanPolicy,
    pvThreshold: Array.from(perHead(pvThreshold, p.headsQ, 'pvThreshold', -Infinity, Infinity)),
    pvGroupRows: opts.pvGroupRows,
    pvExemptLast: opts.pvExemptLast,
    tileQ: opts.tileQ,
    tileK: opts.tileK,
    sage: opts.sage,
    tier: opts.tier,
    mma: opts.mma,
    returnLse: true,
    returnStats: true,
  };
  return { mapOpts, kernelOpts, nq: p.tokensQ, nk: p.tokensKv };
}

function spargeAttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SpargeAttentionOptions,
): AttentionResult<Tensor<'float32'>> | SpargeResult<Tensor<'float32'>> {
  const r = resolve(q, k, v, opts);
  const order = opts.tokenOrder;
  const orderOpts = { layout: opts.layout, prefix: opts.prefix ?? 0 };
  const [qo, ko, vo] = order ? [q, k, v].map((t) => applyTokenOrder(t, order, orderOpts)) : [q, k, v];
  const stage1 = spargeBlockMap(qo, ko, r.mapOpts);
  const layout = layoutFromBlockMap(stage1.map, {
    nq: r.nq,
    nk: r.nk,
    blockQ: r.mapOpts.blockQ ?? 128,
    blockK: r.mapOpts.blockK ?? 64,
  });
  const res = blockSparseAttentionCpu(qo, ko, vo, layout, { ...r.kernelOpts, returnStats: true });
  const lse = res.lse as Tensor<'float32'>;
  const out = order ? restoreTokenOrder(res.out, order, orderOpts) : res.out;
  const lseOut = order ? restoreTokenOrderLse(lse, order, orderOpts.prefix) : lse;
  if (opts.returnStats) {
    return {
      out,
      ...(opts.returnLse ? { lse: lseOut } : {}),
      blockMap: stage1.map,
      stats: { kernel: res.stats, map: stage1.stats },
    };
  }
  return opts.returnLse ? { out, lse: lseOut } : out;
}

async function spargeAttentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SpargeAttentionOptions,
): Promise<AttentionResult<GpuTensor<'float32'>> | SpargeResult<GpuTensor<'float32'>, GpuBlockSparseStats>> {
  if (opts.tokenOrder !== undefined) {
    throw new UnsupportedOptionError(
      'tokenOrder reorders host tensors; apply it before upload (applyTokenOrder) and restore the downloaded output',
    );
  }
  const r = resolve(q, k, v, opts);
  const { problem, resolved } = resolveSpargeMapCall(q, k, r.mapOpts);
  const runtime = q.runtime;
  const enc = runtime.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  const map = planSpargeBlockMapGpu(q, k, problem, resolved);
  map.record(pass);
  const thresholds = Float32Array.from(r.kernelOpts.pvThreshold as number[]);
  runtime.device.queue.writeBuffer(map.words.buffer, map.thrOff * 4, thresholds);
  const kernelOpts = { ...r.kernelOpts, returnLse: opts.returnLse ?? false };
  const layoutWords = spargeLayoutWords(map, problem, resolved, opts.pvExemptLast ?? 2, NaN);
  // float operands through the block-sparse plan; with `sage`, quantization and kernel recorded together
  let plan: {
    out: GpuTensor<'float32'>;
    lse: GpuTensor<'float32'>;
    stats: GpuBlockSparseStats;
    release(): void;
  };
  try {
    if (kernelOpts.sage !== undefined) {
      plan = recordBlockSparseSageGpu(q, k, v, kernelOpts, layoutWords, pass);
    } else {
      const p = planWithLayoutWords(q, k, v, kernelOpts, layoutWords);
      p.record(pass);
      plan = { out: p.out, lse: p.lse, stats: p.stats, release: () => p.destroyTemporaries() };
    }
  } catch (e) {
    pass.end();
    map.release();
    map.words.destroy();
    throw e;
  }
  pass.end();
  runtime.device.queue.submit([enc.finish()]);
  plan.release();
  const out = plan.out;
  const lse = opts.returnLse ? plan.lse : undefined;
  if (!opts.returnLse) plan.lse.destroy();
  try {
    if (!opts.returnStats) {
      plan.stats.pvCounts?.destroy();
      return lse ? { out, lse } : out;
    }
    const [words, simQ, simK] = await Promise.all([
      download(map.words),
      download(map.simQ),
      download(map.simK),
    ]);
    const summary = mapFromWords(
      words.data as Int32Array,
      map,
      problem,
      resolved,
      simQ.data as Float32Array,
      simK.data as Float32Array,
    );
    return {
      out,
      lse,
      blockMap: summary.map,
      stats: { kernel: { ...plan.stats, density: summary.entryDensity }, map: summary.stats },
    };
  } finally {
    map.release();
    map.words.destroy();
  }
}

/** The block map and stage-1 statistics from GPU layout words (padded CSR) and block similarities. */
function mapFromWords(
  words: Int32Array,
  m: GpuSpargeMap,
  p: AttentionProblem,
  o: ResolvedSpargeMap,
  simQ: Float32Array,
  simK: Float32Array,
) {
  const { qBlocks, kBlocks } = m;
  const map = new Uint8Array(m.rows * kBlocks);
  for (let r = 0; r < m.rows; r++) {
    for (let e = words[2 * r]; e < words[2 * r + 1]; e++) map[r * kBlocks + words[m.colOff + e]] = 1;
  }
  const tensor = new Tensor(map, [p.batch, p.headsQ, qBlocks, kBlocks], 'bool');
  const ratio = o.blockQ / o.blockK;
  const headKept = new Float64Array(p.headsQ);
  const headAllowed = new Float64Array(p.headsQ);
  for (let b = 0; b < p.batch; b++) {
    for (let h = 0; h < p.headsQ; h++) {
      for (let i = 0; i < qBlocks; i++) {
        const r = (b * p.headsQ + h) * qBlocks + i;
        headKept[h] += words[2 * r + 1] - words[2 * r];
        for (let j = 0; j < kBlocks; j++) if (!o.causal || j < (i + 1) * ratio) headAllowed[h]++;
      }
    }
  }
  let qSim = 0;
  for (let s = 0; s < simQ.length; s++) {
    const h = Math.floor(s / qBlocks) % p.headsQ;
    if (simQ[s] > Math.fround(o.simThreshold[h])) qSim++;
  }
  let kSim = 0;
  for (let s = 0; s < simK.length; s++) {
    const hk = Math.floor(s / kBlocks) % p.headsKv;
    if (simK[s] > Math.fround(o.simThreshold[hk * (p.headsQ / p.headsKv)])) kSim++;
  }
  const kept = headKept.reduce((a, x) => a + x, 0);
  const allowed = headAllowed.reduce((a, x) => a + x, 0);
  const layout = layoutFromBlockMap(tensor, {
    nq: p.tokensQ,
    nk: p.tokensKv,
    blockQ: o.blockQ,
    blockK: o.blockK,
  });
  const stats: SpargeMapStats = {
    qSimilar: simQ.length === 0 ? 0 : qSim / simQ.length,
    kSimilar: simK.length === 0 ? 0 : kSim / simK.length,
    density: allowed === 0 ? 0 : kept / allowed,
    headDensity: Float64Array.from(headKept, (x, h) => (headAllowed[h] === 0 ? 0 : x / headAllowed[h])),
  };
  const entryDensity = layoutDensity(layout, { causal: p.causal, causalAlignment: p.causalAlignment });
  return { map: tensor, stats, entryDensity };
}
