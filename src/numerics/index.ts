/**
 * The numerics layer: exact low-bit float formats (ml_dtypes semantics), integer quantize helpers and
 * the packed 4-bit layout.
 */
export {
  FLOAT_FORMATS,
  floatFormat,
  isFloatFormatName,
  type FloatFormat,
  type FloatFormatName,
  type SpecialValues,
} from './formats.js';
export {
  encode,
  type EncodeOptions,
  type Float16BitFormatName,
  type Float8BitFormatName,
  type FloatRounding,
} from './encode.js';
export { decode } from './decode.js';
export {
  dequantizeInt,
  intRange,
  quantizeInt,
  roundToInteger,
  type IntClampRange,
  type IntRounding,
  type QuantizeIntOptions,
} from './int-quant.js';
export { packNibbles, unpackNibbles, type UnpackNibblesOptions } from './nibbles.js';
