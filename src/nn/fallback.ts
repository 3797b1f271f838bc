/**
 * Fallback Quantization's activation quantizer (Zhang et al. 2025, training_methods.md §2.3): each
 * activation block is "normal" (plain Jetfire INT8, §2.2) or "fallback", and a fallback block carries
 * a second INT8 part for its residual: X ≈ s1·q1 + s2·q2 with s1 = absmax/127, R = X − s1·q1 and
 * s2 = max|R|/127, about 16 bits computed as two INT8 MMAs. The two-part form and the decision rule
 * are reconstructions ([recon] in the note: the paper body was not available), so the rule is a
 * parameter.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { type Int8Blocks, INT8_BLOCK_SIZE, blockAbsMax, quantizeInt8Blocks } from './int8-blocks.js';
import type { Matrix } from './matrix.js';

/**
 * Which activation blocks fall back, decided per call from the data (the paper's "dynamic"):
 * - 'absolute': block absmax > threshold;
 * - 'median': block absmax > k · (median block absmax of this tensor);
 * - 'budget': the ⌊rate · blocks⌋ blocks with the largest absmax (ties to the lower block index).
 */
export type FallbackCriterion =
  | { readonly kind: 'absolute'; readonly threshold: number }
  | { readonly kind: 'median'; readonly k: number }
  | { readonly kind: 'budget'; readonly rate: number };

export interface FallbackStats {
  readonly blocks: number;
  readonly fallbackBlocks: number;
  /** fallbackBlocks / blocks: the realised fallback rate. */
  readonly rate: number;
}

export interface FallbackQuantized {
  /** s1·q1 for every block. */
  readonly primary: Int8Blocks;
  /** s2·q2 in fallback blocks; scale 0 (and codes 0) elsewhere. */
  readonly residual: Int8Blocks;
  /** 1 for a fallback block, row-major over the block grid. */
  readonly fallback: Uint8Array;
  readonly stats: FallbackStats;
}

/** The fallback mask for blocks with these absmax values. */
export function selectFallbackBlocks(absmax: Float64Array, criterion: FallbackCriterion): Uint8Array {
  const mask = new Uint8Array(absmax.length);
  switch (criterion.kind) {
    case 'absolute':
      absmax.forEach((m, b) => (mask[b] = m > criterion.threshold ? 1 : 0));
      return mask;
    case 'median': {
      const sorted = Float64Array.from(absmax).sort();
      const h = sorted.length >> 1;
      const median = sorted.length % 2 === 1 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
      absmax.forEach((m, b) => (mask[b] = m > criterion.k * median ? 1 : 0));
      return mask;
    }
    case 'budget': {
      const order = Array.from(absmax.keys()).sort((a, b) => absmax[b] - absmax[a] || a - b);
      const n = Math.floor(criterion.rate * absmax.length);
      for (let i = 0; i < n; i++) mask[order[i]] = 1;
      return mask;
    }
    default:
      throw new UnsupportedOptionError(
        `fallback criterion must be 'absolute', 'median' or 'budget'; got ${JSON.stringify(criterion)}`,
      );
  }
}

/** Round-to-nearest primary INT8 blocks plus INT8 residuals in the blocks the criterion selects. */
export function quantizeInt8Fallback(
  x: Matrix,
  criterion: FallbackCriterion,
  block = INT8_BLOCK_SIZE,
): FallbackQuantized {
  const absmax = blockAbsMax(x, block);
  const fallback = selectFallbackBlocks(absmax, criterion);
  const primary = quantizeInt8Blocks(x, { rounding: 'nearest-even', block });
  const gridCols = Math.ceil(x.cols / block);
  const r = new Float64Array(x.data.length);
  for (let i = 0; i < x.rows; i++) {
    for (let j = 0; j < x.cols; j++) {
      const b = Math.floor(i / block) * gridCols + Math.floor(j / block);
      if (fallback[b] === 1) {
        const e = i * x.cols + j;
        r[e] = x.data[e] - primary.scales[b] * primary.codes[e];
      }
    }
  }
  const residual = quantizeInt8Blocks(
    { data: r, rows: x.rows, cols: x.cols },
    { rounding: 'nearest-even', block },
  );
  const fallbackBlocks = fallback.reduce((s, f) => s + f, 0);
  const stats = { blocks: fallback.length, fallbackBlocks, rate: fallbackBlocks / fallback.length };
  return { primary, residual, fallback, stats };
}
