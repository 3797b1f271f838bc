/**
 * The packed 4-bit layout: two codes per byte, element 2i in the low nibble (bits 0–3) and element
 * 2i+1 in the high nibble (bits 4–7) of byte i — the lower index in the lower bits, as in
 * little-endian storage. An odd trailing element leaves the last high nibble 0. Unpacked, 4-bit codes
 * are one per byte: float4_e2m1fn codes (0..15) in a Uint8Array, int4 values (-8..7) in an Int8Array.
 */
import { DTypeError, ShapeError } from '../core/errors.js';
import { describe } from './describe.js';

/** Packs one-per-byte 4-bit codes: Uint8Array codes 0..15, or Int8Array values -8..7 (two's complement). */
export function packNibbles(codes: Uint8Array | Int8Array, out?: Uint8Array): Uint8Array {
  const signed = codes instanceof Int8Array;
  if (!signed && !(codes instanceof Uint8Array)) {
    throw new DTypeError(
      `packNibbles takes a Uint8Array (codes 0..15) or an Int8Array (-8..7); got ${describe(codes)}`,
    );
  }
  const n = codes.length;
  const packedLength = Math.ceil(n / 2);
  const result = out ?? new Uint8Array(packedLength);
  if (!(result instanceof Uint8Array)) {
    throw new DTypeError(`packNibbles: out must be a Uint8Array; got ${describe(result)}`);
  }
  if (result.length !== packedLength) {
    throw new ShapeError(`packNibbles: ${n} codes pack into ${packedLength} bytes; out has ${result.length}`);
  }
  const lo = signed ? -8 : 0;
  const hi = signed ? 7 : 15;
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c < lo || c > hi) {
      throw new DTypeError(
        `packNibbles: element ${i} is ${c}; 4-bit ${signed ? 'int4 values' : 'codes'} are ${lo}..${hi}`,
      );
    }
  }
  const pairs = Math.floor(n / 2);
  for (let j = 0; j < pairs; j++) result[j] = (codes[2 * j] & 15) | ((codes[2 * j + 1] & 15) << 4);
  if (n % 2 === 1) result[pairs] = codes[n - 1] & 15;
  return result;
}

export interface UnpackNibblesOptions<Signed extends boolean> {
  /** true: sign-extend each nibble to an int4 value (Int8Array); default false: codes 0..15 (Uint8Array). */
  signed?: Signed;
  out?: Signed extends true ? Int8Array : Uint8Array;
}

/** The first `length` 4-bit codes of a packed buffer (which must be exactly ⌈length/2⌉ bytes). */
export function unpackNibbles(
  packed: Uint8Array,
  length: number,
  opts?: UnpackNibblesOptions<false>,
): Uint8Array;
export function unpackNibbles(
  packed: Uint8Array,
  length: number,
  opts: UnpackNibblesOptions<true>,
): Int8Array;
export function unpackNibbles(
  packed: Uint8Array,
  length: number,
  opts: UnpackNibblesOptions<boolean> = {},
): Uint8Array | Int8Array {
  if (!(packed instanceof Uint8Array)) {
    throw new DTypeError(`unpackNibbles takes a Uint8Array; got ${describe(packed)}`);
  }
  if (!Number.isSafeInteger(length) || length < 0 || Math.ceil(length / 2) !== packed.length) {
    throw new ShapeError(
      `unpackNibbles: length must be 2·packed.length or 2·packed.length − 1 (packed has ${packed.length} bytes); ` +
        `got ${length}`,
    );
  }
  const signed = opts.signed ?? false;
  const Storage = signed ? Int8Array : Uint8Array;
  const result = opts.out ?? new Storage(length);
  if (!(result instanceof Storage)) {
    throw new DTypeError(
      `unpackNibbles: out must be ${signed ? 'an Int8Array' : 'a Uint8Array'}; got ${describe(result)}`,
    );
  }
  if (result.length !== length) {
    throw new ShapeError(`unpackNibbles: out has ${result.length} elements; expected ${length}`);
  }
  // (nibble << 28) >> 28 sign-extends a nibble to an int4 value.
  const extend = signed ? 28 : 0;
  const pairs = Math.floor(length / 2);
  for (let j = 0; j < pairs; j++) {
    const b = packed[j];
    result[2 * j] = ((b & 15) << extend) >> extend;
    result[2 * j + 1] = ((b >> 4) << extend) >> extend;
  }
  if (length % 2 === 1) result[length - 1] = ((packed[pairs] & 15) << extend) >> extend;
  return result;
}
