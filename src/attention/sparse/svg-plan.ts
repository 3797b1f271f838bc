/**
 * Sparse VideoGen's per-call plan (sparse_attention.md §2): the dense warm-up decision, the band from the
 * density budget, online profiling that labels every head spatial or temporal, and the per-head token
 * permutation that puts temporal heads into token-major order. `svgAttention` executes a plan; calling
 * `planSvg` yourself shows which head got which mask (and its MSEs) before or instead of executing.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { convertLayout } from '../../core/layout.js';
import type { Seed } from '../../core/rng.js';
import { Tensor } from '../../core/tensor.js';
import type { KeepPredicate } from '../metrics.js';
import {
  type AttentionOptions,
  type AttentionProblem,
  type ShapedLike,
  resolveAttentionProblem,
} from '../options.js';
import type { FixedBlockLayout } from './block-layout.js';
import { DENSE_WARMUP_KEYS, type DenseWarmupOptions, isDenseWarmup } from './dense-warmup.js';
import {
  type SvgBandWidth,
  type SvgGeometry,
  type SvgHeadKind,
  fixedTileMask,
  svgBandLayout,
  svgBandWidth,
  svgPermutation,
  temporalKernelIndex,
} from './svg-layout.js';
import { type SvgProfile, svgProfile, svgSampleRows } from './svg-profile.js';
import { layoutDensity } from './block-layout.js';
import { intOption } from './option-values.js';
import { maskFromPredicate } from './layout-builders.js';

export interface SvgOptions extends AttentionOptions, DenseWarmupOptions {
  /** Latent frames F. */
  frames: number;
  /** Latent rows per frame. */
  height: number;
  /** Latent columns per frame; L = height·width tokens per frame. */
  width: number;
  /** Text/context tokens before the video tokens, attended densely (default 0; Cog prepends its text). */
  prefixTokens?: number;
  /** Fraction of the attention matrix the band keeps (the reference's `--sparsity`, default 0.25). */
  density?: number;
  /** Profiling rows t (default 64, the reference CLI's `--num_sampled_rows`). */
  sampledRows?: number;
  /** Rows are drawn from [0, sampleMaxRow) (default 10000, `--sample_mse_max_row`). */
  sampleMaxRow?: number;
  /**
   * Keep the first frame's key columns for every query (default false). Wan's processor does (and, in
   * kernel order, so for temporal heads it covers L/F positions of every frame instead, §2.2 step 4);
   * Hunyuan's does not. Off by default so that `density` is what the band costs.
   */
  firstFrameSink?: boolean;
  /** Query rows per kernel tile (default 128, FlexAttention's block). */
  blockQ?: number;
  /** Keys per kernel tile (default 128). */
  blockK?: number;
  /** Seed of the profiling row draw (default 0). */
  seed?: Seed;
  /**
   * Skip profiling and use these kinds: one per query head (shared over the batch) or one per (b, h).
   * For oracle comparisons and for reusing an earlier classification (§2.4: caching it across steps
   * hurts quality, so the reference profiles every call).
   */
  headKinds?: readonly SvgHeadKind[];
  /** A plan from `planSvg` for these inputs; skips planning. */
  plan?: SvgPlan;
}

export interface SvgPlan {
  readonly batch: number;
  readonly heads: number;
  readonly geometry: SvgGeometry;
  /** True when the dense warm-up applies: the call runs dense attention and nothing below is used. */
  readonly dense: boolean;
  readonly band: SvgBandWidth;
  /** The band's kept tiles in kernel order, shared by every head (batch 1, heads 1). */
  readonly layout: FixedBlockLayout;
  /** Fraction of the N×N matrix the kept tiles compute (1 when dense). */
  readonly density: number;
  /** Per (b, h), b-major. */
  readonly headKinds: readonly SvgHeadKind[];
  /** The profiling behind `headKinds` (absent when dense or when `headKinds` was given). */
  readonly profile?: SvgProfile;
  /** The gather permutation into kernel order, B·H·N entries (permute.ts convention). */
  readonly permutation: Int32Array;
}

