/**
 * Block-sparse attention on WebGPU: the dense flash plan (dense-gpu.ts: tier choice, operand
 * conversion, parameter blocks, output) with the block-sparse kernels of the same generators
 * (block-sparse-wgsl-scalar.ts, block-sparse-wgsl-mma.ts) and the layout uploaded as words
 * (block-sparse-wgsl-layout.ts). One workgroup per (b, h, query block), dispatched as
 * (numQBlocks, Hq, B).
 *
 * Tiles, which decide stage 2's granularity (block-sparse-options.ts): a workgroup takes a query
 * block's rows in chunks of its tile — the whole block when the kernel can be shaped to it (fixed
 * layouts: scalar kernels up to 256 rows, tensor-core kernels at multiples of 16 up to 256 rows), else
 * 128 rows — and visits kept key blocks in key tiles of the kernel's staging size (`plan.tileK`: 32 on
 * the tensor-core tier, 16–32 on the scalar tiers by head dim). The CPU kernel with tileQ = plan.tileQ
 * and tileK = plan.tileK makes the same stage-2 decisions (up to float rounding of the logits).
 */
import { submitComputePass } from '../../gpu/dispatch.js';
import { UnsupportedOptionError } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import { BUFFER_USAGE, GpuTensor, download, upload } from '../../gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../gpu/runtime.js';
import { recordResizeLastDim } from '../../gpu/pad-last-dim.js';
import {
  type FlashVariant,
  type GpuAttentionPlan,
  assertGpuFloatOperands,
  buildFlashPlan,
  chooseTier,
} from '../dense-gpu.js';
import { planSageKernelGpu } from '../sage/kernel-gpu.js';
import { resolveSageOptions } from '../sage/options.js';
import { recordLseCorrectionGpu, recordSageOperandsGpu } from '../sage/sage-attention-gpu.js';
import { mmaBlockQ } from '../flash-wgsl-mma.js';
import type { AttentionWithLse } from '../options.js';
import { type BlockSparseLayout, layoutDensity } from './block-layout.js';
import {
  type BlockSparseOptions,
  type BlockSparseStats,
  type BlockSparseWithStats,
  resolveBlockSparse,
  resolveBlockSparseOptions,
} from './block-sparse-options.js';
import { mmaBlockSparseWgsl } from './block-sparse-wgsl-mma.js';
import { packSparseLayout } from './block-sparse-wgsl-layout.js';
import { scalarBlockSparseWgsl } from './block-sparse-wgsl-scalar.js';

/** Rows per workgroup for variable layouts (the Triton reference's BLOCK_M) and oversized fixed blocks. */
const DEFAULT_TILE_Q = 128;
const MAX_SCALAR_ROWS = 256;

/** What `returnStats` gives for GPU tensors: the counters stay on the GPU until read. */
export interface GpuBlockSparseStats {
  density: number;
  /** [tested, skipped] stage-2 (group, key tile) counts as int32, or undefined without pvThreshold. */
  pvCounts?: GpuTensor<'int32'>;
}

export interface GpuBlockSparsePlan extends GpuAttentionPlan {
  readonly stats: GpuBlockSparseStats;
}

/** Reads a GPU call's statistics into the host form (BlockSparseStats). */
export async function readBlockSparseStats(stats: GpuBlockSparseStats): Promise<BlockSparseStats> {
  if (!stats.pvCounts) return { density: stats.density, pvTested: 0, pvSkipped: 0, pvSkipFraction: 0 };
  const [pvTested, pvSkipped] = Array.from((await download(stats.pvCounts)).data as Int32Array);
  return {
    density: stats.density,
    pvTested,
    pvSkipped,
    pvSkipFraction: pvTested === 0 ? 0 : pvSkipped / pvTested,
  };
}

/** Builds a block-sparse attention plan for GPU tensors (nothing is submitted). */
export function planBlockSparseGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions = {},
): GpuBlockSparsePlan {
  const words = uploadLayoutWords(q, k, v, layout, opts);
  const wordsGpu = words.words;
  let plan: GpuBlockSparsePlan;
  try {
    plan = planWithLayoutWords(q, k, v, opts, words);
  } catch (e) {
    wordsGpu.destroy();
    throw e;
  }
  return {
    ...plan,
    destroyTemporaries() {
      plan.destroyTemporaries();
      wordsGpu.destroy();
    },
  };
}

