/**
 * Quantization of the unnormalised softmax probabilities P̃ before the PV product (sageattention.md
 * §3.3, §3.4, §4.3, §7.4). P̃ = exp2(S − m) lies in [0, 1], so every format gets a static range: the
 * kernel computes P̃ = exp2(S − m + log2 P_r) ∈ [0, P_r] (the scale folded into the exponent, as the
 * reference's `exp_offset`), and the running denominator l sums the same unquantized P̃, so P_r cancels
 * in O / l and in the LSE. No per-block P scale is ever computed from the data except NVFP4's second
 * level.
 */
import { decode } from '../../numerics/decode.js';
import { encode } from '../../numerics/encode.js';
import { quantizeInt } from '../../numerics/int-quant.js';
import { E2M1_MAX, NVFP4_GROUP_SIZE, nvfp4Scale } from '../../quant/nvfp4.js';
import type { PVFormat, QuantRounding } from '../../quant/types.js';

/**
 * The reference's E4M3 offset `S_FP8_OFFSET` (SA2 §3.3; `attn_utils.cuh`): exp2(8.807) ≈ 447.89, so
 * the row max of P̃ lands on E4M3's 448 (the truncated constant, not log2 448 = 8.80735, is what the
 * reference uses; the difference rounds away in the cast).
 */
export const E4M3_P_OFFSET = 8.807;

/** SA3's level-1 row target 448·6 = 2688: E4M3's max block scale times E2M1's max element (§7.4). */
export const NVFP4_P_ROW_MAX = 448 * E2M1_MAX;

/**
 * How NVFP4 P̃ is scaled before its 16-key groups are quantized (SA3 §3.2, Table 1b):
 * - 'two-level' (default, SA3's choice): level 1 scales each row to 2688 (pExponentOffset), so the
 *   level-2 group scales max/6 land in (0, 448] and use E4M3's whole range.
 * - 'direct': the groups of P̃ ∈ [0, 1] as they are, with group scales max/6 ∈ [0, 0.167] rounded to
 *   E4M3, where small scales fall among its subnormals; the ablation SA3 reports at cos 93.32%.
 * Every other P format has a static range and no choice: it takes only 'two-level'.
 */
export type PScaling = 'two-level' | 'direct';

export const P_SCALINGS: readonly PScaling[] = ['two-level', 'direct'];

/**
 * log2 of the static range P_r that P̃ is scaled to, per format:
 * - float8_e4m3fn: 8.807, i.e. δ_P = 1/448 (SA2 §3.3).
 * - float8_e5m2: log2 57344, the same rule (static scale to the format's max) for SA2 Table 7's E5M2.
 * - int8: log2 127, SA1's static 1/127 scale (SA1 Table 6, SAGEAttn-vB).
 * - fp16: 0; SA1 casts P̃ ∈ [0, 1] to fp16 as it is (SA1 §4.4).
 * - nvfp4: log2 2688, SA3's level-1 per-row scale (SA3 §3.2; `softmax_fused.h` max_scaled), or 0
 *   with `scaling: 'direct'` (no level 1, SA3 Table 1b's ablation).
 */
export function pExponentOffset(format: PVFormat, scaling: PScaling = 'two-level'): number {
  switch (format) {
    case 'float8_e4m3fn':
      return E4M3_P_OFFSET;
    case 'float8_e5m2':
      return Math.log2(57344);
    case 'int8':
      return Math.log2(127);
    case 'fp16':
      return 0;
    case 'nvfp4':
      return scaling === 'direct' ? 0 : Math.log2(NVFP4_P_ROW_MAX);
  }
}

/** One row of one key block of P̃, quantized. */
export interface QuantizedP {
  /** float16 / float8 / float4_e2m1fn codes (Uint16Array or Uint8Array), or int8 codes. */
  codes: Uint8Array | Uint16Array | Int8Array;
  /** nvfp4 only: the E4M3-rounded scale of each group of 16 keys; null for the other formats. */
  groupScales: Float32Array | null;
  /** What the PV MMA multiplies: decoded codes (times the group scale for nvfp4). */
  values: Float32Array;
}

/**
 * Quantizes P̃ ∈ [0, P_r] (already scaled by pExponentOffset) to `format`:
 * - fp16: round to nearest even (SA1 §4.4).
 * - float8_e4m3fn / float8_e5m2: round to nearest even, saturating (`cvt.rn.satfinite`, SA2 §3.3).
 * - int8: P̂ = round(P̃) with `rounding`, saturating at 127 (static scale 1/127 already folded).
 * - nvfp4: SA3's level 2 (Alg. 1 line 10) on groups of 16 keys starting at pTilde[0]: s = max/6 in
 *   fp32, P̂ = E2M1(P̃ / s) with s unrounded, and the MMA multiplies by E4M3(s). The same groups
 *   quantize 'direct' P̃ ∈ [0, 1]; only the offset differs (pExponentOffset). Dividing by the
 *   unrounded scale but multiplying by the rounded one is the reference's own mismatch
 *   (`softmax_fused.h`), reproduced here. An all-zero group (masked keys) gives codes 0, scale 0.
 */
export function quantizeP(pTilde: Float32Array, format: PVFormat, rounding: QuantRounding): QuantizedP {
  switch (format) {
    case 'fp16': {
      const codes = encode('float16', pTilde);
      return { codes, groupScales: null, values: decode('float16', codes) };
    }
    case 'float8_e4m3fn':
    case 'float8_e5m2': {
      const codes = encode(format, pTilde, { saturate: true });
      return { codes, groupScales: null, values: decode(format, codes) };
    }
    case 'int8': {
      const codes = quantizeInt(pTilde, 1, { bits: 8, rounding });
      return { codes, groupScales: null, values: Float32Array.from(codes) };
    }
    case 'nvfp4':
      return quantizePGroups(pTilde);
  }
}

function quantizePGroups(pTilde: Float32Array): QuantizedP {
  const n = pTilde.length;
  const groups = Math.ceil(n / NVFP4_GROUP_SIZE);
  const groupScales = new Float32Array(groups);
  const scaled = new Float32Array(n);
  for (let g = 0; g < groups; g++) {
    const start = g * NVFP4_GROUP_SIZE;
    const end = Math.min(start + NVFP4_GROUP_SIZE, n);
    let max = 0;
    for (let i = start; i < end; i++) max = Math.max(max, pTilde[i]);
    const s = Math.fround(max / E2M1_MAX);
    for (let i = start; i < end; i++) scaled[i] = s === 0 ? 0 : pTilde[i] / s;
    groupScales[g] = nvfp4Scale(max);
  }
  const codes = encode('float4_e2m1fn', scaled, { saturate: true });
  const values = decode('float4_e2m1fn', codes);
  for (let i = 0; i < n; i++) values[i] *= groupScales[Math.floor(i / NVFP4_GROUP_SIZE)];
  return { codes, groupScales, values };
}
