/**
 * NVFP4's group scale (SA3 §3.1; sageattention.md §7.1–7.2; `fp4_quantization_4d.cu`): 16 elements
 * share one unsigned E4M3 scale, so an element is x ≈ s̃·E2M1(x/s̃).
 */
import { decode } from '../numerics/decode.js';
import { encode } from '../numerics/encode.js';

/** Elements per NVFP4 group. */
export const NVFP4_GROUP_SIZE = 16;

/** Largest E2M1 magnitude: a group's amax maps to it. */
export const E2M1_MAX = 6;

const scratch = new Float32Array(1);
const scratchCode = new Uint8Array(1);

/**
 * s̃ = E4M3(fround(amax/6)), round-to-nearest-even and saturating at 448 (`__nv_fp8_e4m3(float)` is
 * `satfinite`). There is no second-level per-tensor scale in SA3, so s = amax/6 is rounded directly:
 * s̃ = 0 (codes 0) when amax/6 < 2^-10, half of E4M3's smallest subnormal, and s̃ = 448 when
 * amax > 2688, where x/s̃ then saturates at ±6.
 */
export function nvfp4Scale(amax: number): number {
  scratch[0] = amax / E2M1_MAX;
  encode('float8_e4m3fn', scratch, { saturate: true, out: scratchCode });
  return decode('float8_e4m3fn', scratchCode, scratch)[0];
}
