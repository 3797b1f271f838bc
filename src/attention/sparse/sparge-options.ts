/**
 * The options of SpargeAttn's stage 1 (`spargeBlockMap`) and of `spargeAttention`, with the defaults
 * of the reference's public API (sparse_attention.md §1.1): the recommended tuning-free
 * `spas_sage2_attn_meansim_topk_cuda` (topk 0.5, simthreshd1 −0.1, pvthreshd 50) unless a cdfThreshold
 * is given, in which case `spas_sage2_attn_meansim_cuda`'s simthreshd1 0.6 applies. Hyperparameters may
 * be one number or one per query head (`utils.hyperparameter_check`).
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import type { Layout } from '../../core/layout.js';

/** One value for every query head, or one per head. */
export type PerHead = number | readonly number[];

/** How TopCdf turns the cumulative probability of a sorted row into a block count (§1.2 step 5). */
export type CdfRule = 'exclusive' | 'inclusive';

export interface SpargeBlockMapOptions {
  /** Tensor layout of q and k: 'HND' (default) or 'NHD'. */
  layout?: Layout;
  /** Query rows per block (default 128: BLKQ on non-sm90 GPUs, §1.1). */
  blockQ?: number;
  /** Keys per block (default 64: BLKK on non-sm90 GPUs). */
  blockK?: number;
  /**
   * Subtract the token mean of K before pooling and similarity (default true, `smooth_k=True`, §1.2
   * step 1). It changes no attention logit's softmax, only the blocks' pooled keys and similarities.
   */
  smoothK?: boolean;
  /**
   * θ, the reference's `simthreshd1` (§1.2 step 3): a block is similar iff the mean of all pairwise
   * cosine similarities of its tokens (diagonal included) is strictly greater. Default −0.1 (topk API),
   * or 0.6 when cdfThreshold is given (cdf API).
   */
  simThreshold?: PerHead;
  /** τ, the reference's `cdfthreshd` (§1.2 step 5, TopCdf). Mutually exclusive with topk. */
  cdfThreshold?: PerHead;
  /**
   * 'exclusive' (default): keep the blocks whose prefix sum of the sorted row is ≤ τ — the reference's
   * `searchsorted(cdf, τ, right=True)`, which does not keep the block that crosses τ. 'inclusive': keep
   * the smallest prefix whose mass reaches τ (the crossing block too; sparse_attention.md §5 explains why
   * a flat-topped row needs it).
   */
  cdfRule?: CdfRule;
  /** Keep ⌊topk·#Kblocks⌋ blocks per row (§1.2 step 5, TopK). Default 0.5 when cdfThreshold is not given. */
  topk?: PerHead;
  /**
   * Block-causal map: block (i, j) is dropped when j ≥ (i + 1)·blockQ/blockK (the reference's
   * `fill_causal_mask`, top-left aligned). Default false.
   */
  causal?: boolean;
  /** Force key block 0 on in every row (`attention_sink`, default false). */
  attentionSink?: boolean;
}

export interface ResolvedSpargeMap {
  layout: Layout;
  blockQ: number;
  blockK: number;
  smoothK: boolean;
  simThreshold: Float64Array;
  /** τ per head (selection by TopCdf), or null for TopK. */
  cdfThreshold: Float64Array | null;
  cdfRule: CdfRule;
  /** topk per head (selection by TopK), or null for TopCdf. */
  topk: Float64Array | null;
  causal: boolean;
  attentionSink: boolean;
}

export const SPARGE_MAP_KEYS: readonly string[] = [
  'layout',
  'blockQ',
  'blockK',
  'smoothK',
  'simThreshold',
  'cdfThreshold',
  'cdfRule',
  'topk',
  'causal',
  'attentionSink',
];

/** Topk-API defaults (§1.1). */
export const SPARGE_TOPK_DEFAULTS = Object.freeze({ topk: 0.5, simThreshold: -0.1, pvThreshold: 50 });
/** Cdf-API defaults (§1.1). */
export const SPARGE_CDF_DEFAULTS = Object.freeze({ cdfThreshold: 0.98, simThreshold: 0.6, pvThreshold: 50 });

/** Validates the stage-1 options for `heads` query heads and fills in the reference's defaults. */
export function resolveSpargeMap(opts: SpargeBlockMapOptions, heads: number): ResolvedSpargeMap {
  const o = opts ?? {};
  const layout = o.layout ?? 'HND';
  if (layout !== 'HND' && layout !== 'NHD') {
    throw new UnsupportedOptionError(`layout must be 'HND' or 'NHD'; got ${JSON.stringify(layout)}`);
  }
  const blockQ = positiveInt(o.blockQ, 'blockQ', 128);
  const blockK = positiveInt(o.blockK, 'blockK', 64);
  if (o.cdfThreshold !== undefined && o.topk !== undefined) {
    throw new UnsupportedOptionError(
      'give cdfThreshold (TopCdf, the cdf API) or topk (TopK, the recommended API), not both — the reference asserts exactly one',
    );
  }
  const useCdf = o.cdfThreshold !== undefined;
  const simThreshold = perHead(
    o.simThreshold ?? (useCdf ? SPARGE_CDF_DEFAULTS.simThreshold : SPARGE_TOPK_DEFAULTS.simThreshold),
    heads,
    'simThreshold',
    -Infinity,
    Infinity,
  );
  const cdfThreshold = useCdf ? perHead(o.cdfThreshold as PerHead, heads, 'cdfThreshold', 0, 1) : null;
  const topk = useCdf ? null : perHead(o.topk ?? SPARGE_TOPK_DEFAULTS.topk, heads, 'topk', 0, 1);
  const cdfRule = o.cdfRule ?? 'exclusive';
  if (cdfRule !== 'exclusive' && cdfRule !== 'inclusive') {
    throw new UnsupportedOptionError(
      `cdfRule must be 'exclusive' (the reference's searchsorted) or 'inclusive' (keeps the crossing block); got ${JSON.stringify(cdfRule)}`,
    );
  }
  return {
    layout,
    blockQ,
    blockK,
    smoothK: bool(o.smoothK, 'smoothK', true),
    simThreshold,
    cdfThreshold,
    cdfRule,
    topk,
    causal: bool(o.causal, 'causal', false),
    attentionSink: bool(o.attentionSink, 'attentionSink', false),
  };
}

/** A per-head hyperparameter as one finite value per head, each within [lo, hi]. */
export function perHead(value: PerHead, heads: number, name: string, lo: number, hi: number): Float64Array {
  const values = typeof value === 'number' ? new Array<number>(heads).fill(value) : value;
  if (typeof value !== 'number' && !Array.isArray(value) && !ArrayBuffer.isView(value)) {
    throw new UnsupportedOptionError(
      `${name} must be a number or one number per query head; got ${JSON.stringify(value)}`,
    );
  }
  if (values.length !== heads) {
    throw new UnsupportedOptionError(
      `${name} must have one value per query head (${heads}); got ${values.length}`,
    );
  }
  const out = Float64Array.from(values as ArrayLike<number>);
  for (const x of out) {
    if (!Number.isFinite(x) || x < lo || x > hi) {
      throw new UnsupportedOptionError(
        `${name} values must be finite${Number.isFinite(lo) ? ` and in [${lo}, ${hi}]` : ''}; got ${JSON.stringify(value)}`,
      );
    }
  }
  return out;
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new UnsupportedOptionError(
      `${name} must be a positive integer (default ${fallback}); got ${String(value)}`,
    );
  }
  return value as number;
}

function bool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new UnsupportedOptionError(`${name} must be true or false; got ${JSON.stringify(value)}`);
  }
  return value;
}
