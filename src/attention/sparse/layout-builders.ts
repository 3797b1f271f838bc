/**
 * Builders of block-sparse layouts (block-layout.ts) from the forms the methods produce: a boolean
 * block map (SpargeAttn's [B, H, ⌈Nq/bq⌉, ⌈Nk/bk⌉] map, sparse_attention.md §1.2), a token-level
 * predicate or band (SVG's band masks, §2.2), and variable segments with a cluster-level map (SVG2's
 * permuted clusters, §3.2). Each returns a layout that `assertBlockLayout` accepts, with the kept
 * columns of every row ascending — the order the kernels visit them, which stage 2's PV skip depends
 * on (§1.3: a block can only be skipped once a larger max has been seen).
 */
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { Tensor, formatShape } from '../../core/tensor.js';
import type { FixedBlockLayout, VariableBlockLayout } from './block-layout.js';

/** The tiling of a fixed layout. */
export interface FixedTiling {
  /** Layout batch: 1 (shared by every batch entry, the default) or the attention call's B. */
  batch?: number;
  /** Layout heads: 1 (shared by every head, the default) or the attention call's Hq. */
  heads?: number;
  nq: number;
  nk: number;
  /** Query rows per block (SpargeAttn's default BLKQ = 128 on non-sm90 GPUs, §1.1). */
  blockQ: number;
  /** Keys per block (SpargeAttn's BLKK = 64). */
  blockK: number;
}

/** Keep predicate over one (b, h) entry (i, j) of the attention matrix. */
export type TokenPredicate = (b: number, h: number, i: number, j: number) => boolean;

/**
 * A fixed layout from a boolean block map of shape [B, H, ⌈nq/blockQ⌉, ⌈nk/blockK⌉] (1 = compute the
 * block), as SpargeAttn's `get_block_map_meansim` returns and `block_sparse_sage2_attn_cuda` takes.
 * The layout's batch and heads are the map's.
 */
export function layoutFromBlockMap(
  map: Tensor,
  tiling: Omit<FixedTiling, 'batch' | 'heads'>,
): FixedBlockLayout {
  if (!(map instanceof Tensor)) {
    throw new UnsupportedOptionError(`the block map must be a host Tensor of dtype bool; got ${String(map)}`);
  }
  if (map.dtype !== 'bool') {
    throw new DTypeError(
      `the block map must have dtype bool (1 keeps a block); got ${map.dtype}. Convert with tensor(values, shape, 'bool').`,
    );
  }
  const { nq, nk, blockQ, blockK } = checkTiling({ ...tiling, batch: 1, heads: 1 });
  const qb = Math.ceil(nq / blockQ);
  const kb = Math.ceil(nk / blockK);
  if (
    map.shape.length !== 4 ||
    map.shape[2] !== qb ||
    map.shape[3] !== kb ||
    map.shape[0] < 1 ||
    map.shape[1] < 1
  ) {
    throw new ShapeError(
      `the block map must have shape [B, H, ⌈nq/blockQ⌉, ⌈nk/blockK⌉] = [B, H, ${qb}, ${kb}] for nq = ${nq}, nk = ${nk}, ` +
        `blockQ = ${blockQ}, blockK = ${blockK}; got ${formatShape(map.shape)}`,
    );
  }
  const [batch, heads] = map.shape;
  const rows = batch * heads * qb;
  const data = map.data;
  const rowOffsets = new Int32Array(rows + 1);
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) count++;
  const columns = new Int32Array(count);
  let e = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < kb; j++) if (data[r * kb + j] !== 0) columns[e++] = j;
    rowOffsets[r + 1] = e;
  }
  return { kind: 'fixed', batch, heads, nq, nk, blockQ, blockK, rowOffsets, columns };
}

/**
 * A fixed layout that keeps a block when the predicate keeps any entry inside it (the coarsening of a
 * token mask to blocks that a block kernel computes). Calls the predicate up to B·H·nq·nk times (it
 * stops at the first kept entry of a block), so it suits moderate sizes; closed forms such as
 * `bandLayout` are faster.
 */
export function layoutFromTokenPredicate(tiling: FixedTiling, keep: TokenPredicate): FixedBlockLayout {
  if (typeof keep !== 'function') {
    throw new UnsupportedOptionError(`keep must be a function (b, h, i, j) => boolean; got ${typeof keep}`);
  }
  const t = checkTiling(tiling);
  return buildFixed(t, (b, h, q0, q1, k0, k1) => {
    for (let i = q0; i < q1; i++) for (let j = k0; j < k1; j++) if (keep(b, h, i, j)) return true;
    return false;
  });
}

