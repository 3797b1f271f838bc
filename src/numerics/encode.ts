/**
 * float32 → low-bit float codes. One bit-manipulation encoder serves every format: it reads the
 * format's exponent/mantissa layout from formats.ts and the edge-case choices from conventions.ts.
 *
 * Default semantics are exactly `np.asarray(x, np.float32).astype(T)` with T = ml_dtypes.<format>
 * (numpy's float16 for 'float16'): round to nearest, ties to even, applied to the float32 bits
 * (ml_dtypes' ConvertImpl), with each format's overflow/NaN/zero rules — see conventions.ts and the
 * fixtures in test/fixtures/numerics. Summary of the non-obvious ones:
 *
 * - float8_e4m3fn: no inf. ±inf, and anything that rounds past 448 (|x| > 464), give NaN (0x7f/0xff).
 * - float4_e2m1fn: no inf or NaN. ±inf and overflow give ±6; +NaN gives −0 (0x8), −NaN gives +0.
 * - float8_e8m0fnu: unsigned powers of two 2^-127..2^127, no zero. 0, −0, negatives, ±inf, NaN and
 *   overflow (x ≥ 1.5·2^127) give NaN (0xff). Ties (1.5·2^k) round up, not to an even code, because
 *   the bit that decides "even" is the implicit leading 1. Below 2^-126 ml_dtypes rounds as if code
 *   0 were zero: (2^-127, 2^-126) → 2^-126 and (0, 2^-127] → 2^-127.
 * - float16: NaN keeps its top 10 payload bits (numpy), bfloat16/float8 give the canonical NaN.
 * - −0 stays −0 in every signed format; float32 subnormals round like any other value.
 *
 * sparq options beyond ml_dtypes: `saturate` and `rounding: 'stochastic'` (see EncodeOptions).
 */
import { DTypeError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Seed } from '../core/rng.js';
import { CONVENTIONS, type Conventions } from './conventions.js';
import { describe } from './describe.js';
import { floatFormat, type FloatFormatName } from './formats.js';
import { elementBitsFor, type ElementBits } from './element-bits.js';

/** Formats whose codes are stored in a Uint16Array. */
export type Float16BitFormatName = 'float16' | 'bfloat16';
/** Formats whose codes are stored in a Uint8Array (4-bit codes in the low nibble). */
export type Float8BitFormatName = Exclude<FloatFormatName, Float16BitFormatName>;

export type FloatRounding = 'nearest-even' | 'stochastic';

export interface EncodeOptions<Out extends Uint8Array | Uint16Array = Uint8Array | Uint16Array> {
  /**
   * Clamp instead of overflowing (default false): values that would round past the largest finite
   * value, and ±inf, give ±max — what quantizers want, and what `cvt.rn.satfinite` does on NVIDIA
   * GPUs (SageAttention2 §3.3). (ml_dtypes' own saturating cast, not reachable from astype, keeps
   * ±inf as inf.) NaN conversion is unchanged: NaN stays NaN where the format has one, and
   * float4_e2m1fn keeps ml_dtypes' +NaN → −0, −NaN → +0. float8_e8m0fnu, which has no sign and no
   * zero, clamps into [2^-127, 2^127]: 0, −0 and negatives give 2^-127 (code 0) as in ml_dtypes'
   * saturating cast, −inf likewise; +inf and overflow give 2^127.
   */
  saturate?: boolean;
  /**
   * 'nearest-even' (default, ml_dtypes) or 'stochastic': round up to the next code with probability
   * (x − lo) / (hi − lo), lo ≤ x < hi being the neighbouring codes, so E[decode(code)] = x (the
   * gradient quantizers of TetraJet and Jetfire use this). Each element uses 32 random bits (see
   * element-bits.ts) and rounds up iff bits < frac·2^32, so the probability is exactly frac whenever
   * frac·2^32 is an integer — always, except for |x| < minPositive·2^-9 (more than 32 bits are
   * discarded), where it can be frac rounded up to a multiple of 2^-32. Specials (0, inf, NaN) and
   * overflow follow the nearest-even rules: a value just above max rounds either to max or to what
   * overflow gives (inf, NaN, or max with `saturate`). float8_e8m0fnu uses its true neighbours
   * (2^-127 and 2^-126 below 2^-126, unlike nearest-even) and gives 2^-127 below 2^-127.
   */
  rounding?: FloatRounding;
  /** Required for 'stochastic' (an UnsupportedOptionError otherwise); ignored for 'nearest-even'. */
  seed?: Seed;
  /**
   * Index of `values[0]` in the seed's bit stream (default 0): encoding an array in chunks with
   * each chunk's start index as `offset` gives the codes of encoding it whole. Stochastic only.
   */
  offset?: number;
  /** Where to write the codes: the format's storage type and exactly `values.length` long. */
  out?: Out;
}

