/**
 * The shared hard cases for attention tests. Every backend (the CPU kernel, the GPU kernels, the
 * quantized and sparse variants) runs the same list against the float64 oracle, with its own tolerance.
 * Sizes are small where lengths are long, so the whole list stays fast on a CPU.
 */
import { type Layout, layoutShape } from '../../src/core/layout.js';
import { randn, tensor, type Tensor } from '../../src/core/tensor.js';
import type { AttentionOptions } from '../../src/attention/options.js';

export type CaseDType = 'float32' | 'float64' | 'float16' | 'bfloat16';

export interface AttentionCase {
  name: string;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  opts: AttentionOptions;
}

export interface CaseDims {
  batch: number;
  headsQ: number;
  /** default headsQ */
  headsKv?: number;
  tokensQ: number;
  /** default tokensQ */
  tokensKv?: number;
  headDim: number;
  /** default 'HND' */
  layout?: Layout;
}

export interface Qkv {
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

/** q, k, v shapes of the dims in their layout. */
export function qkvShapes(dims: CaseDims): { q: number[]; kv: number[] } {
  const layout = dims.layout ?? 'HND';
  const q = layoutShape(
    { batch: dims.batch, heads: dims.headsQ, tokens: dims.tokensQ, headDim: dims.headDim },
    layout,
  );
  const kv = layoutShape(
    {
      batch: dims.batch,
      heads: dims.headsKv ?? dims.headsQ,
      tokens: dims.tokensKv ?? dims.tokensQ,
      headDim: dims.headDim,
    },
    layout,
  );
  return { q, kv };
}

/** Standard normal q, k, v from three distinct seeds (3·seed, 3·seed + 1, 3·seed + 2). */
export function gaussianQkv(dims: CaseDims, seed: number, dtype: CaseDType = 'float32'): Qkv {
  const shapes = qkvShapes(dims);
  return {
    q: as(randn(shapes.q, { seed: 3 * seed }), dtype),
    k: as(randn(shapes.kv, { seed: 3 * seed + 1 }), dtype),
    v: as(randn(shapes.kv, { seed: 3 * seed + 2 }), dtype),
  };
}

/** A tensor with the same values in another float dtype (rounded to nearest-even where narrower). */
export function as(t: Tensor, dtype: CaseDType): Tensor {
  if (t.dtype === dtype) return t;
  return tensor(t.toFloat64(), t.shape, dtype);
}

/** Every key equal (one random vector), so every softmax row is uniform and each output is mean(V). */
export function allEqualKeys(dims: CaseDims, seed: number, dtype: CaseDType = 'float32'): Qkv {
  const { q, v } = gaussianQkv(dims, seed, 'float64');
  const shapes = qkvShapes(dims);
  const row = randn([dims.headDim], { seed: 3 * seed + 1, dtype: 'float64' }).data;
  const k = new Float64Array(shapes.kv.reduce((a, b) => a * b, 1));
  for (let i = 0; i < k.length; i++) k[i] = row[i % dims.headDim];
  return { q: as(q, dtype), k: tensor(k, shapes.kv, dtype), v: as(v, dtype) };
}

/**
 * The float16 extremes: q and v hold alternating ±65504 (the largest finite float16), k is small, so the
 * logits are in the hundreds (a near one-hot softmax) and the outputs are near ±65504. An odd head dim
 * makes the sign pattern differ between rows.
 */
export function extremeQkv(dims: CaseDims, seed: number, dtype: CaseDType = 'float32'): Qkv {
  const { k } = gaussianQkv(dims, seed, 'float64');
  const shapes = qkvShapes(dims);
  const alternating = (shape: number[]) =>
    Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i % 2 === 0 ? 65504 : -65504));
  const small = Float64Array.from(k.toFloat64(), (x) => 0.01 * x);
  return {
    q: tensor(alternating(shapes.q), shapes.q, dtype),
    k: tensor(small, shapes.kv, dtype),
    v: tensor(alternating(shapes.kv), shapes.kv, dtype),
  };
}

