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
 */

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
