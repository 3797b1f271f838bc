/**
 * The one backward matmul SageBwd keeps in 16 bits: dP = dO·Vᵀ (SA3 §4.2, sageattention.md §8.2). Its
 * error enters dS = P∘(dP − D) and accumulates into dQ and dK along the sequence, which is why SA3 does
 * not quantize it (INT8 dP: dQ cosine 99.77 % → 97.47 %, SA3 Table 1c).
 *
 * Model of the tensor-core product (the same model as the PV accumulators, attention/sage/accumulate.ts):
 * both operands are IEEE half (roundFp16, nearest-even), the products of one mma.m16n8k16 step (16 along
 * the head dim) are summed in float64 (each product is exact there: a half×half product has at most 22
 * significant bits), and each step sum is added to an fp32 accumulator with one rounding.
 *
 * Operands beyond half's range are clamped to ±65504 before rounding: a real kernel receives them
 * already in fp16, so nothing larger can reach it, and clamping keeps a legal-but-extreme input from
 * turning into inf − inf = NaN.
 */
import { mmaStep, roundFp16, roundToAccumulator } from '../sage/accumulate.js';

const HALF_MAX = 65504;
const STEP = mmaStep('fp16');

/** Each element rounded to IEEE half (nearest-even), clamped to ±65504; NaN stays NaN. */
export function toHalf(x: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = roundFp16(v > HALF_MAX ? HALF_MAX : v < -HALF_MAX ? -HALF_MAX : v);
  }
  return out;
}

/**
 * Σ_x a[aOff + x]·b[bOff + x] for x < n, with a and b already half values: float64 sums of 16-element
 * MMA steps added into an fp32 accumulator.
 */
export function halfDot(a: Float64Array, aOff: number, b: Float64Array, bOff: number, n: number): number {
  let acc = 0;
  for (let x0 = 0; x0 < n; x0 += STEP) {
    const end = Math.min(n, x0 + STEP);
    let sum = 0;
    for (let x = x0; x < end; x++) sum += a[aOff + x] * b[bOff + x];
    acc = roundToAccumulator(acc + sum, 'fp32');
  }
  return acc;
}
