/**
 * Emulation of the P·V accumulators of the SageAttention kernels (sageattention.md §3.3, §4.5, §5).
 * The accumulator format is the one numeric choice of the PV product that the papers show can break
 * attention (FP16 overflow, SA2++ §3; FP22 truncation, SA2 §3.4), so sparq models it exactly and
 * keeps everything else in float64.
 *
 * The model of one tensor-core MMA: the k products p·v of one MMA step (k = 16 for fp16 operands,
 * 32 for 8-bit, 64 for 4-bit; `mmaStep`) are summed in float64 (exactly, for 8- and 4-bit
 * operands), that sum is added to the accumulator, and the result is rounded once to the
 * accumulator's format. Between MMAs the accumulator is an ordinary register of that format. Real
 * tensor cores may also lose bits inside a step (products aligned to the largest exponent); the
 * model leaves that out, as NVIDIA does not document it.
 */
import type { PVFormat } from '../../quant/types.js';

/**
 * How P̃·V is accumulated across keys (sageattention.md §1.1 `pv_accum_dtype`, §4.5, §5):
 * - 'fp32': straight into the running fp32 O (SA2 sm80 "fp32" with FP16 PV). SA3's per-block fp32
 *   tile merged in fp32, and INT8 PV's exact int32 block sum merged in fp32, differ from it only in
 *   the order of fp32 roundings, so one mode models all three.
 * - 'fp16': everything in fp16, the α-rescale included (SA2 sm80 "fp16"; overflows to ±inf, #93).
 * - 'fp32+fp16': each key block's P̃V in a fresh fp16 buffer, then O = α·O + R in fp32 (SA1's Triton
 *   kernel §3.3; SA2++ with the range limit P_r·V_r ≤ 1023.5, §5).
 * - 'fp22': straight into the running O through FP8 MMAs whose accumulator keeps 13 mantissa bits
 *   (SA2 §3.4 "fp32" on Ada/Hopper, which is really FP22).
 * - 'fp32+fp22': each key block's P̃V in a fresh FP22 buffer, then O = α·O + R in true fp32 (SA2 §3.4,
 *   the reference's "fp32+fp32" on sm89/sm90).
 */
export type PVAccum = 'fp32' | 'fp16' | 'fp32+fp16' | 'fp22' | 'fp32+fp22';

export const PV_ACCUMS: readonly PVAccum[] = ['fp32', 'fp16', 'fp32+fp16', 'fp22', 'fp32+fp22'];

/** The number format of an accumulator register. */
export type AccumulatorFormat = 'fp32' | 'fp22' | 'fp16';

/** The two levels of a PVAccum mode: an optional per-key-block buffer and the running O. */
export interface AccumulationPlan {
  /** Format of the fresh per-block buffer R_j, or null when MMAs add straight into O. */
  buffer: AccumulatorFormat | null;
  /** Format of the running O (and of its α-rescale). */
  running: AccumulatorFormat;
}

/** The levels of each mode (SA2 §3.4: the two-level schemes rescale only the fp32 O). */
export function accumulationPlan(mode: PVAccum): AccumulationPlan {
  switch (mode) {
    case 'fp32':
      return { buffer: null, running: 'fp32' };
    case 'fp16':
      return { buffer: null, running: 'fp16' };
    case 'fp22':
      return { buffer: null, running: 'fp22' };
    case 'fp32+fp16':
      return { buffer: 'fp16', running: 'fp32' };
    case 'fp32+fp22':
      return { buffer: 'fp22', running: 'fp32' };
  }
}

/**
 * Keys per MMA step for the PV operand format: mma.m16n8k16 for fp16, m16n8k32 for FP8/INT8 (SA2
 * §3.2, App. A.6), m16n8k64 for FP4 (SA3 §3.3). The FP22 truncation and the FP16 rounding happen once
 * per step, which is what makes the step size part of the numerics (SA2++ Eq. 1: |32·p·v| ≤ 65504).
 */
export function mmaStep(format: PVFormat): number {
  switch (format) {
    case 'fp16':
      return 16;
    case 'float8_e4m3fn':
    case 'float8_e5m2':
    case 'int8':
      return 32;
    case 'nvfp4':
      return 64;
  }
}

/**
 * IEEE binary16 rounding of a double, to nearest with ties to even, overflowing to ±inf exactly as
 * half precision does: |x| ≥ 65520 (halfway between 65504 and 2^16) gives ±inf. Subnormals keep the
 * 2^-24 quantum. This is the FP16 accumulator of SA1 §4.4 and SA2++ §3 without the range limits that
 * keep it finite; rounding the double directly (not through float32) avoids a double rounding.
 */