export const SVG_OPTION_KEYS = [
  'frames',
  'height',
  'width',
  'prefixTokens',
  'density',
  'sampledRows',
  'sampleMaxRow',
  'firstFrameSink',
  'blockQ',
  'blockK',
  'seed',
  'headKinds',
  'plan',
  ...DENSE_WARMUP_KEYS,
];

/** Shape and option checks shared by the CPU and GPU paths. */
export function resolveSvgProblem(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  opts: SvgOptions,
): { problem: AttentionProblem; geometry: SvgGeometry } {
  if (typeof opts !== 'object' || opts === null) {
    throw new UnsupportedOptionError('svgAttention needs options { frames, height, width, … }');
  }
  const problem = resolveAttentionProblem(q, k, v, opts, SVG_OPTION_KEYS);
  if (problem.causal) {
    throw new UnsupportedOptionError(
      'Sparse VideoGen is for bidirectional video attention; causal: true is not supported',
    );
  }
  if (problem.headsKv !== problem.headsQ) {
    throw new UnsupportedOptionError(
      `Sparse VideoGen permutes K and V per head, so every query head needs its own kv head; got ` +
        `${problem.headsQ} query heads and ${problem.headsKv} kv heads. Repeat k and v per query head first.`,
    );
  }
  for (const name of ['frames', 'height', 'width'] as const) {
    if (opts[name] === undefined) {
      throw new UnsupportedOptionError(
        `svgAttention needs the clip's ${name} (latent ${name === 'frames' ? 'frames F' : name})`,
      );
    }
  }
  const frames = intOption(opts.frames, 'frames', 1, 1);
  const height = intOption(opts.height, 'height', 1, 1);
  const width = intOption(opts.width, 'width', 1, 1);
  const prefixTokens = intOption(opts.prefixTokens, 'prefixTokens', 0, 0);
  const geometry = { prefixTokens, frames, tokensPerFrame: height * width };
  const n = prefixTokens + frames * height * width;
  if (problem.tokensQ !== n || problem.tokensKv !== n) {
    throw new ShapeError(
      `Sparse VideoGen attends a clip to itself: q and k must both have prefixTokens + frames·height·width = ` +
        `${prefixTokens} + ${frames}·${height}·${width} = ${n} tokens; got Nq = ${problem.tokensQ}, Nk = ${problem.tokensKv}`,
    );
  }
  return { problem, geometry };
}

function resolveHeadKinds(kinds: readonly SvgHeadKind[], batch: number, heads: number): SvgHeadKind[] {
  if (!Array.isArray(kinds) || !kinds.every((x) => x === 'spatial' || x === 'temporal')) {
    throw new UnsupportedOptionError(
      `headKinds must be an array of 'spatial' | 'temporal'; got ${JSON.stringify(kinds)}`,
    );
  }
  if (kinds.length === heads) return Array.from({ length: batch * heads }, (_, s) => kinds[s % heads]);
  if (kinds.length === batch * heads) return [...kinds];
  throw new ShapeError(
    `headKinds needs one kind per head (${heads}) or per (batch, head) (${batch * heads}); got ${kinds.length}`,
  );
}

/** Everything of a plan that does not need the tensors' values, and what profiling needs. */
export interface SvgPlanShape {
  problem: AttentionProblem;
  geometry: SvgGeometry;
  base: Pick<SvgPlan, 'batch' | 'heads' | 'geometry' | 'band' | 'layout' | 'density'>;
  dense: boolean;
  /** Per (b, h), when given as an option. */
  headKinds?: SvgHeadKind[];
  /** The sampled rows and tiles, when the kinds come from profiling. */
  profiling?: { rows: Int32Array; blockQ: number; blockK: number };
}

