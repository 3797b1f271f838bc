/**
 * MXFP4's group scale (OCP Microscaling; TetraJet §3.2, training_methods.md §1.1–1.2): 32 elements
 * share one E8M0 scale S = 2^e, |e| ≤ 127, and an element is x ≈ S·E2M1(x/S).
 *
 * Rules (MxScaleRule, in types.ts):
 * - 'truncation-free' (default; TetraJet's `mxscale 1`, used by all its scripts): e = ⌈log2(amax/6)⌉,
 *   the smallest e with 6·2^e ≥ amax, so |x/S| ≤ 6 and E2M1 never clips. amax = 0 is replaced by
 *   1e-8 as in TetraJet's code, so a zero group still has a finite scale (its codes are 0).
 * - 'ocp' (the OCP baseline, `mxscale 3`): e = ⌊log2 amax⌋ − 2 (E2M1's emax); |x/S| < 8, and values
 *   above 6 are clipped (e.g. amax 31 → S = 4, 7.75 → 6). Same 1e-8 stand-in for amax = 0.
 * (`mxscale 2`, ⌊log2(amax/6)⌋, is labelled "Wrong" in TetraJet's code and not offered.)
 * e is computed exactly (comparisons against powers of two, not a rounded log2) and clamped to
 * E8M0's range [−127, 127].
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { E2M1_MAX } from './nvfp4.js';
import type { MxScaleRule } from './types.js';

/** Elements per MXFP4 group. */
export const MXFP4_GROUP_SIZE = 32;

/** TetraJet's stand-in for a zero amax (training_methods.md §1.2). */
export const MX_ZERO_AMAX = 1e-8;

export const MX_SCALE_RULES: readonly MxScaleRule[] = ['truncation-free', 'ocp'];

/** The exponent e of the E8M0 scale 2^e for a group whose largest magnitude is `amax`. */
export function mxfp4ScaleExponent(amax: number, rule: MxScaleRule = 'truncation-free'): number {
  if (!MX_SCALE_RULES.includes(rule)) {
    throw new UnsupportedOptionError(
      `MXFP4 scaleRule must be 'truncation-free' (TetraJet) or 'ocp' (OCP baseline); got ${JSON.stringify(rule)}`,
    );
  }
  const m = amax > 0 ? amax : MX_ZERO_AMAX;
  let e: number;
  if (rule === 'truncation-free') {
    e = Math.ceil(Math.log2(m / E2M1_MAX));
    while (E2M1_MAX * 2 ** (e - 1) >= m) e--;
    while (E2M1_MAX * 2 ** e < m) e++;
  } else {
    e = Math.floor(Math.log2(m));
    while (2 ** e > m) e--;
    while (2 ** (e + 1) <= m) e++;
    e -= 2;
  }
  return Math.min(127, Math.max(-127, e));
}

/** The scale 2^e as a number (exact in float32: 2^-127 is a float32 subnormal). */
export function mxfp4Scale(amax: number, rule: MxScaleRule = 'truncation-free'): number {
  return 2 ** mxfp4ScaleExponent(amax, rule);
}
