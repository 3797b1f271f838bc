/**
 * Sparse VideoGen's static geometry (sparse_attention.md §2.2): the band width that a density budget
 * buys, the frame-major ↔ token-major layout transform that turns a temporal head's "slash" pattern into
 * the same band a spatial head uses, and that band as a fixed-tile block layout.
 *
 * Index spaces. Tokens are [prefix (text) tokens ∥ video], the video frame-major: original index
 * P + f·L + p (P prefix tokens, L = height·width tokens per frame, F frames). The kernel sees each head
 * in its own "kernel order": a spatial head in the original order, a temporal head after the transform
 * P + f·L + p ↦ P + p·F + f (prefix tokens stay put; `placement.py::wan_sparse_head_placement`). In
 * kernel order both head kinds keep the same tokens:
 * - every prefix row and every prefix column (text is dense, Cog/Hunyuan),
 * - video pairs with |r − c| ≤ w, the band half-width from the density (`svgBandWidth`),
 * - optionally the sink columns [P, P + L): the first frame for a spatial head. Wan applies it in kernel
 *   order for temporal heads too, where it covers the first L/F positions of every frame instead (a
 *   quirk of the reference that we keep, §2.2 step 4).
 *
 * The kernel computes whole tiles, so the executed mask is the set of blockQ × blockK tiles that
 * contain at least one kept pair: a superset of the token band (the reference's FlexAttention keeps
 * the token-level band inside 128×128 blocks). `density` reports what the tiles really compute.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import type { FixedBlockLayout } from './block-layout.js';

export type SvgHeadKind = 'spatial' | 'temporal';

/** The token geometry SVG needs: prefix tokens, then F frames of L tokens. */
export interface SvgGeometry {
  readonly prefixTokens: number;
  readonly frames: number;
  readonly tokensPerFrame: number;
}

export interface SvgBandWidth {
  /** Band half-width in tokens, w = N·(1 − √(1 − s′)). */
  readonly width: number;
  /** The same in frames, w / L (the reference's `width_frame` / `mul`). */
  readonly widthFrames: number;
}

/**
 * `utils.py::sparsity_to_width` (§2.2 step 5): with density s (the reference's `--sparsity`, which is a
 * density) and N = P + F·L, the prefix rows and columns already cost 2·P·N of the N² entries, so the band
 * gets s′ = s − 2·P/N; a band of half-width w keeps ≈ 1 − (1 − w/N)² of the matrix, hence
 * w = N·(1 − √(1 − s′)). Example: Wan 720p (F 21, L 3600, s 0.25) gives 2.81 frames. s′ is clamped to
 * [0, 1] (a budget below the prefix's cost leaves only the diagonal).
 */
export function svgBandWidth(density: number, g: SvgGeometry): SvgBandWidth {
  if (typeof density !== 'number' || !(density > 0 && density <= 1)) {
    throw new UnsupportedOptionError(`density must be in (0, 1] (the fraction kept); got ${String(density)}`);
  }
  const n = g.prefixTokens + g.frames * g.tokensPerFrame;
  const band = Math.min(1, Math.max(0, density - (2 * g.prefixTokens) / n));
  const width = n * (1 - Math.sqrt(1 - band));
  return { width, widthFrames: width / g.tokensPerFrame };
}

/**
 * Where each original token sits in a head's kernel order: `kernelIndex(o)` for a temporal head maps
 * P + f·L + p to P + p·F + f; `originalIndex` is the inverse. Spatial heads use the identity.
 */
export function temporalKernelIndex(o: number, g: SvgGeometry): number {
  if (o < g.prefixTokens) return o;
  const u = o - g.prefixTokens;
  const f = Math.floor(u / g.tokensPerFrame);
  const p = u - f * g.tokensPerFrame;
  return g.prefixTokens + p * g.frames + f;
}

export function temporalOriginalIndex(r: number, g: SvgGeometry): number {
  if (r < g.prefixTokens) return r;
  const u = r - g.prefixTokens;
  const p = Math.floor(u / g.frames);
  const f = u - p * g.frames;
  return g.prefixTokens + f * g.tokensPerFrame + p;
}

/**
 * The gather permutation (permute.ts convention, perm[r] = original token at kernel position r) of B·H
 * heads of the given kinds: identity for spatial heads, the token-major transform for temporal heads.
 */
export function svgPermutation(kinds: readonly SvgHeadKind[], g: SvgGeometry): Int32Array {
  const n = g.prefixTokens + g.frames * g.tokensPerFrame;
  const perm = new Int32Array(kinds.length * n);
  for (const [s, kind] of kinds.entries()) {
    for (let r = 0; r < n; r++) perm[s * n + r] = kind === 'temporal' ? temporalOriginalIndex(r, g) : r;
  }
  return perm;
}

export interface SvgBandOptions {
  /** Band half-width in tokens (from `svgBandWidth`). */
  readonly width: number;
  readonly firstFrameSink: boolean;
  readonly blockQ: number;
  readonly blockK: number;
}

/**
 * Whether the kernel-order tile of rows [q0, q1) and columns [k0, k1) holds a kept pair (module comment).
 */
function tileKept(
  q0: number,
  q1: number,
  k0: number,
  k1: number,
  g: SvgGeometry,
  o: SvgBandOptions,
): boolean {
  const p = g.prefixTokens;
  if (q0 < p || k0 < p) return true;
  if (o.firstFrameSink && k0 < p + g.tokensPerFrame) return true;
  // smallest |r − c| between the row interval [q0, q1) and the column interval [k0, k1)
  const gap = Math.max(0, k0 - (q1 - 1), q0 - (k1 - 1));
  return gap <= o.width;
}

/**
 * The band as a fixed-tile CSR layout (block-layout.ts) with batch 1 and heads 1, i.e. shared by every
 * head (§2.2 step 3: after the transform one kernel call serves all heads).
 */
export function svgBandLayout(g: SvgGeometry, o: SvgBandOptions): FixedBlockLayout {
  const n = g.prefixTokens + g.frames * g.tokensPerFrame;
  const nqb = Math.ceil(n / o.blockQ);
  const nkb = Math.ceil(n / o.blockK);
  const rowOffsets = new Int32Array(nqb + 1);
  const columns: number[] = [];
  for (let i = 0; i < nqb; i++) {
    const q0 = i * o.blockQ;
    const q1 = Math.min(n, q0 + o.blockQ);
    for (let j = 0; j < nkb; j++) {
      const k0 = j * o.blockK;
      if (tileKept(q0, q1, k0, Math.min(n, k0 + o.blockK), g, o)) columns.push(j);
    }
    rowOffsets[i + 1] = columns.length;
  }
  return {
    kind: 'fixed',
    batch: 1,
    heads: 1,
    nq: n,
    nk: n,
    blockQ: o.blockQ,
    blockK: o.blockK,
    rowOffsets,
    columns: Int32Array.from(columns),
  };
}

/**
 * A dense [numQBlocks × numKBlocks] view of one head's tiles (1 = kept), for token-level predicates.
 */
export function fixedTileMask(layout: FixedBlockLayout, head = 0): Uint8Array {
  const nqb = Math.ceil(layout.nq / layout.blockQ);
  const nkb = Math.ceil(layout.nk / layout.blockK);
  const mask = new Uint8Array(nqb * nkb);
  for (let i = 0; i < nqb; i++) {
    const r = head * nqb + i;
    for (let t = layout.rowOffsets[r]; t < layout.rowOffsets[r + 1]; t++)
      mask[i * nkb + layout.columns[t]] = 1;
  }
  return mask;
}
