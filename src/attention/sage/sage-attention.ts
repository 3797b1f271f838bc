/**
 * `sageAttention`: SageAttention's pipeline as a composition of its public steps (sageattention.md
 * §4.6; STYLE.md "smooth → quantize → kernel → finalize"): quantizeQK (smoothing, ΔS, Q/K codes),
 * quantizeV (smoothing, V codes), then the kernel, which also finalizes (O / l, δ_V, v̄, LSE). Each
 * step can be called on its own with the options `resolveSageOptions` derives here.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { type GpuTensor, isGpuTensor } from '../../gpu/gpu-tensor.js';
import { sageAttentionGpu } from './sage-attention-gpu.js';
import { type AttentionResult, type AttentionWithLse, assertFiniteInputs } from '../options.js';
import { sageKernelCpu } from './kernel-cpu.js';
import { type SageOptions, quantizeQKOptions, quantizeVOptions, resolveSageOptions } from './options.js';
import { quantizeQK } from './quantize-qk.js';
import { quantizeV } from './quantize-v.js';

export function sageAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SageOptions & { returnLse: true },
): AttentionWithLse<Tensor<'float32'>>;
export function sageAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: SageOptions & { returnLse?: false },
): Tensor<'float32'>;
export function sageAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: SageOptions,
): AttentionResult<Tensor<'float32'>>;
export function sageAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SageOptions & { returnLse: true },
): AttentionWithLse<GpuTensor<'float32'>>;
export function sageAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts?: SageOptions & { returnLse?: false },
): GpuTensor<'float32'>;
export function sageAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts?: SageOptions,
): AttentionResult<GpuTensor<'float32'>>;
/**
 * softmax(σ·QKᵀ)·V computed as SageAttention does (preset 'sage1', 'sage2' (default), 'sage2++' or
 * 'sage3', each step overridable; see SageOptions and presets.ts). Host tensors (float32/float64/
 * float16/bfloat16) run the CPU emulation; GPU tensors (float16/float32) run every step on WebGPU,
 * every preset included (sage-attention-gpu.ts says what runs there). Float32 out in the input layout,
 * with the natural-log LSE [B, Hq, Nq] when `returnLse` is set.
 *
 * Hard inputs: fully masked rows give zeros and LSE −∞; all-zero groups and channels give zeros (the
 * quantizers' epsilon guards). Finite inputs never give NaN. fp16 accumulation without the SA2++ range
 * limit can give ±inf, as IEEE half does (accumulate.ts). NVFP4 has no per-tensor scale (SA3 §3.1), so
 * sage3 clips a 16-element group whose max exceeds 448·6 = 2688, as the reference does.
 *
 * NaN policy: 'error' scans the inputs first. Under 'propagate' a NaN or ±inf spoils what shares a
 * statistic with it: its quantization group's scale (the rows of a Q group, every row through a K
 * group or a V channel), the K or V token mean when smoothing (every row of the head), the Q block
 * mean with smoothQ (the rows of the block). Rows that share nothing with it stay finite.
 */
export function sageAttention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  opts: SageOptions = {},
): AttentionResult<Tensor<'float32'>> | AttentionResult<GpuTensor<'float32'>> {
  const onGpu = [q, k, v].map(isGpuTensor);
  if (onGpu.some(Boolean)) {
    if (!onGpu.every(Boolean)) {
      throw new UnsupportedOptionError(
        'q, k and v must all be host tensors or all GPU tensors; use upload() or download() to move them',
      );
    }
    const [gq, gk, gv] = [q, k, v] as GpuTensor[];
    return sageAttentionGpu(gq, gk, gv, resolveSageOptions(gq, gk, gv, opts));
  }
  const [hq, hk, hv] = [q, k, v] as Tensor[];
  const resolved = resolveSageOptions(hq, hk, hv, opts);
  const { problem, config } = resolved;
  if (problem.nanPolicy === 'error') assertFiniteInputs({ q: hq, k: hk, v: hv });
  const qk = quantizeQK(hq, hk, quantizeQKOptions(resolved));
  const vq = quantizeV(hv, quantizeVOptions(resolved));
  return sageKernelCpu(qk, vq, {
    causal: problem.causal,
    causalAlignment: problem.causalAlignment,
    returnLse: problem.returnLse,
    pFormat: config.pFormat,
    pScaling: config.pScaling,
    pvAccum: config.pvAccum,
    q: hq,
  });
}
