/**
 * Which parts of the attention matrix a block-sparse kernel computes (sparse_attention.md §4). Two
 * shapes of blocks, one CSR scheme:
 *
 * - `fixed`: query tiles of `blockQ` rows and key tiles of `blockK` columns (SpargeAttn, SVG); the last
 *   tile of each axis may be partial.
 * - `variable`: per (batch, head), contiguous query segments and key segments of any size, including 0
 *   (SVG2's clusters after the permutation; `qBounds` / `kBounds` are the exclusive prefix sums of the
 *   cluster sizes).
 *
 * In both, row r of the CSR is the query block (b, h, i) with r = (b·H + h)·numQBlocks + i, and
 * `columns[rowOffsets[r] .. rowOffsets[r + 1])` are the kept key blocks of that row, ascending. A
 * query block with no kept key block produces zeros (and LSE −∞), like a fully masked row.
 *
 * Broadcasting: `batch` may be 1 for a layout shared by every batch entry and `heads` may be 1 for a
 * layout shared by every query head (SVG's one band for all heads after its layout transform); then
 * b or h is 0 in the row index above. Otherwise they must equal the attention call's B and Hq.
 *
 * This file also holds what every consumer of a layout needs: validation against an attention problem
 * (typed errors), the bounds of a block, the density (the fraction of the Nq×Nk entries a kernel
 * computes) and the equivalent token-level boolean mask for the float64 oracle.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import { visibleKeys } from '../causal.js';
import type { AttentionProblem, CausalAlignment } from '../options.js';

export interface FixedBlockLayout {
  readonly kind: 'fixed';
  readonly batch: number;
  readonly heads: number;
  readonly nq: number;
  readonly nk: number;
  readonly blockQ: number;
  readonly blockK: number;
  /** B·H·⌈nq/blockQ⌉ + 1 offsets into `columns`. */
  readonly rowOffsets: Int32Array;
  /** Kept key-block indices in [0, ⌈nk/blockK⌉), ascending within a row. */
  readonly columns: Int32Array;
}

export interface VariableBlockLayout {
  readonly kind: 'variable';
  readonly batch: number;
  readonly heads: number;
  readonly nq: number;
  readonly nk: number;
  /** Query segments per (b, h). */
  readonly numQBlocks: number;
  /** Key segments per (b, h). */
  readonly numKBlocks: number;
  /** B·H·(numQBlocks + 1) boundaries: segment i of (b, h) is rows [qBounds[o + i], qBounds[o + i + 1]), o = (b·H + h)·(numQBlocks + 1); first 0, last nq. */
  readonly qBounds: Int32Array;
  /** B·H·(numKBlocks + 1) boundaries, the same way for keys; first 0, last nk. */
  readonly kBounds: Int32Array;
  /** B·H·numQBlocks + 1 offsets into `columns`. */
  readonly rowOffsets: Int32Array;
  /** Kept key-segment indices in [0, numKBlocks), ascending within a row. */
  readonly columns: Int32Array;
}

export type BlockSparseLayout = FixedBlockLayout | VariableBlockLayout;

/** Query blocks per (b, h): ⌈nq/blockQ⌉ for fixed layouts, numQBlocks for variable ones. */
export function numQueryBlocks(layout: BlockSparseLayout): number {
  return layout.kind === 'fixed' ? Math.ceil(layout.nq / layout.blockQ) : layout.numQBlocks;
}

/** Key blocks per (b, h): ⌈nk/blockK⌉ for fixed layouts, numKBlocks for variable ones. */
export function numKeyBlocks(layout: BlockSparseLayout): number {
  return layout.kind === 'fixed' ? Math.ceil(layout.nk / layout.blockK) : layout.numKBlocks;
}

/** The CSR row of query block i of (b, h), with broadcasting over a layout batch or head count of 1. */
export function csrRow(layout: BlockSparseLayout, b: number, h: number, i: number): number {
  const lb = layout.batch === 1 ? 0 : b;
  const lh = layout.heads === 1 ? 0 : h;
  return (lb * layout.heads + lh) * numQueryBlocks(layout) + i;
}

/** Rows [lo, hi) of query block i of (b, h). */
export function queryBlockBounds(
  layout: BlockSparseLayout,
  b: number,
  h: number,
  i: number,
): [number, number] {
  if (layout.kind === 'fixed') {
    const lo = i * layout.blockQ;
    return [lo, Math.min(lo + layout.blockQ, layout.nq)];
  }
  const o = segmentBase(layout, b, h, layout.numQBlocks);
  return [layout.qBounds[o + i], layout.qBounds[o + i + 1]];
}

/** Keys [lo, hi) of key block j of (b, h). */
export function keyBlockBounds(layout: BlockSparseLayout, b: number, h: number, j: number): [number, number] {
  if (layout.kind === 'fixed') {
    const lo = j * layout.blockK;
    return [lo, Math.min(lo + layout.blockK, layout.nk)];
  }
  const o = segmentBase(layout, b, h, layout.numKBlocks);
  return [layout.kBounds[o + j], layout.kBounds[o + j + 1]];
}

