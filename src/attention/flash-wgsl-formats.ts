/**
 * WGSL pieces for the quantized operands of SageAttention's PV product, shared by the scalar and the
 * subgroup-matrix kernels: rounding P̃ to its format, and decoding one-byte V codes to exact values.
 */

/** Formats of V codes (one byte each) the kernels decode. */
export type VCodeFormat = 'float8_e4m3fn' | 'float8_e5m2' | 'int8';

/** Formats P̃ is rounded to in the kernels. */
export type PQuantFormat = 'float8_e4m3fn' | 'float8_e5m2' | 'int8';

/**
 * log2 of the static range P̃ is scaled to before rounding, per format (p-quant.ts pExponentOffset:
 * SA2's 8.807 for E4M3, the format max for E5M2, 127 for INT8), as WGSL literals.
 */
export const P_OFFSET: Record<PQuantFormat, string> = {
  float8_e4m3fn: '8.807',
  float8_e5m2: Math.log2(57344).toFixed(9),
  int8: Math.log2(127).toFixed(9),
};

/**
 * quantP(x), x ≥ 0: round to the format, nearest-even and saturating (`cvt.rn.satfinite`); INT8 P is
 * round-half-even of the already scaled value. Normal values round on the float32 bits (dropping
 * 20 or 21 mantissa bits with a tie-to-even bias), subnormals on the fixed step.
 */
export const PQUANT_WGSL: Record<PQuantFormat, string> = {
  float8_e4m3fn: `
fn quantP(x: f32) -> f32 {
  if (x < 0.015625) { return round(x * 512.0) / 512.0; }
  let b = bitcast<u32>(x);
  return min(bitcast<f32>((b + 0x7ffffu + ((b >> 20u) & 1u)) & 0xfff00000u), 448.0);
}`,
  float8_e5m2: `
fn quantP(x: f32) -> f32 {
  if (x < 6.103515625e-05) { return round(x * 65536.0) / 65536.0; }
  let b = bitcast<u32>(x);
  return min(bitcast<f32>((b + 0xfffffu + ((b >> 21u) & 1u)) & 0xffe00000u), 57344.0);
}`,
  int8: `
fn quantP(x: f32) -> f32 { return min(round(x), 127.0); }`,
};

/** decodeV(c): the value of the one-byte V code c (exact in f16 and f32). */
export function vDecodeWgsl(format: VCodeFormat): string {
  switch (format) {
    case 'float8_e4m3fn':
      return `
fn decodeV(c: u32) -> f32 {
  let e = (c >> 3u) & 15u;
  let m = f32(c & 7u);
  let mag = select(m / 512.0, exp2(f32(e) - 7.0) * (1.0 + m / 8.0), e > 0u);
  return select(mag, -mag, (c & 0x80u) != 0u);
}`;
    case 'float8_e5m2':
      // an E5M2 code is the top byte of the float16 with the same value
      return `
fn decodeV(c: u32) -> f32 { return unpack2x16float((c & 0xffu) << 8u).x; }`;
    case 'int8':
      return `
fn decodeV(c: u32) -> f32 { return f32(extractBits(bitcast<i32>(c), 0u, 8u)); }`;
  }
}

/** decodeV2(w): the two codes in w's low 16 bits as a packed f16 pair. Needs decodeV. */
export const V2_DECODE_WGSL = `
fn decodeV2(w: u32) -> u32 { return pack2x16float(vec2<f32>(decodeV(w & 0xffu), decodeV((w >> 8u) & 0xffu))); }`;

/**
 * FP4 (E2M1) and its E4M3 group scales in WGSL, for SageAttention3's microscaled operands
 * (sageattention.md §7.1–7.2, §7.4):
 * - decodeFp4(c): the value of the E2M1 code in c's low nibble, ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}; a
 *   code times an NVFP4 scale (E4M3, 4 significant bits, 2^-9..448) has at most 6 significant bits
 *   and lies in [2^-10, 2688], so it is exact in f16 — which is why the kernels may decode FP4
 *   operands to f16 (shared/research/ts_webgpu_ecosystem.md §1: no fp4 subgroup-matrix types).
 * - roundE2M1(a), a ≥ 0: E2M1's nearest value, ties to even, saturating at 6 (`cvt.rn.satfinite`);
 *   WGSL's round() is ties-to-even, and in [0, 2), [2, 4), [4, 6] E2M1's steps are 0.5, 1, 2.
 * - roundE4M3(x), x ≥ 0: E4M3's nearest value, ties to even, saturating at 448 (PQUANT_WGSL's rule).
 */
export const FP4_WGSL = `
fn decodeFp4(c: u32) -> f32 {
  let e = (c >> 1u) & 3u;
  let m = f32(c & 1u) * 0.5;
  let mag = select(m, ldexp(1.0 + m, i32(e) - 1), e > 0u);
  return select(mag, -mag, (c & 8u) != 0u);
}
fn roundE2M1(a: f32) -> f32 {
  let fine = round(a * 2.0) * 0.5;
  let coarse = min(round(a * 0.5) * 2.0, 6.0);
  return select(select(coarse, round(a), a < 4.0), fine, a < 2.0);
}
fn roundE4M3(x: f32) -> f32 {
  if (x < 0.015625) { return round(x * 512.0) / 512.0; }
  let b = bitcast<u32>(x);
  return min(bitcast<f32>((b + 0x7ffffu + ((b >> 20u) & 1u)) & 0xfff00000u), 448.0);
}`;

/**
 * log2 of NVFP4 P̃'s level-1 range as a WGSL literal (sage/p-quant.ts pExponentOffset): log2 2688 =
 * log2(448·6) for 'two-level' (SA3 §3.2), 0 for 'direct' (SA3 Table 1b's single-level ablation).
 */
export function nvfp4POffset(scaling: 'two-level' | 'direct'): string {
  return scaling === 'direct' ? '0.0' : Math.log2(448 * 6).toFixed(9);
}

/**
 * nvfp4Group(max) = (1/s, E4M3(s)) with s = max/6 for a group of 16 P̃ values (SA3 §3.2 level 2): the
 * reference divides P̃ by the unrounded s and multiplies the E2M1 codes by the rounded one
 * (sage/p-quant.ts); here P̃ is multiplied by 1/s (0 for an all-zero group, whose P̃ are all 0), one
 * reciprocal per group instead of a division per element. Needs FP4_WGSL.
 */
export const NVFP4_GROUP_WGSL = `
fn nvfp4Group(gmax: f32) -> vec2<f32> {
  let s = gmax / 6.0;
  return vec2<f32>(select(0.0, 1.0 / s, s > 0.0), roundE4M3(s));
}`;
