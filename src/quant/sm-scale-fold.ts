/**
 * The base-2 softmax factor σ·log2e (sageattention.md §2). Kernels compute exp2(S·σ·log2e) instead of
 * exp(S·σ), and the reference per-block quantizer folds σ·log2e into Q before quantizing it, so its
 * δ_Q carries the factor and the kernel skips the multiply (SA1 §4.6 notes this is free).
 */

/** log2(e) as the reference writes it (`sm_scale * 1.44269504` in `triton/quant_per_block.py`). */
export const LOG2E = 1.44269504;

/**
 * fround(σ·log2e): the product is taken in float64 and handed to the float32 kernel, as the Python
 * reference does when it passes `sm_scale * 1.44269504` as a kernel argument.
 */
export function log2eSmScale(smScale: number): number {
  return Math.fround(smScale * LOG2E);
}
