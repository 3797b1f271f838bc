/**
 * `blockSparseAttention`: attention over the kept blocks of a layout on whichever backend holds the
 * tensors — the CPU kernel (block-sparse-cpu.ts) for host tensors, the WebGPU kernels
 * (block-sparse-gpu.ts) for GPU tensors. SpargeAttn, SVG and SVG2 all run on it (sparse_attention.md
 * §4 "Shared core"). Mixing host and GPU tensors is an error rather than a silent copy.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { type GpuTensor, isGpuTensor } from '../../gpu/gpu-tensor.js';
import type { AttentionResult, AttentionWithLse } from '../options.js';
import type { BlockSparseLayout } from './block-layout.js';
import { blockSparseAttentionCpu } from './block-sparse-cpu.js';
import { type GpuBlockSparseStats, blockSparseAttentionGpu } from './block-sparse-gpu.js';
import type { BlockSparseOptions, BlockSparseWithStats } from './block-sparse-options.js';

export function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions & { returnStats: true },
): BlockSparseWithStats<Tensor<'float32'>>;
export function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions & { returnLse: true; returnStats?: false },
): AttentionWithLse<Tensor<'float32'>>;
export function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts?: BlockSparseOptions & { returnLse?: false; returnStats?: false },
): Tensor<'float32'>;
export function blockSparseAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions & { returnStats: true },
): BlockSparseWithStats<GpuTensor<'float32'>, GpuBlockSparseStats>;
export function blockSparseAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions & { returnLse: true; returnStats?: false },
): AttentionWithLse<GpuTensor<'float32'>>;
export function blockSparseAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  layout: BlockSparseLayout,
  opts?: BlockSparseOptions & { returnLse?: false; returnStats?: false },
): GpuTensor<'float32'>;
export function blockSparseAttention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  layout: BlockSparseLayout,
  opts?: BlockSparseOptions,
):
  | AttentionResult<Tensor<'float32'>>
  | BlockSparseWithStats<Tensor<'float32'>>
  | AttentionResult<GpuTensor<'float32'>>
  | BlockSparseWithStats<GpuTensor<'float32'>, GpuBlockSparseStats>;
/**
 * softmax(σ·QKᵀ)·V computed only inside the kept blocks of `layout` (fixed tiles or variable
 * segments, block-layout.ts); equal, within float rounding, to the float64 oracle with
 * `layoutToMask(layout)` as its mask. Options: the shared attention options, SpargeAttn's stage-2
 * `pvThreshold` (+ `pvGroupRows`, `pvExemptLast`), SageAttention quantization (`sage`, CPU),
 * `returnStats`; CPU only `tileQ` / `tileK`, GPU only `tier` / `mma` (see BlockSparseOptions).
 */
export function blockSparseAttention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions = {},
):
  | AttentionResult<Tensor<'float32'>>
  | BlockSparseWithStats<Tensor<'float32'>>
  | AttentionResult<GpuTensor<'float32'>>
  | BlockSparseWithStats<GpuTensor<'float32'>, GpuBlockSparseStats> {
  const onGpu = [q, k, v].map(isGpuTensor);
  if (onGpu.every(Boolean)) {
    return blockSparseAttentionGpu(q as GpuTensor, k as GpuTensor, v as GpuTensor, layout, opts);
  }
  if (onGpu.some(Boolean)) {
    throw new UnsupportedOptionError(
      'q, k and v must all be host tensors or all GPU tensors; use upload() or download() to move them',
    );
  }
  return blockSparseAttentionCpu(q as Tensor, k as Tensor, v as Tensor, layout, opts);
}