/** A host layout as layout words on the GPU, with its parameters and density (the caller frees `words`). */
export function uploadLayoutWords(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions,
): GpuLayoutWords {
  const { problem: p, pv } = resolveBlockSparse(q, k, v, layout, opts);
  const runtime = assertGpuFloatOperands(q, k, v, p);
  const { words, params } = packSparseLayout(layout, p, pv);
  return {
    words: upload(
      runtime,
      new Tensor(new Int32Array(words.buffer), [words.length], 'int32'),
      'sparse layout',
    ),
    params,
    variable: layout.kind === 'variable',
    blockQ: layout.kind === 'fixed' ? layout.blockQ : undefined,
    numQBlocks: rowsPerSet(layout),
    density: layoutDensity(layout, {
      causal: p.causal,
      causalAlignment: p.causalAlignment,
      batch: p.batch,
      heads: p.headsQ,
    }),
  };
}

/** A layout already in GPU memory as layout words (block-sparse-wgsl-layout.ts), with its parameters. */
export interface GpuLayoutWords {
  words: GpuTensor<'int32'>;
  /** The SparseParams block (packSparseLayout's `params`). */
  params: ArrayBuffer;
  variable: boolean;
  /** Query rows per block of a fixed layout (undefined for variable layouts). */
  blockQ: number | undefined;
  /** Query blocks per (b, h): the dispatch's x. */
  numQBlocks: number;
  /** What the plan reports as its density. */
  density: number;
}

/**
 * Builds the block-sparse plan over layout words that are already on the GPU (the caller owns and
 * frees `layout.words`). Used for host layouts (planBlockSparseGpu) and GPU-predicted ones (SpargeAttn).
 */
export function planWithLayoutWords(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: BlockSparseOptions,
  layout: GpuLayoutWords,
): GpuBlockSparsePlan {
  const { problem: p, pv } = resolveBlockSparseOptions(q, k, v, opts);
  if (opts.tileQ !== undefined || opts.tileK !== undefined) {
    throw new UnsupportedOptionError(
      'tileQ and tileK tile the CPU kernel; the GPU kernels use their own tiles (plan.tileQ, plan.tileK)',
    );
  }
  if (opts.sage !== undefined) {
    throw new UnsupportedOptionError(
      'a block-sparse plan takes float operands; with sage, call blockSparseAttention on the GPU tensors (it quantizes and runs the kernel in one submission)',
    );
  }
  const runtime = assertGpuFloatOperands(q, k, v, p);
  const tier = chooseTier(runtime, p, opts.tier);
  const sparse = sparseVariant(runtime, pv, layout);
  const plan = buildFlashPlan(runtime, p, tier, [q, k, v], opts.mma, undefined, undefined, sparse.variant);
  return {
    ...plan,
    stats: { density: layout.density, pvCounts: sparse.pvCounts },
    destroyTemporaries() {
      plan.destroyTemporaries();
      sparse.release();
    },
  };
}

/**
 * The block-sparse kernels as a variant of the flash plan over `layout`: the sparse parameter block,
 * the stage-2 counters, the tile shape (a fixed layout's whole query block where the kernel can take
 * it) and the generators.
 */
