/**
 * What every block-sparse WGSL kernel reads about the layout (block-layout.ts), in one uniform block
 * and one storage buffer of u32 words, so the scalar and tensor-core generators and the dispatcher
 * cannot disagree on it:
 *
 * - words [0, 2R): the kept range (start, end) of CSR row r = (set·numQBlocks + i), R rows;
 * - words [colOff, …): the kept key-block indices;
 * - variable layouts: words [qbOff, …) and [kbOff, …): the segment bounds of each (b, h) set;
 * - words [thrOff, thrOff + Hq): SpargeAttn's pvthreshd per query head, as f32 bits.
 *
 * A (b, h) pair reads layout set (b'·layoutHeads + h') with b' = 0 when the layout's batch is 1 and
 * h' = 0 when its head count is 1 (broadcast, block-layout.ts).
 */
import type { AttentionProblem } from '../options.js';
import { type BlockSparseLayout, numKeyBlocks, numQueryBlocks } from './block-layout.js';
import type { PvSkip } from './block-sparse-options.js';

/** The WGSL uniform block (binding 20). */
export const SPARSE_PARAMS_WGSL = /* wgsl */ `
struct SparseParams {
  numQBlocks: u32, numKBlocks: u32, blockQ: u32, blockK: u32,
  layoutBatch: u32, layoutHeads: u32, colOff: u32, qbOff: u32,
  kbOff: u32, thrOff: u32, exemptLast: u32, pad0: u32,
}`;

export const SPARSE_PARAMS_BYTES = 48;

/** Compile-time shape of a block-sparse kernel. */
export interface SparseKernelShape {
  /** Variable segments (bounds read from the layout words) rather than fixed tiles. */
  variable: boolean;
  /**
   * Stage-2 PV skip compiled in, with this many rows per group (the kernel's whole query tile or a
   * divisor of it); 0 compiles no test.
   */
  pvGroupRows: number;
}

/**
 * Bindings 20 (params), 21 (layout words) and, with stage 2, 22 (two u32 counters: tested, skipped),
 * plus the layout helpers: layoutSet, queryBounds, rowRange, keyBounds, pvThreshold.
 */
export function sparseLayoutWgsl(shape: SparseKernelShape): string {
  return /* wgsl */ `${SPARSE_PARAMS_WGSL}
@group(0) @binding(20) var<uniform> SP: SparseParams;
@group(0) @binding(21) var<storage, read> LW: array<u32>;${
    shape.pvGroupRows > 0
      ? `
@group(0) @binding(22) var<storage, read_write> pvCounts: array<atomic<u32>>;
fn pvThreshold(h: u32) -> f32 { return bitcast<f32>(LW[SP.thrOff + h]); }`
      : ''
  }
fn layoutSet(b: u32, h: u32) -> u32 {
  return select(b, 0u, SP.layoutBatch == 1u) * SP.layoutHeads + select(h, 0u, SP.layoutHeads == 1u);
}
fn rowRange(lset: u32, i: u32) -> vec2<u32> {
  let r = lset * SP.numQBlocks + i;
  return vec2<u32>(LW[2u * r], LW[2u * r + 1u]);
}
fn queryBounds(lset: u32, i: u32) -> vec2<u32> {${
    shape.variable
      ? `
  let o = SP.qbOff + lset * (SP.numQBlocks + 1u) + i;
  return vec2<u32>(LW[o], LW[o + 1u]);`
      : `
  let lo = i * SP.blockQ;
  return vec2<u32>(lo, min(lo + SP.blockQ, P.tokensQ));`
  }
}
fn keyBounds(lset: u32, col: u32) -> vec2<u32> {${
    shape.variable
      ? `
  let o = SP.kbOff + lset * (SP.numKBlocks + 1u) + col;
  return vec2<u32>(LW[o], LW[o + 1u]);`
      : `
  let lo = col * SP.blockK;
  return vec2<u32>(lo, min(lo + SP.blockK, P.tokensKv));`
  }
}`;
}

/** The layout words and the parameter block of a call (see the file comment for the word layout). */
export function packSparseLayout(
  layout: BlockSparseLayout,
  p: AttentionProblem,
  pv: PvSkip,
): { words: Uint32Array; params: ArrayBuffer } {
  const rows = layout.rowOffsets.length - 1;
  const colOff = 2 * rows;
  const qbOff = colOff + layout.columns.length;
  const qb = layout.kind === 'variable' ? layout.qBounds : new Int32Array(0);
  const kb = layout.kind === 'variable' ? layout.kBounds : new Int32Array(0);
  const kbOff = qbOff + qb.length;
  const thrOff = kbOff + kb.length;
  const words = new Uint32Array(Math.max(thrOff + p.headsQ, 4));
  for (let r = 0; r < rows; r++) {
    words[2 * r] = layout.rowOffsets[r];
    words[2 * r + 1] = layout.rowOffsets[r + 1];
  }
  words.set(layout.columns, colOff);
  words.set(qb, qbOff);
  words.set(kb, kbOff);
  if (pv.thresholds) {
    new Float32Array(words.buffer, thrOff * 4, p.headsQ).set(pv.thresholds);
  }
  const params = new ArrayBuffer(SPARSE_PARAMS_BYTES);
  new Uint32Array(params).set([
    numQueryBlocks(layout),
    numKeyBlocks(layout),
    layout.kind === 'fixed' ? layout.blockQ : 0,
    layout.kind === 'fixed' ? layout.blockK : 0,
    layout.batch,
    layout.heads,
    colOff,
    qbOff,
    kbOff,
    thrOff,
    pv.exemptLast,
    0,
  ]);
  return { words, params };
}
