/**
 * `attention`: dense softmax attention on whichever backend holds the tensors. Host tensors run the
 * tiled CPU kernel (dense-cpu.ts) and return host tensors; GPU tensors run the WebGPU kernels
 * (dense-gpu.ts) and return GPU tensors. Mixing the two is an error rather than a silent copy.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { GpuTensor } from '../gpu/gpu-tensor.js';
import { type CpuAttentionOptions, attentionCpu } from './dense-cpu.js';
import { type GpuAttentionOptions, attentionGpu } from './dense-gpu.js';
import type { AttentionResult, AttentionWithLse } from './options.js';

/** Options of `attention`: the shared attention options plus each backend's own. */
export type DenseAttentionOptions = CpuAttentionOptions & GpuAttentionOptions;

export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: CpuAttentionOptions & { returnLse: true },
): AttentionWithLse<Tensor<'float32'>>;
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: CpuAttentionOptions & { returnLse?: false },
): Tensor<'float32'>;
export function attention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: GpuAttentionOptions & { returnLse: true },
): AttentionWithLse<GpuTensor<'float32'>>;
export function attention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts?: GpuAttentionOptions & { returnLse?: false },
): GpuTensor<'float32'>;
export function attention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  opts?: DenseAttentionOptions,
): AttentionResult<Tensor<'float32'>> | AttentionResult<GpuTensor<'float32'>>;
/**
 * softmax(σ·QKᵀ)·V with FlashAttention-2's online softmax (Dao 2023, Alg. 1), on the CPU for host
 * tensors and on WebGPU for GPU tensors. Options: `layout`, `causal` + `causalAlignment`, `smScale`,
 * `returnLse`, `nanPolicy` (see AttentionOptions); GPU only: `tier`; CPU only: `blockQ`, `blockK`.
 */
export function attention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  opts: DenseAttentionOptions = {},
): AttentionResult<Tensor<'float32'>> | AttentionResult<GpuTensor<'float32'>> {
  const onGpu = [q, k, v].map((t) => t instanceof GpuTensor);
  if (onGpu.every(Boolean)) {
    if (opts.blockQ !== undefined || opts.blockK !== undefined) {
      throw new UnsupportedOptionError(
        'blockQ and blockK tile the CPU kernel; for GPU tensors use tier / mma',
      );
    }
    return attentionGpu(q as GpuTensor, k as GpuTensor, v as GpuTensor, opts);
  }
  if (onGpu.some(Boolean)) {
    throw new UnsupportedOptionError(
      'q, k and v must all be host tensors or all GPU tensors; use upload() or download() to move them',
    );
  }
  if (opts.tier !== undefined || opts.mma !== undefined) {
    throw new UnsupportedOptionError('tier and mma select GPU kernels; upload the tensors to run on the GPU');
  }
  return attentionCpu(q as Tensor, k as Tensor, v as Tensor, opts);
}
