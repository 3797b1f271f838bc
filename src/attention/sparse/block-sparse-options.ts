/**
 * The options of `blockSparseAttention` and their validation, shared by the CPU and WebGPU kernels so
 * both see the same resolved problem. Besides the shared attention options (layout HND/NHD, causal,
 * smScale, returnLse, nanPolicy) a call may ask for SpargeAttn's stage-2 PV skip
 * (sparse_attention.md §1.3) and for SageAttention quantization of QKᵀ and PV (§1.4).
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import type { GpuAttentionOptions } from '../dense-gpu.js';
import {
  type AttentionOptions,
  type AttentionProblem,
  type ShapedLike,
  resolveAttentionProblem,
} from '../options.js';
import type { SageOptions } from '../sage/options.js';
import type { SagePreset } from '../sage/presets.js';
import { type BlockSparseLayout, assertLayoutFits } from './block-layout.js';

/** SageAttention options for the sparse kernel: a preset name or the preset plus overrides. */
export type BlockSparseSage = SagePreset | Omit<SageOptions, keyof AttentionOptions>;

export interface BlockSparseOptions extends AttentionOptions {
  /**
   * SpargeAttn's stage-2 threshold `pvthreshd` (sparse_attention.md §1.3), one number or one per query
   * head. For each query tile and each key tile it visits, the kernel takes, over the rows of a group,
   * diff = max(m_local − m_prev) — m_local the row max of the tile's logits, m_prev the running max
   * before it, both in log2 units of the scaled logits — and computes exp2(S − m), the row sums and
   * P·V only if diff + pvThreshold > 0 (the released kernels' test, `local_max_diff + pv_threshold > 0`;
   * in the paper's terms, skip when the max is below λ = −pvThreshold). The running max, and the
   * rescale of O and l, advance either way. Rows that see no key in the tile take no part; a row that
   * has seen no key yet has m_prev = −∞, so its first tile always computes. Default: no test (never
   * skip). SpargeAttn's default is 50 (2⁻⁵⁰: essentially never), tuned values lie in [0, 50].
   */
  pvThreshold?: number | readonly number[];
  /**
   * Rows per stage-2 group (default: the whole query tile, the released kernels' `kPerBlock` mode).
   * A divisor of the tile, e.g. 32 for the paper's per-warp groups (WARP_Q = 32).
   */
  pvGroupRows?: number;
  /**
   * The kept key blocks at the end of each row that are always computed (default 2). The released
   * sm80/sm89 kernels apply the test only before their last two iterations (`iter < num_iterations − 1`,
   * then the second-last and last blocks unconditionally); sm90 exempts only the last block (1); the
   * paper's rule exempts none (0).
   */
  pvExemptLast?: number;
  /**
   * CPU: query rows per tile (default: the query block for fixed layouts; 128 for variable layouts, the
   * Triton reference's BLOCK_M for long sequences). A query block is processed in tiles of this many
   * rows; a tile is a stage-2 group unless pvGroupRows splits it.
   */
  tileQ?: number;
  /**
   * CPU: keys per online-softmax step and per stage-2 decision (default: the key block for fixed
   * layouts, as the reference decides per CTA_K block; 64 for variable layouts, the Triton reference's
   * BLOCK_N). The WebGPU kernels step by their own key tile (`plan.tileK`); pass that to reproduce a
   * GPU run's stage-2 decisions exactly.
   */
  tileK?: number;
  /**
   * SageAttention quantization of QKᵀ and PV (sparse_attention.md §1.4), e.g. 'sage1' (INT8 per-block
   * Q/K, FP16 P·V, the SpargeAttn sm80 path) or { preset: 'sage2', qk: { kind: 'int8', granularity:
   * 'per-block' }, vScaleMax: 2.25 } (the sm89 path). Quantized by the SageAttention quantizers
   * (quantizeQK, quantizeV) and evaluated with their exact accumulator models. Default: none (float).
   */
  sage?: BlockSparseSage;
  /** Also return statistics (density, stage-2 tiles and skips). Default false. */
  returnStats?: boolean;
  /** GPU kernel tier (see GpuAttentionOptions). */
  tier?: GpuAttentionOptions['tier'];
  /** GPU tensor-core tile parameters (see GpuAttentionOptions). */
  mma?: GpuAttentionOptions['mma'];
}