/** 2^(32−s) for alignment shifts s: turns a discarded fraction of s bits into a 32-bit threshold. */
const THRESHOLD_SCALE = Float64Array.from({ length: 256 }, (_, s) => 2 ** (32 - s));

export function encode(
  format: Float16BitFormatName,
  values: Float32Array,
  opts?: EncodeOptions<Uint16Array>,
): Uint16Array;
export function encode(
  format: Float8BitFormatName,
  values: Float32Array,
  opts?: EncodeOptions<Uint8Array>,
): Uint8Array;
export function encode(
  format: FloatFormatName,
  values: Float32Array,
  opts?: EncodeOptions,
): Uint8Array | Uint16Array;
export function encode(
  format: FloatFormatName,
  values: Float32Array,
  opts: EncodeOptions = {},
): Uint8Array | Uint16Array {
  const spec = floatFormat(format);
  if (!(values instanceof Float32Array)) {
    throw new DTypeError(
      `encode(${format}) takes a Float32Array; got ${describe(values)}. Convert with Float32Array.from(values).`,
    );
  }
  const saturate = opts.saturate ?? false;
  if (typeof saturate !== 'boolean') {
    throw new UnsupportedOptionError(
      `encode(${format}): saturate must be a boolean; got ${String(saturate)}`,
    );
  }
  const rounding = opts.rounding ?? 'nearest-even';
  if (rounding !== 'nearest-even' && rounding !== 'stochastic') {
    throw new UnsupportedOptionError(
      `encode(${format}): rounding must be 'nearest-even' or 'stochastic'; got ${JSON.stringify(rounding)}`,
    );
  }
  const bits = elementBitsFor(rounding, opts.seed, opts.offset, `encode(${format})`);
  const Storage = spec.bits === 16 ? Uint16Array : Uint8Array;
  const out = opts.out ?? new Storage(values.length);
  if (!(out instanceof Storage)) {
    throw new DTypeError(`encode(${format}): out must be a ${Storage.name}; got ${describe(out)}`);
  }
  if (out.length !== values.length) {
    throw new ShapeError(`encode(${format}): out has ${out.length} elements; values has ${values.length}`);
  }
  const src = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const conv = CONVENTIONS[spec.name];
  if (bits === null) encodeNearestEven(conv, src, out, saturate);
  else encodeStochastic(conv, src, out, saturate, bits, opts.offset ?? 0);
  return out;
}

/**
 * ml_dtypes' ConvertImpl<float, To> on the bits: normalise the float32 significand to 24 bits with
 * the implicit 1 at bit 23, shift it right to the target precision (more for target subnormals),
 * round half to even by adding (L + 2^(s−1) − 1) where L is the lowest kept bit, then add the
 * exponent. Keeping the implicit 1 in the shifted significand and adding (biased exponent − 1)
 * lets a rounding carry flow into the exponent and subnormals come out without a special case.
 */
