/**
 * Integer quantization: codes = clamp(round(x / scale)), stored one per byte in an Int8Array for both
 * int8 and int4, and back (codes × scale). These are the element steps of SageAttention's Q/K
 * quantizers (SA1 §4.3, SA2 §3.2: scale = max|x| / 127 for int8, max|x| / 7 for int4) and of
 * Jetfire/Fallback Quantization's INT8 blocks; the quantizers that choose the scales live in quant/.
 *
 * Arithmetic follows the float32 reference kernels: the scale is rounded to float32 first (reference
 * scales are fp32 tensors) and x / scale is a correctly rounded float32 division, then rounded to an
 * integer. NaN gives code 0 and ±inf clamps to the range ends, as PTX `cvt.rni.sat.s8.f32` does.
 */
import { DTypeError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import type { Seed } from '../core/rng.js';
import { describe } from './describe.js';
import { elementBitsFor, type ElementBits } from './element-bits.js';

export type IntRounding =
  /** Round half to even: PTX `cvt.rni` (SageAttention's CUDA quantizers), torch.round. */
  | 'nearest-even'
  /** Round half away from zero: SageAttention's Triton quantizers (see quantizeInt). */
  | 'half-away'
  /** Round up with probability equal to the distance to the floor, so E[round(x)] = x. */
  | 'stochastic';

/**
 * 'symmetric' (default): [-127, 127] for int8, [-7, 7] for int4 — the range that SageAttention's
 * max|x|/127 and max|x|/7 scales map a block into (SA1 §4.3, SA2 §3.2).
 * 'full': the whole two's-complement range, [-128, 127] / [-8, 7].
 */
export type IntClampRange = 'symmetric' | 'full';

export interface QuantizeIntOptions {
  bits: 8 | 4;
  /** Default 'nearest-even'. */
  rounding?: IntRounding;
  /** Required for 'stochastic'; ignored otherwise. Elements get encode's Philox bits (element-bits.ts). */
  seed?: Seed;
  /** Index of values[0] in the seed's bit stream, for chunked quantization (default 0). */
  offset?: number;
  /** Default 'symmetric'. */
  clampRange?: IntClampRange;
  /** Where to write the codes: an Int8Array exactly `values.length` long. */
  out?: Int8Array;
}

/**
 * x rounded to an integer. 'stochastic' needs `randomBits`, a uint32 of uniform random bits: the
 * magnitude |x| rounds up iff randomBits < frac(|x|)·2^32, so it rounds up with probability exactly
 * frac(|x|) whenever that has at most 32 fractional bits (every float32 with |x| ≥ 2^-9), and
 * E[result] = x. The other modes round exactly (no float error in the half test). NaN and ±inf come
 * back unchanged; a zero result is +0.
 */
export function roundToInteger(x: number, rounding: IntRounding, randomBits?: number): number {
  switch (rounding) {
    case 'nearest-even':
      return roundHalfEven(x);
    case 'half-away':
      return roundHalfAway(x);
    case 'stochastic':
      if (
        randomBits === undefined ||
        !Number.isInteger(randomBits) ||
        randomBits < 0 ||
        randomBits > 0xffffffff
      ) {
        throw new UnsupportedOptionError(
          `roundToInteger(x, 'stochastic', randomBits) needs randomBits, a uint32; got ${String(randomBits)}`,
        );
      }
      return roundStochastic(x, randomBits);
    default:
      throw new UnsupportedOptionError(
        `rounding must be 'nearest-even', 'half-away' or 'stochastic'; got ${JSON.stringify(rounding)}`,
      );
  }
}

// The three roundings work on |x|: frac = |x| − ⌊|x|⌋ is exact in float64 (Sterbenz for |x| ≥ 1),
// whereas x − ⌊x⌋ for a negative x can round.

function roundHalfEven(x: number): number {
  const a = Math.abs(x);
  const f = Math.floor(a);
  const d = a - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  return x < 0 && r !== 0 ? -r : r;
}

function roundHalfAway(x: number): number {
  const a = Math.abs(x);
  const f = Math.floor(a);
  const r = a - f >= 0.5 ? f + 1 : f;
  return x < 0 && r !== 0 ? -r : r;
}

function roundStochastic(x: number, randomBits: number): number {
  const a = Math.abs(x);
  const f = Math.floor(a);
  const r = randomBits < (a - f) * 4294967296 ? f + 1 : f;
  return x < 0 && r !== 0 ? -r : r;
}

/**
 * SageAttention's Triton rounding (`sageattention/triton/quant_per_block.py`,
 * `quant_per_thread.py`): `x_int8 = x / scale; x_int8 += 0.5 * tl.where(x_int8 >= 0, 1, -1);
 * x_int8.to(tl.int8)` — add ±0.5 in float32, then truncate toward zero. That is round-half-away
 * except for one input per sign: v = ±(0.5 − 2^-25), the largest float32 below 0.5, whose float32
 * sum with 0.5 is the tie 1 − 2^-25 and rounds (to even) to 1.0, so it gives ±1 where exact
 * half-away gives 0. We reproduce the float32 sum. (Triton's fp32 `/` itself lowers by default
 * to PTX's approximate `div.full.f32` on NVIDIA GPUs, so the reference can differ by one code where
 * x / scale lies within 2 ulp of a rounding boundary; we divide exactly.)
 */
function roundTritonHalfAway(v: number): number {
  return Math.trunc(Math.fround(v + (v >= 0 ? 0.5 : -0.5)));
}

/** The code range of `bits` under `clampRange`. */
export function intRange(bits: 8 | 4, clampRange: IntClampRange = 'symmetric'): [number, number] {
  if (bits !== 8 && bits !== 4) {
    throw new UnsupportedOptionError(`bits must be 8 or 4; got ${String(bits)}`);
  }
  if (clampRange !== 'symmetric' && clampRange !== 'full') {
    throw new UnsupportedOptionError(
      `clampRange must be 'symmetric' or 'full'; got ${JSON.stringify(clampRange)}`,
    );
  }
  const hi = bits === 8 ? 127 : 7;
  return [clampRange === 'symmetric' ? -hi : -hi - 1, hi];
}

/**
 * codes[i] = clamp(round(fround(values[i] / fround(scale)))) in the range of `opts.bits` and
 * `opts.clampRange`. 'half-away' is the Triton reference's float32 formula (see
 * roundTritonHalfAway); 'nearest-even' matches the CUDA reference (`cvt.rni.sat.s8.f32`, SA1 §4.3
 * code notes); 'stochastic' rounds v = x / scale with the element's Philox bits, unbiased before
 * clamping.
 */
export function quantizeInt(values: Float32Array, scale: number, opts: QuantizeIntOptions): Int8Array {
  if (!(values instanceof Float32Array)) {
    throw new DTypeError(`quantizeInt takes a Float32Array; got ${describe(values)}`);
  }
  const s = checkScale('quantizeInt', scale);
  if (opts === null || typeof opts !== 'object') {
    throw new UnsupportedOptionError(`quantizeInt needs options with bits: 8 or 4; got ${String(opts)}`);
  }
  const [lo, hi] = intRange(opts.bits, opts.clampRange ?? 'symmetric');
  const rounding = opts.rounding ?? 'nearest-even';
  if (rounding !== 'nearest-even' && rounding !== 'half-away' && rounding !== 'stochastic') {
    throw new UnsupportedOptionError(
      `quantizeInt: rounding must be 'nearest-even', 'half-away' or 'stochastic'; got ${JSON.stringify(rounding)}`,
    );
  }
  const bits = elementBitsFor(rounding, opts.seed, opts.offset, 'quantizeInt');
  const out = opts.out ?? new Int8Array(values.length);
  if (!(out instanceof Int8Array)) {
    throw new DTypeError(`quantizeInt: out must be an Int8Array; got ${describe(out)}`);
  }
  if (out.length !== values.length) {
    throw new ShapeError(`quantizeInt: out has ${out.length} elements; values has ${values.length}`);
  }
  if (rounding === 'stochastic')
    quantizeStochastic(values, s, lo, hi, out, bits as ElementBits, opts.offset ?? 0);
  else
    quantizeDeterministic(
      values,
      s,
      lo,
      hi,
      out,
      rounding === 'half-away' ? roundTritonHalfAway : roundHalfEven,
    );
  return out;
}

function quantizeDeterministic(
  values: Float32Array,
  scale: number,
  lo: number,
  hi: number,
  out: Int8Array,
  round: (v: number) => number,
): void {
  for (let i = 0; i < values.length; i++) {
    const q = round(Math.fround(values[i] / scale));
    out[i] = q > hi ? hi : q < lo ? lo : Number.isNaN(q) ? 0 : q;
  }
}

function quantizeStochastic(
  values: Float32Array,
  scale: number,
  lo: number,
  hi: number,
  out: Int8Array,
  bits: ElementBits,
  offset: number,
): void {
  for (let i = 0; i < values.length; i++) {
    const q = roundStochastic(Math.fround(values[i] / scale), bits.at(offset + i));
    out[i] = q > hi ? hi : q < lo ? lo : Number.isNaN(q) ? 0 : q;
  }
}

/** values[i] = codes[i] × fround(scale), rounded to float32 (the product itself is exact in float64). */
export function dequantizeInt(codes: Int8Array, scale: number, out?: Float32Array): Float32Array {
  if (!(codes instanceof Int8Array)) {
    throw new DTypeError(`dequantizeInt takes codes in an Int8Array; got ${describe(codes)}`);
  }
  const s = checkScale('dequantizeInt', scale);
  const result = out ?? new Float32Array(codes.length);
  if (!(result instanceof Float32Array)) {
    throw new DTypeError(`dequantizeInt: out must be a Float32Array; got ${describe(result)}`);
  }
  if (result.length !== codes.length) {
    throw new ShapeError(`dequantizeInt: out has ${result.length} elements; codes has ${codes.length}`);
  }
  for (let i = 0; i < codes.length; i++) result[i] = codes[i] * s;
  return result;
}

function checkScale(what: string, scale: number): number {
  const s = Math.fround(scale);
  if (!(s > 0 && s < Infinity)) {
    throw new UnsupportedOptionError(
      `${what}: scale must be a positive finite float32 (e.g. max|x| / 127, plus an epsilon for all-zero ` +
        `blocks); got ${String(scale)}`,
    );
  }
  return s;
}
