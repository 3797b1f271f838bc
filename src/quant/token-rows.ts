/**
 * Token rows of a rank-4 attention tensor: the quantizers read Q, K and V as float32 rows of D
 * channels, one per (batch, head, token), in either layout. A row is contiguous in both layouts
 * ([B,H,N,D] and [B,N,H,D] both keep D innermost), so every quantizer addresses rows and writes its
 * codes back in the input's own layout.
 */
import { DTypeError } from '../core/errors.js';
import { type AttentionDims, type Layout, layoutDims } from '../core/layout.js';
import { Tensor } from '../core/tensor.js';

/** The float dtypes the quantizers accept (the attention input dtypes). */
const FLOAT_INPUTS: readonly string[] = ['float64', 'float32', 'float16', 'bfloat16'];

export interface TokenRows {
  dims: AttentionDims;
  layout: Layout;
  /**
   * The tensor's values rounded to float32, a fresh copy in the input layout. float32 is the working
   * precision of every reference quantizer (they read fp16/bf16 into fp32 registers).
   */
  values: Float32Array;
}

/** Reads a host tensor as float32 token rows; throws a typed error for a non-float dtype or a bad rank. */
export function readTokenRows(x: unknown, layout: Layout, what: string): TokenRows {
  const dims = tokenDims(x, layout, what);
  return { dims, layout, values: (x as Tensor).toFloat32() };
}

/** B, H, N, D of a float host tensor, without reading its values; throws as readTokenRows does. */
export function tokenDims(x: unknown, layout: Layout, what: string): AttentionDims {
  if (!(x instanceof Tensor)) {
    throw new DTypeError(
      `${what} must be a host Tensor (the CPU quantizers read host memory); got ${describeValue(x)}. ` +
        `Download GPU tensors first, or build one with tensor(values, shape, dtype).`,
    );
  }
  if (!FLOAT_INPUTS.includes(x.dtype)) {
    throw new DTypeError(
      `${what} must have a float dtype (${FLOAT_INPUTS.join(', ')}) to be quantized; got ${x.dtype}`,
    );
  }
  return layoutDims(x.shape, layout, what);
}

/** Offset of the first channel of row (b, h, n) in a layout's storage. */
export function rowStart(dims: AttentionDims, layout: Layout, b: number, h: number, n: number): number {
  return layout === 'HND'
    ? ((b * dims.heads + h) * dims.tokens + n) * dims.headDim
    : ((b * dims.tokens + n) * dims.heads + h) * dims.headDim;
}

function describeValue(x: unknown): string {
  if (x === null || typeof x !== 'object') return String(x);
  const kind = (x as { kind?: unknown }).kind;
  return kind === 'gpu' ? 'a GPU tensor' : (x.constructor?.name ?? 'an object');
}