function gaussianCase(name: string, dims: CaseDims, seed: number, opts: AttentionOptions, dtype: CaseDType) {
  return {
    name,
    ...gaussianQkv(dims, seed, dtype),
    opts: dims.layout ? { layout: dims.layout, ...opts } : opts,
  };
}

/**
 * The shared list. Names say what each case exercises; `opts` never sets `returnLse`, so a test can add
 * it. Lengths 63 and 65 straddle the 64-row tile; 1000 is long with tiny heads.
 */
export function sharedCases(dtype: CaseDType = 'float32'): AttentionCase[] {
  const small = { batch: 1, headsQ: 2, headDim: 16 };
  return [
    gaussianCase('gaussian B2 H2 N64 D32', { batch: 2, headsQ: 2, tokensQ: 64, headDim: 32 }, 1, {}, dtype),
    gaussianCase(
      'gaussian NHD layout B2 H3 N40 D8',
      { batch: 2, headsQ: 3, tokensQ: 40, headDim: 8, layout: 'NHD' },
      2,
      { causal: true },
      dtype,
    ),
    { name: 'all-equal keys', ...allEqualKeys({ ...small, tokensQ: 50 }, 3, dtype), opts: {} },
    {
      name: '±65504 q and v, small k, D17',
      ...extremeQkv({ ...small, tokensQ: 33, headDim: 17 }, 4, dtype),
      opts: {},
    },
    gaussianCase(
      'causal bottom-right Nq80 > Nk48 (first 32 rows fully masked)',
      { ...small, tokensQ: 80, tokensKv: 48 },
      5,
      { causal: true, causalAlignment: 'bottom-right' },
      dtype,
    ),
    gaussianCase(
      'causal bottom-right decoding Nq1 Nk65',
      { ...small, tokensQ: 1, tokensKv: 65 },
      6,
      { causal: true, causalAlignment: 'bottom-right' },
      dtype,
    ),
    gaussianCase(
      'causal top-left Nq80 > Nk48',
      { ...small, tokensQ: 80, tokensKv: 48 },
      7,
      { causal: true },
      dtype,
    ),
    gaussianCase(
      'causal top-left Nq48 < Nk80',
      { ...small, tokensQ: 48, tokensKv: 80 },
      8,
      { causal: true, causalAlignment: 'top-left' },
      dtype,
    ),
    gaussianCase('length 1', { ...small, tokensQ: 1 }, 9, {}, dtype),
    gaussianCase('length 63', { ...small, tokensQ: 63 }, 10, {}, dtype),
    gaussianCase('length 65 causal', { ...small, tokensQ: 65 }, 11, { causal: true }, dtype),
    gaussianCase('length 1000 D8', { batch: 1, headsQ: 1, tokensQ: 1000, headDim: 8 }, 12, {}, dtype),
    gaussianCase(
      'length 1000 D8 causal',
      { batch: 1, headsQ: 1, tokensQ: 1000, headDim: 8 },
      13,
      { causal: true },
      dtype,
    ),
    gaussianCase(
      'GQA Hq4 Hkv2',
      { batch: 2, headsQ: 4, headsKv: 2, tokensQ: 33, headDim: 16 },
      14,
      {},
      dtype,
    ),
    gaussianCase(
      'MQA Hq4 Hkv1 causal',
      { batch: 1, headsQ: 4, headsKv: 1, tokensQ: 33, headDim: 16 },
      15,
      { causal: true },
      dtype,
    ),
    gaussianCase('Nq37 ≠ Nk100', { ...small, tokensQ: 37, tokensKv: 100 }, 16, {}, dtype),
    gaussianCase('smScale 0.9 (peaky)', { ...small, tokensQ: 70 }, 17, { smScale: 0.9 }, dtype),
  ];
}
