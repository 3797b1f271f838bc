/**
 * safetensors dtype names and the sparq dtypes that hold them. Elements are stored little-endian, one
 * per byte for the 8-bit formats, so each name maps onto a sparq storage type without conversion.
 */
import type { DType } from '../core/dtype.js';
import { DTypeError } from '../core/errors.js';

/** The safetensors dtype names sparq reads and writes. */
export type SafetensorsDType =
  'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0' | 'F16' | 'BF16' | 'I32' | 'F32' | 'F64';

/**
 * Supported names in the order of the reference crate's `Dtype` enum (safetensors/src/tensor.rs),
 * which lists dtypes by increasing alignment. Its writer lays tensors out in descending enum order,
 * then by name, so that every tensor starts at a multiple of its element size; ours does the same.
 */
const SUPPORTED: readonly (readonly [SafetensorsDType, DType])[] = [
  ['BOOL', 'bool'],
  ['U8', 'uint8'],
  ['I8', 'int8'],
  ['F8_E5M2', 'float8_e5m2'],
  ['F8_E4M3', 'float8_e4m3fn'],
  ['F8_E8M0', 'float8_e8m0fnu'],
  ['F16', 'float16'],
  ['BF16', 'bfloat16'],
  ['I32', 'int32'],
  ['F32', 'float32'],
  ['F64', 'float64'],
];

/** Names the reference crate defines that sparq has no dtype for (used to word the error). */
const KNOWN_UNSUPPORTED = new Set([
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'U32',
  'C64',
  'I64',
  'U64',
]);

/** A Map, not an object literal: header strings such as "toString" must not find prototype members. */
const FROM_NAME = new Map<string, DType>(SUPPORTED);
const TO_NAME = new Map<DType, SafetensorsDType>(SUPPORTED.map(([name, dtype]) => [dtype, name]));
const LAYOUT_RANK = new Map<SafetensorsDType, number>(SUPPORTED.map(([name], i) => [name, i]));

/** The supported names, for error messages. */
export const SAFETENSORS_DTYPES: readonly SafetensorsDType[] = SUPPORTED.map(([name]) => name);

/** The sparq dtype of a safetensors dtype name, or undefined when sparq does not read it. */
export function dtypeFromSafetensors(name: string): DType | undefined {
  return FROM_NAME.get(name);
}

/** True for dtype names the reference crate defines but sparq has no type for (I64, F4, …). */
export function isUnsupportedSafetensorsDType(name: string): boolean {
  return KNOWN_UNSUPPORTED.has(name);
}

/**
 * The safetensors name of a sparq dtype. float4_e2m1fn and int4 are stored one code per byte in sparq
 * while safetensors' only 4-bit type (F4) packs two per byte, and int4 has no safetensors type at all.
 */
export function safetensorsDType(dtype: DType, where: string): SafetensorsDType {
  const name = TO_NAME.get(dtype);
  if (name !== undefined) return name;
  const advice =
    dtype === 'int4'
      ? 'store it as int8 (same values, one per byte) or pack two values per byte with packNibbles and store uint8'
      : 'store the codes as uint8 (one per byte, or two per byte with packNibbles), or decode to float16/float32';
  throw new DTypeError(
    `${where} has dtype ${dtype}, which safetensors cannot hold; ${advice}. ` +
      `Writable dtypes: ${SUPPORTED.map(([, d]) => d).join(', ')}`,
  );
}

/** Position in the reference writer's layout order: higher ranks (wider elements) come first. */
export function layoutRank(name: SafetensorsDType): number {
  return LAYOUT_RANK.get(name) as number;
}