/**
 * The boolean token mask [B, H, n, n] of a keep predicate (1 where it keeps (i, j)), for the float64
 * oracle (`attentionReference(q, k, v, { mask })`) — the form SVG's and SVG2's plans are checked in.
 */
export function maskFromPredicate(
  batch: number,
  heads: number,
  n: number,
  keep: TokenPredicate,
): Tensor<'bool'> {
  const mask = new Uint8Array(batch * heads * n * n);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const base = (b * heads + h) * n * n;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) mask[base + i * n + j] = keep(b, h, i, j) ? 1 : 0;
    }
  }
  return new Tensor(mask, [batch, heads, n, n], 'bool');
}

export interface BandOptions extends FixedTiling {
  /** Keep entries with |i − j| ≤ window (a band of half-width `window` around the diagonal). */
  window: number;
  /** Also keep every entry whose key index is below this (a sink, e.g. SVG's first frame; default 0). */
  sinkKeys?: number;
}

/**
 * A fixed layout of the blocks that meet the band |i − j| ≤ window, plus the key columns below
 * `sinkKeys` (sparse_attention.md §2.2: SVG's band masks with the first-frame sink). A block of rows
 * [q0, q1) and keys [k0, k1) meets the band iff the gap between the two intervals is at most
 * `window`: k0 ≤ q1 − 1 + window and q0 ≤ k1 − 1 + window.
 */
export function bandLayout(opts: BandOptions): FixedBlockLayout {
  const t = checkTiling(opts);
  const window = opts.window;
  if (typeof window !== 'number' || !(window >= 0)) {
    throw new UnsupportedOptionError(
      `window must be a number ≥ 0 (the band half-width); got ${String(window)}`,
    );
  }
  const sink = opts.sinkKeys ?? 0;
  if (!Number.isSafeInteger(sink) || sink < 0) {
    throw new UnsupportedOptionError(`sinkKeys must be a non-negative integer; got ${String(sink)}`);
  }
  return buildFixed(
    t,
    (_b, _h, q0, q1, k0, k1) => k0 < sink || (k0 <= q1 - 1 + window && q0 <= k1 - 1 + window),
  );
}

/** A fixed layout that keeps every block (dense attention through the sparse kernel). */
export function denseLayout(tiling: FixedTiling): FixedBlockLayout {
  return buildFixed(checkTiling(tiling), () => true);
}

export interface SegmentOptions {
  /**
   * Query segment sizes per (b, h): B·H·Cq entries in (b, h, segment) order, each ≥ 0 (empty clusters
   * are allowed); every (b, h) must sum to the same nq.
   */
  qSizes: ArrayLike<number>;
  /** Key segment sizes per (b, h): B·H·Ck entries, every (b, h) summing to the same nk. */
  kSizes: ArrayLike<number>;
  /** Which (query segment, key segment) pairs to compute: dtype bool, shape [B, H, Cq, Ck]. */
  map: Tensor;
}

/**
 * A variable layout from cluster sizes and a cluster-level map (SVG2 §3.2 step 5: block row i has
 * |Q_i| rows, block column j has |K_j| columns, computed where M_ij = 1). B and H come from the map.
 * Empty segments are kept in the bounds (they cost nothing); a kept pair whose query or key segment
 * is empty is dropped from the CSR, since it has no entries.
 */
