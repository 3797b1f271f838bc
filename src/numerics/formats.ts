/**
 * The low-bit number formats sparq encodes and decodes, named as in ml_dtypes (the reference used by
 * JAX and PyTorch). Codes are stored as unsigned integers: 16-bit formats in a Uint16Array, 8- and
 * 4-bit formats in a Uint8Array (4-bit codes one per byte, in the low nibble).
 */
import { DTypeError } from '../core/errors.js';

export type FloatFormatName =
  'float16' | 'bfloat16' | 'float8_e4m3fn' | 'float8_e5m2' | 'float4_e2m1fn' | 'float8_e8m0fnu';

/** How a format spends its top exponent code (ml_dtypes conventions). */
export type SpecialValues =
  /** IEEE 754: the all-ones exponent holds ±inf (mantissa 0) and NaN (mantissa ≠ 0). */
  | 'ieee'
  /** "fn": finite, no inf; only S.1111.111 is NaN (float8_e4m3fn). */
  | 'fn-nan-all-ones'
  /** "fn" with no NaN either: every code is a finite number (float4_e2m1fn). */
  | 'finite-only'
  /** "fnu": unsigned, exponent only, the all-ones code is NaN, no zero (float8_e8m0fnu). */
  | 'unsigned-nan-all-ones';

export interface FloatFormat {
  readonly name: FloatFormatName;
  readonly bits: 4 | 8 | 16;
  readonly exponentBits: number;
  readonly mantissaBits: number;
  readonly bias: number;
  readonly signed: boolean;
  readonly special: SpecialValues;
  /** Largest finite value. */
  readonly max: number;
  /**
   * Smallest positive normal value. For float8_e8m0fnu every code is normal (exponent field 0 is
   * 2^-127, not a subnormal), so this is 2^-127 = minPositive, as ml_dtypes' finfo.smallest_normal.
   */
  readonly minNormal: number;
  /** Smallest positive value (subnormal where the format has subnormals). */
  readonly minPositive: number;
  /** Code of `max` (the largest positive finite code). */
  readonly maxCode: number;
  /** Code of +inf, or null where the format has no infinity. */
  readonly infCode: number | null;
  /**
   * Code of the canonical positive NaN (IEEE formats: the quiet NaN, top mantissa bit set), or null
   * where the format has no NaN (float4_e2m1fn).
   */
  readonly nanCode: number | null;
}

function format(
  name: FloatFormatName,
  bits: 4 | 8 | 16,
  exponentBits: number,
  mantissaBits: number,
  bias: number,
  signed: boolean,
  special: SpecialValues,
  max: number,
): FloatFormat {
  const hasSubnormals = mantissaBits > 0;
  const minNormal = 2 ** ((hasSubnormals ? 1 : 0) - bias);
  const minPositive = hasSubnormals ? minNormal * 2 ** -mantissaBits : minNormal;
  const magnitudeCodes = 2 ** (signed ? bits - 1 : bits);
  const allOnesExponent = (2 ** exponentBits - 1) * 2 ** mantissaBits;
  let maxCode: number;
  let infCode: number | null = null;
  let nanCode: number | null = null;
  switch (special) {
    case 'ieee':
      maxCode = allOnesExponent - 1;
      infCode = allOnesExponent;
      nanCode = allOnesExponent + 2 ** (mantissaBits - 1);
      break;
    case 'fn-nan-all-ones':
    case 'unsigned-nan-all-ones':
      maxCode = magnitudeCodes - 2;
      nanCode = magnitudeCodes - 1;
      break;
    case 'finite-only':
      maxCode = magnitudeCodes - 1;
      break;
  }
  return Object.freeze({
    name,
    bits,
    exponentBits,
    mantissaBits,
    bias,
    signed,
    special,
    max,
    minNormal,
    minPositive,
    maxCode,
    infCode,
    nanCode,
  });
}

export const FLOAT_FORMATS: Readonly<Record<FloatFormatName, FloatFormat>> = Object.freeze({
  float16: format('float16', 16, 5, 10, 15, true, 'ieee', 65504),
  bfloat16: format('bfloat16', 16, 8, 7, 127, true, 'ieee', 3.3895313892515355e38),
  float8_e4m3fn: format('float8_e4m3fn', 8, 4, 3, 7, true, 'fn-nan-all-ones', 448),
  float8_e5m2: format('float8_e5m2', 8, 5, 2, 15, true, 'ieee', 57344),
  float4_e2m1fn: format('float4_e2m1fn', 4, 2, 1, 1, true, 'finite-only', 6),
  float8_e8m0fnu: format('float8_e8m0fnu', 8, 8, 0, 127, false, 'unsigned-nan-all-ones', 2 ** 127),
});

export function isFloatFormatName(name: string): name is FloatFormatName {
  return Object.prototype.hasOwnProperty.call(FLOAT_FORMATS, name);
}

/** The format called `name`; a DTypeError naming the known formats otherwise. */
export function floatFormat(name: unknown): FloatFormat {
  if (typeof name !== 'string' || !isFloatFormatName(name)) {
    throw new DTypeError(
      `unknown float format ${JSON.stringify(name)}; expected one of ${Object.keys(FLOAT_FORMATS).join(', ')}`,
    );
  }
  return FLOAT_FORMATS[name];
}