function encodeNearestEven(
  conv: Conventions,
  src: Uint32Array,
  out: Uint8Array | Uint16Array,
  saturate: boolean,
): void {
  const m = conv.format.mantissaBits;
  const exponentOffset = conv.format.bias - 127 - 1;
  const maxCode = conv.format.maxCode;
  const overflowCode = saturate ? maxCode : conv.overflowCode;
  const signBit = conv.signBit;
  const shift0 = 23 - m;
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    const abs = x & 0x7fffffff;
    if (abs === 0 || abs >= 0x7f800000 || (x !== abs && signBit === 0)) {
      out[i] = specialCode(conv, x, saturate);
      continue;
    }
    let e = abs >>> 23;
    let mant: number;
    if (e === 0) {
      // float32 subnormal: move its leading 1 to bit 23 and lower the exponent to match.
      const lz = Math.clz32(abs) - 8;
      mant = abs << lz;
      e = 1 - lz;
    } else {
      mant = (abs & 0x7fffff) | 0x800000;
    }
    let base = e + exponentOffset;
    let shift = shift0;
    if (base < 0) {
      // Target subnormal. A shift of 25 already rounds every 24-bit significand to 0.
      shift = Math.min(shift - base, 25);
      base = 0;
    }
    let code = ((mant + ((mant >>> shift) & 1) + (1 << (shift - 1)) - 1) >>> shift) + (base << m);
    if (code > maxCode) code = overflowCode;
    out[i] = x === abs ? code : code | signBit;
  }
}

/**
 * Stochastic rounding between the two neighbouring codes. Truncating the significand gives the lower
 * neighbour lo; adding 1 to a code gives the next one up (a carry out of the mantissa steps the
 * exponent), and the discarded `shift` bits are the fraction of the way from lo to lo + 1.
 */
function encodeStochastic(
  conv: Conventions,
  src: Uint32Array,
  out: Uint8Array | Uint16Array,
  saturate: boolean,
  bits: ElementBits,
  offset: number,
): void {
  const m = conv.format.mantissaBits;
  const exponentOffset = conv.format.bias - 127 - 1;
  const maxCode = conv.format.maxCode;
  const overflowCode = saturate ? maxCode : conv.overflowCode;
  const signBit = conv.signBit;
  const hasSubnormals = conv.hasSubnormals;
  const shift0 = 23 - m;
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    const abs = x & 0x7fffffff;
    if (abs === 0 || abs >= 0x7f800000 || (x !== abs && signBit === 0)) {
      out[i] = specialCode(conv, x, saturate);
      continue;
    }
    let e = abs >>> 23;
    let mant: number;
    if (e === 0) {
      const lz = Math.clz32(abs) - 8;
      mant = abs << lz;
      e = 1 - lz;
    } else {
      mant = (abs & 0x7fffff) | 0x800000;
    }
    let base = e + exponentOffset;
    let shift = shift0;
    let code: number;
    if (!hasSubnormals && base < -1) {
      // float8_e8m0fnu below its smallest value 2^-127: nothing lower to round to.
      code = 0;
    } else {
      if (base < 0 && hasSubnormals) {
        shift -= base;
        base = 0;
      }
      // base = −1 only for float8_e8m0fnu on [2^-127, 2^-126): the implicit 1 kept in lo cancels it.
      let lo = 0;
      let frac = mant;
      if (shift < 24) {
        lo = mant >>> shift;
        frac = mant & ((1 << shift) - 1);
      }
      code = lo + (bits.at(offset + i) < frac * THRESHOLD_SCALE[shift] ? 1 : 0) + (base << m);
    }
    if (code > maxCode) code = overflowCode;
    out[i] = x === abs ? code : code | signBit;
  }
}

/** Code of ±0, ±inf, NaN, and (unsigned formats) negative inputs; see conventions.ts. */
function specialCode(conv: Conventions, x: number, saturate: boolean): number {
  const abs = x & 0x7fffffff;
  const negative = x !== abs;
  const sign = negative ? conv.signBit : 0;
  const format = conv.format;
  if (abs > 0x7f800000) {
    if (conv.encodeKeepsNanPayload) {
      const payload = (abs & 0x7fffff) >>> (23 - format.mantissaBits);
      return (format.infCode as number) + (payload === 0 ? 1 : payload) + sign;
    }
    return conv.nanCode ^ sign;
  }
  if (conv.signBit === 0 && (negative || abs === 0)) {
    // float8_e8m0fnu: no sign, no zero (ml_dtypes: NaN; its saturating conversion: the smallest value).
    return saturate ? 0 : conv.nanCode;
  }
  if (abs === 0) return sign;
  return (saturate ? format.maxCode : conv.overflowCode) + sign;
}