/** Validates an SVG call and builds the value-independent part of its plan (shared by CPU and GPU). */
export function resolveSvgPlanShape(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  opts: SvgOptions,
): SvgPlanShape {
  const { problem, geometry } = resolveSvgProblem(q, k, v, opts);
  const { batch, headsQ: heads, tokensQ: n } = problem;
  const band = svgBandWidth(opts.density ?? 0.25, geometry);
  const blockQ = intOption(opts.blockQ, 'blockQ', 128, 1);
  const blockK = intOption(opts.blockK, 'blockK', 128, 1);
  const firstFrameSink = opts.firstFrameSink ?? false;
  if (typeof firstFrameSink !== 'boolean') {
    throw new UnsupportedOptionError(
      `firstFrameSink must be true or false; got ${JSON.stringify(firstFrameSink)}`,
    );
  }
  const sampledRows = intOption(opts.sampledRows, 'sampledRows', 64, 1);
  const sampleMaxRow = intOption(opts.sampleMaxRow, 'sampleMaxRow', 10000, 1);
  const layout = svgBandLayout(geometry, { width: band.width, firstFrameSink, blockQ, blockK });
  const base = { batch, heads, geometry, band, layout, density: layoutDensity(layout) };
  const dense = isDenseWarmup(opts);
  if (dense) return { problem, geometry, base, dense };
  if (opts.headKinds !== undefined) {
    return { problem, geometry, base, dense, headKinds: resolveHeadKinds(opts.headKinds, batch, heads) };
  }
  const rows = svgSampleRows(n, sampledRows, sampleMaxRow, opts.seed ?? 0);
  return { problem, geometry, base, dense, profiling: { rows, blockQ, blockK } };
}

/**
 * The plan of one SVG call on host tensors (see the module comment). Profiling reads q, k and v in
 * float64; the layout depends only on the geometry and options.
 */
export function planSvg(q: Tensor, k: Tensor, v: Tensor, opts: SvgOptions): SvgPlan {
  const shape = resolveSvgPlanShape(q, k, v, opts);
  const { problem, geometry, base, dense, profiling } = shape;
  const { batch, headsQ: heads, tokensQ: n, headDim: d } = problem;
  if (dense) {
    const kinds = new Array<SvgHeadKind>(batch * heads).fill('spatial');
    return { ...base, dense, density: 1, headKinds: kinds, permutation: svgPermutation(kinds, geometry) };
  }
  if (!profiling) {
    const kinds = shape.headKinds!;
    return { ...base, dense, headKinds: kinds, permutation: svgPermutation(kinds, geometry) };
  }
  const hnd = (t: Tensor) =>
    convertLayout(new Tensor(t.toFloat64(), t.shape, 'float64'), problem.layout, 'HND').data as Float64Array;
  const profile = svgProfile(
    {
      q: hnd(q),
      k: hnd(k),
      v: hnd(v),
      heads: batch * heads,
      tokens: n,
      headDim: d,
      smScale: problem.smScale,
      geometry,
      tiles: fixedTileMask(base.layout),
      blockQ: profiling.blockQ,
      blockK: profiling.blockK,
    },
    profiling.rows,
  );
  return {
    ...base,
    dense,
    headKinds: profile.headKinds,
    profile,
    permutation: svgPermutation(profile.headKinds, geometry),
  };
}

/**
 * Which keys a plan keeps, in the original token order, as a `metrics.recall` predicate: key j is kept
 * for query i of (b, h) iff their kernel-order positions fall in a kept tile.
 */
export function svgKeepPredicate(plan: SvgPlan): KeepPredicate {
  if (plan.dense) return () => true;
  const { layout, geometry: g, heads } = plan;
  const tiles = fixedTileMask(layout);
  const nkb = Math.ceil(layout.nk / layout.blockK);
  const n = layout.nq;
  const temporalAt = new Int32Array(n);
  for (let o = 0; o < n; o++) temporalAt[o] = temporalKernelIndex(o, g);
  return (b, h, i, j) => {
    const temporal = plan.headKinds[b * heads + h] === 'temporal';
    const r = temporal ? temporalAt[i] : i;
    const c = temporal ? temporalAt[j] : j;
    return tiles[Math.floor(r / layout.blockQ) * nkb + Math.floor(c / layout.blockK)] === 1;
  };
}

/** The plan's keep mask as a bool tensor [B, H, N, N] in the original order (for the float64 oracle). */
export function svgMask(plan: SvgPlan): Tensor<'bool'> {
  return maskFromPredicate(plan.batch, plan.heads, plan.layout.nq, svgKeepPredicate(plan));
}