export function roundFp16(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  // log2 can be off by one next to a power of two; fix the binade exactly
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10);
  const steps = a / quantum; // exact: a power-of-two scaling
  const floor = Math.floor(steps);
  const rest = steps - floor;
  const r = (rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor) * quantum;
  const rounded = r > 65504 ? Infinity : r;
  return x < 0 ? -rounded : rounded;
}

const fp22View = new Float64Array(1);
const fp22Words = new Uint32Array(fp22View.buffer);
// The high word of a little-endian float64 holds the sign, the exponent and 20 mantissa bits.
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * The FP22 accumulator of `mma.f32.f8.f8.f32` on Ada and Hopper (SA2 §3.4; sageattention.md §4.5):
 * 1 sign, 8 exponent and 13 mantissa bits, i.e. an fp32 whose 10 low mantissa bits are dropped. This
 * is a model, not a hardware specification: the exact sum of a step is truncated toward zero to 13
 * mantissa bits, then limited to the fp32 range (overflow → ±inf). NVIDIA does not document the
 * accumulator; SA2 reports it as 22 bits, and truncation (not rounding) is what makes the error
 * build up with the number of steps, the effect the two-level 'fp32+fp22' accumulation removes.
 */
export function truncateFp22(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  fp22View[0] = x;
  fp22Words[1 - HIGH] = 0;
  // keep the top 13 of the 20 mantissa bits in the high word
  fp22Words[HIGH] &= 0xffffff80;
  return Math.fround(fp22View[0]);
}

/** Rounds a value into an accumulator register of the given format. */
export function roundToAccumulator(x: number, format: AccumulatorFormat): number {
  switch (format) {
    case 'fp32':
      return Math.fround(x);
    case 'fp22':
      return truncateFp22(x);
    case 'fp16':
      return roundFp16(x);
  }
}

/**
 * The online-softmax rescale O ← α·O (§2, step 5) in the running accumulator's format. In 'fp16' mode
 * α is a half too (the sm80 "fp16" kernel rescales in half2). α = 0 (the row's first visible block,
 * or a max that jumped past the exp2 range) gives 0 rather than IEEE's 0·inf = NaN: the old O has
 * weight exp2(−∞) = 0 exactly, and an O that overflowed to ±inf must not turn into NaN (ARCHITECTURE.md:
 * legal inputs never give NaN). This is the only place sparq departs from IEEE in the accumulators.
 */
export function rescaleAccumulator(o: number, alpha: number, format: AccumulatorFormat): number {
  const a = format === 'fp16' ? roundFp16(alpha) : alpha;
  if (a === 0) return 0;
  return roundToAccumulator(a * o, format === 'fp22' ? 'fp32' : format);
}

/**
 * The merge of the two-level schemes, O ← α·O + R_j in fp32 (SA2 §3.4; SA1 §4.4's Triton kernel;
 * SA2++ §3.2), with overflow made sticky: an O that is already ±inf stays as it is. IEEE would give
 * the same except when a later block's fp16 buffer overflows with the other sign (inf − inf = NaN);
 * sparq keeps the first overflow instead, so an unlimited fp16 accumulation shows up as ±inf in the
 * output (the reference's "black images", #93) and never as NaN.
 */
export function mergeBlock(o: number, alpha: number, r: number): number {
  const scaled = rescaleAccumulator(o, alpha, 'fp32');
  return Number.isFinite(scaled) || Number.isNaN(scaled) ? Math.fround(scaled + r) : scaled;
}

/**
 * One key block's contribution to one output row (§2 step 5, with the accumulation of §4.5 / §5):
 * O ← α·O + P̂_j·V̂_j, where `o` holds the row's D accumulators and is updated in place. `p` holds the
 * block's quantized P̃ values (what the MMA multiplies) and `v` the block's V values as rows of
 * `headDim` channels starting at `vOffset`. The products are summed in MMA steps of `step` keys
 * (in float64, exact for 8- and 4-bit operands); each step sum is added into the buffer (two-level
 * modes, a fresh buffer per block) or straight into O, rounding to that register's format.
 */
export function accumulateBlock(
  o: Float64Array,
  alpha: number,
  p: Float32Array | Float64Array,
  v: Float32Array | Float64Array,
  vOffset: number,
  headDim: number,
  step: number,
  plan: AccumulationPlan,
): void {
  const keys = p.length;
  const format = plan.buffer ?? plan.running;
  for (let x = 0; x < headDim; x++) {
    let acc = plan.buffer === null ? rescaleAccumulator(o[x], alpha, plan.running) : 0;
    for (let c0 = 0; c0 < keys; c0 += step) {
      const end = Math.min(c0 + step, keys);
      let sum = 0;
      for (let c = c0; c < end; c++) sum += p[c] * v[vOffset + c * headDim + x];
      acc = roundToAccumulator(acc + sum, format);
    }
    o[x] = plan.buffer === null ? acc : mergeBlock(o[x], alpha, acc);
  }
}
