/**
 * Tensor element types. Low-bit float formats are stored as their codes (see numerics/formats.ts);
 * int4 values are stored one per byte as signed integers in [-8, 7].
 */
import { DTypeError } from './errors.js';
import { type FloatFormatName, isFloatFormatName } from '../numerics/formats.js';

export type DType = 'float64' | 'float32' | FloatFormatName | 'int8' | 'uint8' | 'int32' | 'int4' | 'bool';

export type TypedArray = Float64Array | Float32Array | Uint16Array | Uint8Array | Int8Array | Int32Array;

export const DTYPES: readonly DType[] = Object.freeze([
  'float64',
  'float32',
  'float16',
  'bfloat16',
  'float8_e4m3fn',
  'float8_e5m2',
  'float4_e2m1fn',
  'float8_e8m0fnu',
  'int8',
  'uint8',
  'int32',
  'int4',
  'bool',
]);

export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && (DTYPES as readonly string[]).includes(name);
}

export function assertDType(name: unknown, what = 'dtype'): asserts name is DType {
  if (!isDType(name)) {
    throw new DTypeError(`${what} must be one of ${DTYPES.join(', ')}; got ${JSON.stringify(name)}`);
  }
}

/** True for the formats whose storage holds codes rather than values. */
export function isCodedFloat(dtype: DType): dtype is FloatFormatName {
  return isFloatFormatName(dtype);
}

/** Storage constructor of a dtype. */
export function storageOf(
  dtype: DType,
):
  | Float64ArrayConstructor
  | Float32ArrayConstructor
  | Uint16ArrayConstructor
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int32ArrayConstructor {
  switch (dtype) {
    case 'float64':
      return Float64Array;
    case 'float32':
      return Float32Array;
    case 'float16':
    case 'bfloat16':
      return Uint16Array;
    case 'float8_e4m3fn':
    case 'float8_e5m2':
    case 'float4_e2m1fn':
    case 'float8_e8m0fnu':
    case 'uint8':
    case 'bool':
      return Uint8Array;
    case 'int8':
    case 'int4':
      return Int8Array;
    case 'int32':
      return Int32Array;
  }
}

/** Bytes per stored element (4-bit formats take a byte each). */
export function bytesPerElement(dtype: DType): number {
  return storageOf(dtype).BYTES_PER_ELEMENT;
}
