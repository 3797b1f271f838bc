/**
 * `blockSparseAttention`: attention over the kept blocks of a layout on whichever backend holds the
 * tensors — the CPU kernel (block-sparse-cpu.ts) for host tensors. SpargeAttn, SVG and SVG2 all run
 * on it (sparse_attention.md §4 "Shared core").
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { isGpuTensor } from '../../gpu/gpu-tensor.js';
import type { AttentionResult, AttentionWithLse } from '../options.js';
import type { BlockSparseLayout } from './block-layout.js';
import { blockSparseAttentionCpu } from './block-sparse-cpu.js';
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
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts?: BlockSparseOptions,
): AttentionResult<Tensor<'float32'>> | BlockSparseWithStats<Tensor<'float32'>>;
/**
 * softmax(σ·QKᵀ)·V computed only inside the kept blocks of `layout` (fixed tiles or variable
 * segments, block-layout.ts); equal, within float rounding, to the float64 oracle with
 * `layoutToMask(layout)` as its mask. Options: the shared attention options, SpargeAttn's stage-2
 * `pvThreshold` (+ `pvGroupRows`, `pvExemptLast`), SageAttention quantization (`sage`), `returnStats`
 * (see BlockSparseOptions).
 */
export function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts: BlockSparseOptions = {},
): AttentionResult<Tensor<'float32'>> | BlockSparseWithStats<Tensor<'float32'>> {
  if ([q, k, v].some(isGpuTensor)) {
    throw new UnsupportedOptionError(
      'blockSparseAttention takes host tensors here; the WebGPU kernel is not wired into this entry point',
    );
  }
  return blockSparseAttentionCpu(q, k, v, layout, opts);
}