function sparseVariant(
  runtime: GpuRuntime,
  pv: ReturnType<typeof resolveBlockSparseOptions>['pv'],
  layout: GpuLayoutWords,
): { variant: FlashVariant; pvCounts: GpuTensor<'int32'> | undefined; release: () => void } {
  const isVariable = layout.variable;
  const fixedRows = layout.blockQ ?? DEFAULT_TILE_Q;
  const pvRows = (tileRows: number, unit: number) => {
    if (!pv.thresholds) return 0;
    const g = pv.groupRows > 0 ? pv.groupRows : tileRows;
    if (tileRows % g !== 0 || g % unit !== 0) {
      throw new UnsupportedOptionError(
        `pvGroupRows (${pv.groupRows}) must divide the GPU kernel's query tile of ${tileRows} rows` +
          (unit > 1 ? ` and be a multiple of its ${unit}-row warps` : ''),
      );
    }
    return g;
  };
  const paramsBuf = runtime.createBuffer(
    layout.params.byteLength,
    BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
    'sparse params',
  );
  runtime.device.queue.writeBuffer(paramsBuf, 0, layout.params);
  const pvCounts = pv.thresholds
    ? upload(runtime, new Tensor(new Int32Array(2), [2], 'int32'), 'pv counts')
    : undefined;
  const extraEntries: GPUBindGroupEntry[] = [
    { binding: 20, resource: { buffer: paramsBuf } },
    { binding: 21, resource: { buffer: layout.words.buffer } },
  ];
  if (pvCounts) extraEntries.push({ binding: 22, resource: { buffer: pvCounts.buffer } });
  const fixed = layout.blockQ !== undefined;
  const mmaWarps = fixed && fixedRows % 16 === 0 && fixedRows <= 256 ? fixedRows / 16 : 8;
  return {
    variant: {
      mmaOverrides: { warps: mmaWarps, rowsPerWarp: 16 },
      scalarWorkgroup: fixed && fixedRows <= MAX_SCALAR_ROWS ? fixedRows : DEFAULT_TILE_Q,
      workgroupsX: layout.numQBlocks,
      extraEntries,
      scalarCode: (cfg) =>
        scalarBlockSparseWgsl(cfg, { variable: isVariable, pvGroupRows: pvRows(cfg.workgroupSize, 1) }),
      mmaCode: (cfg) =>
        mmaBlockSparseWgsl(cfg, {
          variable: isVariable,
          pvGroupRows: pvRows(mmaBlockQ(cfg), cfg.rowsPerWarp),
        }),
    },
    pvCounts,
    release: () => paramsBuf.destroy(),
  };
}

/** What `recordBlockSparseSageGpu` recorded: the outputs, and what to free once submitted. */
export interface RecordedSparseSage {
  out: GpuTensor<'float32'>;
  lse: GpuTensor<'float32'>;
  stats: GpuBlockSparseStats;
  /** Frees the temporaries (not out, lse or the stage-2 counters); call after submitting. */
  release(): void;
}

/**
 * Block-sparse attention with SageAttention quantization on the GPU (sparse_attention.md §1.4),
 * recorded into `pass` over layout words already on the GPU: the preprocessing of sageAttention on the
 * GPU (sage-attention-gpu.ts recordSageOperandsGpu: K smoothing, Q/K INT8 or INT4 groups, V in FP8 or
 * INT8) and the block-sparse kernel over the quantized operands, with the LSE's smoothing correction.
 * The PV accumulators are f32, as in the dense SageAttention kernel on the GPU. NVFP4/MXFP4 Q/K (sage3)
 * and Q smoothing run on the CPU backend.
 */