function segmentBase(layout: VariableBlockLayout, b: number, h: number, blocks: number): number {
  const lb = layout.batch === 1 ? 0 : b;
  const lh = layout.heads === 1 ? 0 : h;
  return (lb * layout.heads + lh) * (blocks + 1);
}

/**
 * Checks a layout's own consistency: positive sizes, CSR offsets that start at 0, never decrease
 * and end at columns.length, columns in range and strictly ascending within each row, and (variable)
 * segment bounds that start at 0, never decrease and end at nq / nk. Throws a ShapeError (array
 * lengths, bounds) or UnsupportedOptionError (kind, sizes) naming the first bad entry.
 */
export function assertBlockLayout(layout: BlockSparseLayout): void {
  if (typeof layout !== 'object' || layout === null) {
    throw new UnsupportedOptionError(
      `a block-sparse layout must be an object from one of the layout builders (layoutFromBlockMap, bandLayout, layoutFromSegments); got ${String(layout)}`,
    );
  }
  const kind = (layout as { kind?: unknown }).kind;
  if (kind !== 'fixed' && kind !== 'variable') {
    throw new UnsupportedOptionError(
      `layout.kind must be 'fixed' or 'variable'; got ${JSON.stringify(kind)}`,
    );
  }
  for (const name of ['batch', 'heads'] as const) positiveInt(layout[name], `layout.${name}`);
  for (const name of ['nq', 'nk'] as const) nonNegativeInt(layout[name], `layout.${name}`);
  for (const name of ['rowOffsets', 'columns'] as const) {
    if (!(layout[name] instanceof Int32Array)) {
      throw new UnsupportedOptionError(`layout.${name} must be an Int32Array; got ${describe(layout[name])}`);
    }
  }
  if (layout.kind === 'fixed') {
    positiveInt(layout.blockQ, 'layout.blockQ');
    positiveInt(layout.blockK, 'layout.blockK');
  } else {
    nonNegativeInt(layout.numQBlocks, 'layout.numQBlocks');
    nonNegativeInt(layout.numKBlocks, 'layout.numKBlocks');
    assertBounds(layout, 'qBounds', layout.numQBlocks, layout.nq);
    assertBounds(layout, 'kBounds', layout.numKBlocks, layout.nk);
  }
  const rows = layout.batch * layout.heads * numQueryBlocks(layout);
  const { rowOffsets, columns } = layout;
  if (rowOffsets.length !== rows + 1) {
    throw new ShapeError(
      `layout.rowOffsets must have B·H·numQBlocks + 1 = ${layout.batch}·${layout.heads}·${numQueryBlocks(layout)} + 1 = ${rows + 1} entries; got ${rowOffsets.length}`,
    );
  }
  if (rowOffsets[0] !== 0 || rowOffsets[rows] !== columns.length) {
    throw new ShapeError(
      `layout.rowOffsets must start at 0 and end at columns.length = ${columns.length}; got first ${rowOffsets[0]}, last ${rowOffsets[rows]}`,
    );
  }
  const kBlocks = numKeyBlocks(layout);
  for (let r = 0; r < rows; r++) {
    const [e0, e1] = [rowOffsets[r], rowOffsets[r + 1]];
    if (e1 < e0) {
      throw new ShapeError(
        `layout.rowOffsets must not decrease; entry ${r + 1} (${e1}) < entry ${r} (${e0})`,
      );
    }
    for (let e = e0; e < e1; e++) {
      const c = columns[e];
      if (c < 0 || c >= kBlocks) {
        throw new ShapeError(
          `layout.columns[${e}] = ${c} (row ${r}) is out of range: key blocks are 0 … ${kBlocks - 1}`,
        );
      }
      if (e > e0 && c <= columns[e - 1]) {
        throw new ShapeError(
          `layout.columns must be strictly ascending within a row; row ${r} has ${columns[e - 1]} then ${c} at entries ${e - 1}, ${e}. Sort each row and drop duplicates.`,
        );
      }
    }
  }
}

/**
 * Checks that a valid layout fits an attention problem: its nq / nk are the problem's Nq / Nk, and its
 * batch and head counts are 1 (broadcast) or the problem's B and Hq.
 */
export function assertLayoutFits(layout: BlockSparseLayout, p: AttentionProblem): void {
  assertBlockLayout(layout);
  if (layout.nq !== p.tokensQ || layout.nk !== p.tokensKv) {
    throw new ShapeError(
      `the layout covers Nq = ${layout.nq} queries and Nk = ${layout.nk} keys; q and k have Nq = ${p.tokensQ}, Nk = ${p.tokensKv}. Build the layout for these lengths.`,
    );
  }
  if ((layout.batch !== 1 && layout.batch !== p.batch) || (layout.heads !== 1 && layout.heads !== p.headsQ)) {
    throw new ShapeError(
      `the layout has batch ${layout.batch} and heads ${layout.heads}; q has B = ${p.batch}, Hq = ${p.headsQ}. A layout's batch and heads must be 1 (shared) or equal to q's.`,
    );
  }
}

