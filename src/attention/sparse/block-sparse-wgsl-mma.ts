/**
 * WGSL generator for the tensor-core block-sparse tier: the dense subgroup-matrix kernel
 * (flash-wgsl-mma.ts, FlashAttention-2 on f16 16×16×16 matrices with lazy rescaling) in its
 * block-sparse form — one workgroup per (b, h, query block), the block's rows in chunks of the
 * workgroup's rows, the key tiles of the kept blocks in CSR order from a cursor, bounds-masked at each
 * block's end, the next tile prefetched across block boundaries — with the layout helpers of
 * block-sparse-wgsl-layout.ts and, optionally, SpargeAttn's stage-2 group vote (sparse_attention.md
 * §1.3) taken against each row's exact running max.
 */
import { type MmaFlashConfig, mmaFlashWgsl } from '../flash-wgsl-mma.js';
import { type SparseKernelShape, sparseLayoutWgsl } from './block-sparse-wgsl-layout.js';

export function mmaBlockSparseWgsl(c: MmaFlashConfig, shape: SparseKernelShape): string {
  return mmaFlashWgsl(c, { declarations: sparseLayoutWgsl(shape), pvGroupRows: shape.pvGroupRows });
}
