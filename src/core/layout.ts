/**
 * Attention tensor layouts. 'HND' is [B, H, N, D] (heads before tokens, the SageAttention default
 * tensor_layout="HND"); 'NHD' is [B, N, H, D] (the FlashAttention / PyTorch-varlen order).
 */
import { ShapeError, UnsupportedOptionError } from './errors.js';
import { Tensor, formatShape, type Shape } from './tensor.js';
import { storageOf, type TypedArray } from './dtype.js';

export type Layout = 'HND' | 'NHD';

export interface AttentionDims {
  batch: number;
  heads: number;
  tokens: number;
  headDim: number;
}

export function assertLayout(layout: unknown): asserts layout is Layout {
  if (layout !== 'HND' && layout !== 'NHD') {
    throw new UnsupportedOptionError(
      `layout must be 'HND' ([B,H,N,D]) or 'NHD' ([B,N,H,D]); got ${JSON.stringify(layout)}`,
    );
  }
}

/** Reads B, H, N, D from a rank-4 shape in the given layout. */
export function layoutDims(shape: Shape, layout: Layout, what = 'tensor'): AttentionDims {
  assertLayout(layout);
  if (shape.length !== 4) {
    throw new ShapeError(
      `${what} must be rank 4 (${layout === 'HND' ? '[B, H, N, D]' : '[B, N, H, D]'} for layout '${layout}'); got shape ${formatShape(shape)}`,
    );
  }
  const [b, x, y, d] = shape;
  return layout === 'HND'
    ? { batch: b, heads: x, tokens: y, headDim: d }
    : { batch: b, heads: y, tokens: x, headDim: d };
}

/** The rank-4 shape of the given dims in a layout. */
export function layoutShape(dims: AttentionDims, layout: Layout): number[] {
  return layout === 'HND'
    ? [dims.batch, dims.heads, dims.tokens, dims.headDim]
    : [dims.batch, dims.tokens, dims.heads, dims.headDim];
}

/** Copies a rank-4 tensor from one layout to the other (swaps the head and token axes). */
export function convertLayout<T extends Tensor>(t: T, from: Layout, to: Layout): T {
  assertLayout(from);
  assertLayout(to);
  const dims = layoutDims(t.shape, from);
  if (from === to) return t;
  const { batch, heads, tokens, headDim } = dims;
  const src = t.data;
  const dst = new (storageOf(t.dtype))(src.length) as TypedArray;
  // from HND to NHD or back: same loops with the index roles exchanged
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let n = 0; n < tokens; n++) {
        const hnd = ((b * heads + h) * tokens + n) * headDim;
        const nhd = ((b * tokens + n) * heads + h) * headDim;
        const [s, d] = from === 'HND' ? [hnd, nhd] : [nhd, hnd];
        for (let i = 0; i < headDim; i++) dst[d + i] = src[s + i];
      }
    }
  }
  return new Tensor(dst, layoutShape(dims, to), t.dtype) as T;
}
