/**
 * Low-bit float codes → float32, exactly as `codes.view(T).astype(np.float32)` with
 * T = ml_dtypes.<format> (numpy's float16 for 'float16'). Every code of every format is a float32
 * value, so decoding is a table lookup: one float32 bit pattern per code, built once per format from
 * its layout and written through a Uint32Array view (storing a NaN through a Float32Array may change
 * its payload). NaN codes: float16 and bfloat16 keep the payload (the code's bits, widened); the
 * float8 formats give the canonical quiet NaN with the code's sign (ml_dtypes' ConvertImpl returns
 * quiet_NaN()). float8_e8m0fnu code 0 is 2^-127, a float32 subnormal.
 */
import { DTypeError, ShapeError } from '../core/errors.js';
import { CONVENTIONS, type Conventions } from './conventions.js';
import { describe } from './describe.js';
import { floatFormat, type FloatFormatName } from './formats.js';

const tables = new Map<FloatFormatName, Uint32Array>();

export function decode(
  format: FloatFormatName,
  codes: Uint8Array | Uint16Array,
  out?: Float32Array,
): Float32Array {
  const spec = floatFormat(format);
  const Storage = spec.bits === 16 ? Uint16Array : Uint8Array;
  if (!(codes instanceof Storage)) {
    throw new DTypeError(`decode(${format}) takes codes in a ${Storage.name}; got ${describe(codes)}`);
  }
  const result = out ?? new Float32Array(codes.length);
  if (!(result instanceof Float32Array)) {
    throw new DTypeError(`decode(${format}): out must be a Float32Array; got ${describe(result)}`);
  }
  if (result.length !== codes.length) {
    throw new ShapeError(`decode(${format}): out has ${result.length} elements; codes has ${codes.length}`);
  }
  const table = decodeTable(format);
  const dst = new Uint32Array(result.buffer, result.byteOffset, result.length);
  if (spec.bits === 4) {
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c > 15) {
        throw new DTypeError(
          `decode(${format}): codes are one per byte in the low nibble (0..15); element ${i} is ${c}. ` +
            `Packed codes need unpackNibbles first.`,
        );
      }
      dst[i] = table[c];
    }
  } else {
    for (let i = 0; i < codes.length; i++) dst[i] = table[codes[i]];
  }
  return result;
}

/** float32 bit patterns of every code of a format, built on first use. */
function decodeTable(format: FloatFormatName): Uint32Array {
  let table = tables.get(format);
  if (table === undefined) {
    const conv = CONVENTIONS[format];
    table = new Uint32Array(2 ** conv.format.bits);
    const values = new Float32Array(table.buffer);
    for (let code = 0; code < table.length; code++) {
      const nanBits = nanBitsOf(conv, code);
      if (nanBits === null) values[code] = valueOf(conv, code);
      else table[code] = nanBits;
    }
    tables.set(format, table);
  }
  return table;
}

/** The exact value of a non-NaN code (every one is a float32, so storing it is exact). */
function valueOf(conv: Conventions, code: number): number {
  const { mantissaBits: m, bias } = conv.format;
  const negative = (code & conv.signBit) !== 0;
  const magnitude = code & ~conv.signBit;
  const exponent = Math.floor(magnitude / 2 ** m);
  const fraction = magnitude % 2 ** m;
  let value: number;
  if (conv.format.infCode !== null && magnitude === conv.format.infCode) value = Infinity;
  else if (exponent === 0 && conv.hasSubnormals) value = fraction * 2 ** (1 - bias - m);
  else value = (1 + fraction / 2 ** m) * 2 ** (exponent - bias);
  return negative ? -value : value;
}

/** float32 bits of a NaN code, or null for a code that is a number. */
function nanBitsOf(conv: Conventions, code: number): number | null {
  const { nanCode, infCode, mantissaBits: m } = conv.format;
  const magnitude = code & ~conv.signBit;
  const isNan = infCode !== null ? magnitude > infCode : magnitude === nanCode;
  if (!isNan) return null;
  const sign = (code & conv.signBit) !== 0 ? 0x80000000 : 0;
  const payload = conv.decodeKeepsNanPayload ? (magnitude % 2 ** m) * 2 ** (23 - m) : 0x400000;
  return (sign + 0x7f800000 + payload) >>> 0;
}