/** What `returnStats` adds. */
export interface BlockSparseStats {
  /** layoutDensity of the call: the fraction of B·Hq·Nq·Nk entries inside kept blocks (and the causal window). */
  density: number;
  /** (group, key tile) pairs that took the stage-2 test. 0 without pvThreshold. */
  pvTested: number;
  /** Of those, how many skipped exp2, the row sums and P·V. */
  pvSkipped: number;
  /** pvSkipped / pvTested (0 when nothing was tested). */
  pvSkipFraction: number;
}

/** Output, optional LSE and statistics, returned when `returnStats: true`. */
export interface BlockSparseWithStats<T, S = BlockSparseStats> {
  out: T;
  lse?: T;
  stats: S;
}

/** The stage-2 settings of a resolved call. */
export interface PvSkip {
  /** pvthreshd per query head, or null when the test is off. */
  thresholds: Float64Array | null;
  /** Rows per group, or 0 for the whole tile. */
  groupRows: number;
  exemptLast: number;
}

export interface ResolvedBlockSparse {
  problem: AttentionProblem;
  layout: BlockSparseLayout;
  pv: PvSkip;
  returnStats: boolean;
}

const EXTRA_KEYS = [
  'pvThreshold',
  'pvGroupRows',
  'pvExemptLast',
  'tileQ',
  'tileK',
  'sage',
  'returnStats',
  'tier',
  'mma',
];

/** Validates q, k, v, the layout and the options; fills in the defaults shared by both backends. */
export function resolveBlockSparse(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions = {},
): ResolvedBlockSparse {
  const r = resolveBlockSparseOptions(q, k, v, opts);
  assertLayoutFits(layout, r.problem);
  return { ...r, layout };
}

/** The same checks without a host layout (for layouts built on the GPU, sparge-block-map-gpu.ts). */
export function resolveBlockSparseOptions(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  opts: BlockSparseOptions = {},
): Omit<ResolvedBlockSparse, 'layout'> {
  const problem = resolveAttentionProblem(q, k, v, opts, EXTRA_KEYS);
  const returnStats = opts.returnStats ?? false;
  if (typeof returnStats !== 'boolean') {
    throw new UnsupportedOptionError(`returnStats must be true or false; got ${JSON.stringify(returnStats)}`);
  }
  return { problem, pv: resolvePvSkip(opts, problem.headsQ), returnStats };
}

function resolvePvSkip(opts: BlockSparseOptions, heads: number): PvSkip {
  const t = opts.pvThreshold;
  let thresholds: Float64Array | null = null;
  if (t !== undefined) {
    const values = typeof t === 'number' ? new Array<number>(heads).fill(t) : Array.from(t ?? []);
    if (typeof t !== 'number' && !Array.isArray(t) && !ArrayBuffer.isView(t)) {
      throw new UnsupportedOptionError(
        `pvThreshold must be a number or an array of one number per query head; got ${JSON.stringify(t)}`,
      );
    }
    if (values.length !== heads) {
      throw new UnsupportedOptionError(
        `pvThreshold must have one value per query head (${heads}); got ${values.length}`,
      );
    }
    if (!values.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new UnsupportedOptionError(
        `pvThreshold values must be finite numbers (SpargeAttn's pvthreshd, tuned in [0, 50]); got ${JSON.stringify(t)}`,
      );
    }
    thresholds = Float64Array.from(values);
  }
  const groupRows = opts.pvGroupRows ?? 0;
  if (opts.pvGroupRows !== undefined && (!Number.isSafeInteger(groupRows) || groupRows < 1)) {
    throw new UnsupportedOptionError(
      `pvGroupRows must be a positive integer; got ${String(opts.pvGroupRows)}`,
    );
  }
  const exemptLast = opts.pvExemptLast ?? 2;
  if (!Number.isSafeInteger(exemptLast) || exemptLast < 0) {
    throw new UnsupportedOptionError(
      `pvExemptLast must be a non-negative integer (2: sm80/sm89 kernels, 1: sm90, 0: the paper); got ${String(opts.pvExemptLast)}`,
    );
  }
  return { thresholds, groupRows, exemptLast };
}

/** Positive-integer CPU tile option, or the fallback when undefined. */
export function tileOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new UnsupportedOptionError(`${name} must be a positive integer; got ${String(value)}`);
  }
  return value as number;
}