export function layoutFromSegments(opts: SegmentOptions): VariableBlockLayout {
  const { map } = opts;
  if (!(map instanceof Tensor) || map.dtype !== 'bool') {
    throw new DTypeError(
      `map must be a host Tensor of dtype bool, shape [B, H, Cq, Ck]; got ${map instanceof Tensor ? map.dtype : String(map)}`,
    );
  }
  if (map.shape.length !== 4 || map.shape.some((d) => d < 1)) {
    throw new ShapeError(
      `map must have shape [B, H, Cq, Ck] with every dim ≥ 1; got ${formatShape(map.shape)}`,
    );
  }
  const [batch, heads, cq, ck] = map.shape;
  const sets = batch * heads;
  const qBounds = segmentBounds(opts.qSizes, sets, cq, 'qSizes');
  const kBounds = segmentBounds(opts.kSizes, sets, ck, 'kSizes');
  const rowOffsets = new Int32Array(sets * cq + 1);
  const cols: number[] = [];
  for (let s = 0; s < sets; s++) {
    for (let i = 0; i < cq; i++) {
      const qEmpty = qBounds[s * (cq + 1) + i + 1] === qBounds[s * (cq + 1) + i];
      for (let j = 0; j < ck; j++) {
        const kEmpty = kBounds[s * (ck + 1) + j + 1] === kBounds[s * (ck + 1) + j];
        if (map.data[(s * cq + i) * ck + j] !== 0 && !qEmpty && !kEmpty) cols.push(j);
      }
      rowOffsets[s * cq + i + 1] = cols.length;
    }
  }
  return {
    kind: 'variable',
    batch,
    heads,
    nq: qBounds[cq],
    nk: kBounds[ck],
    numQBlocks: cq,
    numKBlocks: ck,
    qBounds,
    kBounds,
    rowOffsets,
    columns: Int32Array.from(cols),
  };
}

function segmentBounds(sizes: ArrayLike<number>, sets: number, blocks: number, name: string): Int32Array {
  if (sizes === null || typeof sizes !== 'object' || typeof sizes.length !== 'number') {
    throw new UnsupportedOptionError(`${name} must be an array of segment sizes; got ${String(sizes)}`);
  }
  if (sizes.length !== sets * blocks) {
    throw new ShapeError(
      `${name} must have B·H·segments = ${sets}·${blocks} = ${sets * blocks} entries (one size per segment of each (b, h)); got ${sizes.length}`,
    );
  }
  const bounds = new Int32Array(sets * (blocks + 1));
  let total = -1;
  for (let s = 0; s < sets; s++) {
    let acc = 0;
    for (let i = 0; i < blocks; i++) {
      const n = sizes[s * blocks + i];
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new ShapeError(`${name}[${s * blocks + i}] must be a non-negative integer size; got ${n}`);
      }
      acc += n;
      bounds[s * (blocks + 1) + i + 1] = acc;
    }
    if (total >= 0 && acc !== total) {
      throw new ShapeError(
        `${name} of every (b, h) must sum to the same length; set 0 sums to ${total}, set ${s} to ${acc}`,
      );
    }
    total = acc;
  }
  return bounds;
}

interface CheckedTiling {
  batch: number;
  heads: number;
  nq: number;
  nk: number;
  blockQ: number;
  blockK: number;
}

function checkTiling(t: FixedTiling): CheckedTiling {
  if (typeof t !== 'object' || t === null) {
    throw new UnsupportedOptionError(`expected a tiling { nq, nk, blockQ, blockK }; got ${String(t)}`);
  }
  const out = {
    batch: t.batch ?? 1,
    heads: t.heads ?? 1,
    nq: t.nq,
    nk: t.nk,
    blockQ: t.blockQ,
    blockK: t.blockK,
  };
  for (const [name, value, min] of [
    ['batch', out.batch, 1],
    ['heads', out.heads, 1],
    ['nq', out.nq, 0],
    ['nk', out.nk, 0],
    ['blockQ', out.blockQ, 1],
    ['blockK', out.blockK, 1],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new UnsupportedOptionError(`${name} must be an integer ≥ ${min}; got ${String(value)}`);
    }
  }
  return out;
}

function buildFixed(
  t: CheckedTiling,
  keepBlock: (b: number, h: number, q0: number, q1: number, k0: number, k1: number) => boolean,
): FixedBlockLayout {
  const qb = Math.ceil(t.nq / t.blockQ);
  const kb = Math.ceil(t.nk / t.blockK);
  const rowOffsets = new Int32Array(t.batch * t.heads * qb + 1);
  const cols: number[] = [];
  for (let b = 0; b < t.batch; b++) {
    for (let h = 0; h < t.heads; h++) {
      for (let i = 0; i < qb; i++) {
        const q0 = i * t.blockQ;
        const q1 = Math.min(q0 + t.blockQ, t.nq);
        for (let j = 0; j < kb; j++) {
          const k0 = j * t.blockK;
          if (keepBlock(b, h, q0, q1, k0, Math.min(k0 + t.blockK, t.nk))) cols.push(j);
        }
        rowOffsets[(b * t.heads + h) * qb + i + 1] = cols.length;
      }
    }
  }
  return { kind: 'fixed', ...t, rowOffsets, columns: Int32Array.from(cols) };
}