export function recordBlockSparseSageGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: BlockSparseOptions,
  layout: GpuLayoutWords,
  pass: GPUComputePassEncoder,
): RecordedSparseSage {
  const { problem: p, pv } = resolveBlockSparseOptions(q, k, v, opts);
  const runtime = assertGpuFloatOperands(q, k, v, p);
  if (opts.tileQ !== undefined || opts.tileK !== undefined) {
    throw new UnsupportedOptionError(
      'tileQ and tileK tile the CPU kernel; the GPU kernels use their own tiles (plan.tileQ, plan.tileK)',
    );
  }
  const sage = typeof opts.sage === 'string' ? { preset: opts.sage } : opts.sage;
  if (typeof sage !== 'object' || sage === null) {
    throw new UnsupportedOptionError(
      `sage must be a SageAttention preset name ('sage1', 'sage2', 'sage2++', 'sage3') or an options object; got ${JSON.stringify(opts.sage)}`,
    );
  }
  const resolved = resolveSageOptions(q, k, v, { ...sage, layout: p.layout, smScale: p.smScale });
  const qk = resolved.config.qk.kind;
  if (qk !== 'int8' && qk !== 'int4') {
    throw new UnsupportedOptionError(
      `the GPU block-sparse kernel takes INT8 or INT4 Q/K (sage1, sage2, sage2++); Q/K '${qk}' with block-sparse layouts runs on the CPU backend: download() the tensors`,
    );
  }
  if (resolved.config.smoothQ) {
    throw new UnsupportedOptionError(
      'smoothQ (ΔS per query block) is not supported by the GPU block-sparse kernel; it runs on the CPU backend',
    );
  }
  const releases: (() => void)[] = [];
  const release = () => {
    for (const r of releases.splice(0)) r();
  };
  try {
    const ops = recordSageOperandsGpu(q, k, v, resolved, pass);
    releases.push(() => ops.release());
    const sparse = sparseVariant(runtime, pv, layout);
    releases.push(sparse.release);
    const plan = planSageKernelGpu(
      ops.q,
      ops.k,
      ops.v,
      {
        layout: p.layout,
        causal: p.causal,
        causalAlignment: p.causalAlignment,
        smScale: p.smScale,
        returnLse: p.returnLse,
        tier: opts.tier,
        mma: opts.mma,
        ...ops.kernel,
      },
      sparse.variant,
    );
    releases.push(() => plan.destroyTemporaries());
    plan.record(pass);
    if (p.returnLse) releases.push(recordLseCorrectionGpu(ops, resolved.problem, plan.lse, pass));
    let out = plan.out;
    if (ops.paddedHeadDim !== p.headDim) {
      const sliced = recordResizeLastDim(plan.out, p.headDim, pass);
      releases.push(sliced.release, () => plan.out.destroy());
      out = sliced.out;
    }
    return { out, lse: plan.lse, stats: { density: layout.density, pvCounts: sparse.pvCounts }, release };
  } catch (e) {
    release();
    throw e;
  }
}

/** blockSparseAttentionGpu with `sage`: a host layout uploaded, then recordBlockSparseSageGpu. */
function blockSparseSageGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions,
):
  | GpuTensor<'float32'>
  | AttentionWithLse<GpuTensor<'float32'>>
  | BlockSparseWithStats<GpuTensor<'float32'>, GpuBlockSparseStats> {
  const { problem: p } = resolveBlockSparse(q, k, v, layout, opts);
  const words = uploadLayoutWords(q, k, v, layout, opts);
  const wordsGpu = words.words;
  const runtime = wordsGpu.runtime;
  const enc = runtime.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  let rec: RecordedSparseSage;
  try {
    rec = recordBlockSparseSageGpu(q, k, v, opts, words, pass);
  } catch (e) {
    pass.end();
    wordsGpu.destroy();
    throw e;
  }
  pass.end();
  runtime.device.queue.submit([enc.finish()]);
  rec.release();
  wordsGpu.destroy();
  const { out, lse, stats } = rec;
  if (!p.returnLse) lse.destroy();
  if (opts.returnStats) return p.returnLse ? { out, lse, stats } : { out, stats };
  stats.pvCounts?.destroy();
  return p.returnLse ? { out, lse } : out;
}

function rowsPerSet(layout: BlockSparseLayout): number {
  return layout.kind === 'fixed' ? Math.ceil(layout.nq / layout.blockQ) : layout.numQBlocks;
}

/**
 * Block-sparse attention of GPU tensors; returns GPU tensors (see `blockSparseAttention`). With
 * `returnStats` the statistics' stage-2 counters stay on the GPU (readBlockSparseStats reads them).
 */
export function blockSparseAttentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions = {},
):
  | GpuTensor<'float32'>
  | AttentionWithLse<GpuTensor<'float32'>>
  | BlockSparseWithStats<GpuTensor<'float32'>, GpuBlockSparseStats> {
  if (opts.sage !== undefined) return blockSparseSageGpu(q, k, v, layout, opts);
  const plan = planBlockSparseGpu(q, k, v, layout, opts);
  submitComputePass(plan.out.runtime, (pass) => plan.record(pass));
  plan.destroyTemporaries();
  const returnLse = plan.problem.returnLse;
  if (!returnLse) plan.lse.destroy();
  if (opts.returnStats) {
    return returnLse
      ? { out: plan.out, lse: plan.lse, stats: plan.stats }
      : { out: plan.out, stats: plan.stats };
  }
  plan.stats.pvCounts?.destroy();
  return returnLse ? { out: plan.out, lse: plan.lse } : plan.out;
}
