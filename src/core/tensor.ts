/**
 * Host tensors: a shape, a dtype and contiguous row-major storage. Low-bit floats hold codes; use
 * `toFloat32()` for values.
 */
import { type DType, type TypedArray, assertDType, isCodedFloat, storageOf } from './dtype.js';
import { DTypeError, ShapeError } from './errors.js';
import { Rng, type Seed } from './rng.js';
import { encode } from '../numerics/encode.js';
import { decode } from '../numerics/decode.js';

export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function assertShape(shape: unknown, what = 'shape'): asserts shape is Shape {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ShapeError(`${what} must be an array of non-negative integers; got ${JSON.stringify(shape)}`);
  }
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor<D extends DType = DType> {
  readonly shape: Shape;
  readonly dtype: D;
  readonly data: TypedArray;
  /** Discriminates host tensors from GPU tensors in functions that accept both. */
  readonly kind = 'host' as const;

  constructor(data: TypedArray, shape: Shape, dtype: D) {
    assertShape(shape);
    assertDType(dtype);
    const Storage = storageOf(dtype);
    if (!(data instanceof Storage)) {
      throw new DTypeError(
        `dtype ${dtype} is stored in a ${Storage.name}; got a ${data.constructor.name}. ` +
          `Use tensor(values, shape, dtype) to convert.`,
      );
    }
    const size = shapeSize(shape);
    if (data.length !== size) {
      throw new ShapeError(`shape ${formatShape(shape)} holds ${size} elements; data has ${data.length}`);
    }
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.data = data;
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Values as float32 (decoding low-bit codes; int and bool values converted). */
  toFloat32(): Float32Array {
    if (isCodedFloat(this.dtype)) return decode(this.dtype, this.data as Uint8Array | Uint16Array);
    return Float32Array.from(this.data);
  }

  /** Values as float64. */
  toFloat64(): Float64Array {
    if (isCodedFloat(this.dtype)) return Float64Array.from(this.toFloat32());
    return Float64Array.from(this.data);
  }

  /** Same storage, new shape with the same number of elements. */
  reshape(shape: Shape): Tensor<D> {
    return new Tensor(this.data, shape, this.dtype);
  }
}

type NumericArray = ArrayLike<number>;

/**
 * A tensor from values. A typed array already in the dtype's storage type is used as is (no copy);
 * float32/float64 data is converted (low-bit formats are encoded round-to-nearest-even, as ml_dtypes'
 * astype); plain number arrays are converted the same way.
 */
export function tensor<D extends DType>(data: NumericArray | TypedArray, shape: Shape, dtype: D): Tensor<D> {
  assertShape(shape);
  assertDType(dtype);
  const Storage = storageOf(dtype);
  if (data instanceof Storage) return new Tensor(data as TypedArray, shape, dtype);
  if (isCodedFloat(dtype)) {
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    return new Tensor(encode(dtype, values), shape, dtype);
  }
  if (dtype === 'int4' || dtype === 'int8' || dtype === 'uint8' || dtype === 'int32' || dtype === 'bool') {
    const [lo, hi] =
      dtype === 'int4'
        ? [-8, 7]
        : dtype === 'int8'
          ? [-128, 127]
          : dtype === 'uint8'
            ? [0, 255]
            : dtype === 'bool'
              ? [0, 1]
              : [-2147483648, 2147483647];
    const out = new Storage(data.length);
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      if (!Number.isInteger(x) || x < lo || x > hi) {
        throw new DTypeError(`dtype ${dtype} holds integers in [${lo}, ${hi}]; element ${i} is ${x}`);
      }
      out[i] = x;
    }
    return new Tensor(out as TypedArray, shape, dtype);
  }
  return new Tensor(Storage.from(data) as TypedArray, shape, dtype);
}

export interface RandomOptions {
  seed?: Seed;
  dtype?: 'float32' | 'float64';
}

/** Standard normal samples from the seeded Philox stream (default seed 0, dtype float32). */
export function randn(shape: Shape, opts: RandomOptions = {}): Tensor<'float32' | 'float64'> {
  assertShape(shape);
  const dtype = opts.dtype ?? 'float32';
  const data = dtype === 'float64' ? new Float64Array(shapeSize(shape)) : new Float32Array(shapeSize(shape));
  Rng.fromSeed(opts.seed ?? 0).fillNormal(data);
  return new Tensor(data, shape, dtype);
}

/** Uniform samples in [low, high) from the seeded Philox stream (default [0, 1), seed 0, float32). */
export function rand(
  shape: Shape,
  opts: RandomOptions & { low?: number; high?: number } = {},
): Tensor<'float32' | 'float64'> {
  assertShape(shape);
  const dtype = opts.dtype ?? 'float32';
  const data = dtype === 'float64' ? new Float64Array(shapeSize(shape)) : new Float32Array(shapeSize(shape));
  Rng.fromSeed(opts.seed ?? 0).fillUniform(data, opts.low ?? 0, opts.high ?? 1);
  return new Tensor(data, shape, dtype);
}