function assertBounds(
  layout: VariableBlockLayout,
  name: 'qBounds' | 'kBounds',
  blocks: number,
  n: number,
): void {
  const bounds = layout[name];
  if (!(bounds instanceof Int32Array)) {
    throw new UnsupportedOptionError(`layout.${name} must be an Int32Array; got ${describe(bounds)}`);
  }
  const sets = layout.batch * layout.heads;
  if (bounds.length !== sets * (blocks + 1)) {
    throw new ShapeError(
      `layout.${name} must have B·H·(blocks + 1) = ${layout.batch}·${layout.heads}·${blocks + 1} = ${sets * (blocks + 1)} entries; got ${bounds.length}`,
    );
  }
  for (let s = 0; s < sets; s++) {
    const o = s * (blocks + 1);
    if (bounds[o] !== 0 || bounds[o + blocks] !== n) {
      throw new ShapeError(
        `layout.${name} of (b, h) set ${s} must start at 0 and end at ${n} (the sequence length); got ${bounds[o]} … ${bounds[o + blocks]}`,
      );
    }
    for (let i = 0; i < blocks; i++) {
      if (bounds[o + i + 1] < bounds[o + i]) {
        throw new ShapeError(
          `layout.${name} must not decrease; set ${s} has ${bounds[o + i]} then ${bounds[o + i + 1]} (segment ${i} would have negative size)`,
        );
      }
    }
  }
}

function positiveInt(x: unknown, name: string): void {
  if (!Number.isSafeInteger(x) || (x as number) < 1) {
    throw new UnsupportedOptionError(`${name} must be a positive integer; got ${String(x)}`);
  }
}

function nonNegativeInt(x: unknown, name: string): void {
  if (!Number.isSafeInteger(x) || (x as number) < 0) {
    throw new UnsupportedOptionError(`${name} must be a non-negative integer; got ${String(x)}`);
  }
}

function describe(x: unknown): string {
  return x === null || x === undefined ? String(x) : ((x as object).constructor?.name ?? typeof x);
}

/** Causal masking to apply on top of a layout when counting or masking entries. */
export interface LayoutCausal {
  causal?: boolean;
  causalAlignment?: CausalAlignment;
}

/**
 * The fraction of the B·Hq·Nq·Nk attention entries a kernel computes with this layout: entries inside
 * kept blocks, and, with `causal`, only those the row's causal window sees (causal.ts). `batch` and
 * `heads` expand a broadcast layout (default: the layout's own). 0 when there are no entries.
 */
export function layoutDensity(
  layout: BlockSparseLayout,
  opts: LayoutCausal & { batch?: number; heads?: number } = {},
): number {
  assertBlockLayout(layout);
  const batch = opts.batch ?? layout.batch;
  const heads = opts.heads ?? layout.heads;
  const p = causalProblem(layout, opts);
  let kept = 0;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < numQueryBlocks(layout); i++) {
        const [q0, q1] = queryBlockBounds(layout, b, h, i);
        const r = csrRow(layout, b, h, i);
        for (let e = layout.rowOffsets[r]; e < layout.rowOffsets[r + 1]; e++) {
          const [k0, k1] = keyBlockBounds(layout, b, h, layout.columns[e]);
          if (!p.causal) {
            kept += (q1 - q0) * (k1 - k0);
            continue;
          }
          for (let row = q0; row < q1; row++) kept += Math.max(0, Math.min(k1, visibleKeys(row, p)) - k0);
        }
      }
    }
  }
  const total = batch * heads * layout.nq * layout.nk;
  return total === 0 ? 0 : kept / total;
}

/**
 * The token-level boolean mask [B, Hq, Nq, Nk] of a layout (1 where the entry lies in a kept block),
 * for the float64 oracle (`attentionReference(q, k, v, { mask })`). With `causal` the oracle applies
 * its own causal mask, so it is not folded in here. `batch` / `heads` expand a broadcast layout.
 */
export function layoutToMask(
  layout: BlockSparseLayout,
  opts: { batch?: number; heads?: number } = {},
): Tensor<'bool'> {
  assertBlockLayout(layout);
  const batch = opts.batch ?? layout.batch;
  const heads = opts.heads ?? layout.heads;
  const { nq, nk } = layout;
  const mask = new Uint8Array(batch * heads * nq * nk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const base = (b * heads + h) * nq * nk;
      for (let i = 0; i < numQueryBlocks(layout); i++) {
        const [q0, q1] = queryBlockBounds(layout, b, h, i);
        const r = csrRow(layout, b, h, i);
        for (let e = layout.rowOffsets[r]; e < layout.rowOffsets[r + 1]; e++) {
          const [k0, k1] = keyBlockBounds(layout, b, h, layout.columns[e]);
          for (let row = q0; row < q1; row++) mask.fill(1, base + row * nk + k0, base + row * nk + k1);
        }
      }
    }
  }
  return new Tensor(mask, [batch, heads, nq, nk], 'bool');
}

function causalProblem(layout: BlockSparseLayout, opts: LayoutCausal) {
  return {
    causal: opts.causal ?? false,
    causalAlignment: opts.causalAlignment ?? ('top-left' as const),
    tokensQ: layout.nq,
    tokensKv: layout.nk,
  };
}
