/**
 * Token permutations per (batch, head), the common step of SVG's layout transform and SVG2's
 * semantic-aware permutation (sparse_attention.md §2.2 step 3, §3.2 steps 4 and 6, §4 "Permutation").
 *
 * A permutation is an Int32Array of B·H·N entries: `perm[(b·H + h)·N + r]` is the original token that
 * lands at position r of head (b, h). `gatherTokens` applies it to Q, K or V ([B, H, N, D], HND) and
 * `scatterTokens` applies its inverse to the output, O[perm[r]] = O′[r]; because πᵀπ = I the pair
 * leaves attention exactly equal to masked attention in the original order (SVG2 paper §4.1).
 * `permutedAttentionCpu` is that gather → kernel → scatter composition, shared by both methods.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { type TypedArray, storageOf } from '../../core/dtype.js';
import { type Layout, convertLayout } from '../../core/layout.js';
import { Tensor, formatShape } from '../../core/tensor.js';
import { isGpuTensor } from '../../gpu/gpu-tensor.js';
import type { AttentionResult, AttentionWithLse } from '../options.js';

/** A stable counting sort of integer labels: the permutation that groups them, and the group sizes. */
export interface LabelSort {
  /** `order[r]` = index of the r-th element in label order; ties keep their original order. */
  readonly order: Int32Array;
  /** `counts[c]` = number of elements with label c. */
  readonly counts: Int32Array;
  /** `starts[c]` = first position of label c in `order` (exclusive prefix sum of counts; length C + 1). */
  readonly starts: Int32Array;
}

/**
 * Sorts `labels` (each in [0, numLabels)) by a histogram, an exclusive scan and a stable scatter (§4: the
 * argsort of small integer labels is a counting sort). The reference uses torch.argsort, which is not
 * stable; any order inside a cluster is correct because the same permutation is inverted afterwards, and
 * the stable one makes CPU and GPU agree bit for bit.
 */
export function sortByLabel(labels: ArrayLike<number>, numLabels: number): LabelSort {
  if (!Number.isSafeInteger(numLabels) || numLabels < 1) {
    throw new ShapeError(`sortByLabel needs numLabels ≥ 1; got ${numLabels}`);
  }
  const counts = new Int32Array(numLabels);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= numLabels) {
      throw new ShapeError(`label ${i} is ${c}; labels must be integers in [0, ${numLabels})`);
    }
    counts[c]++;
  }
  const starts = new Int32Array(numLabels + 1);
  for (let c = 0; c < numLabels; c++) starts[c + 1] = starts[c] + counts[c];
  const next = starts.slice(0, numLabels);
  const order = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) order[next[labels[i]]++] = i;
  return { order, counts, starts };
}

/** The inverse of a permutation given per (b, h) segment of `n`: inv[perm[r]] = r within each segment. */
export function invertPermutation(perm: Int32Array, n: number): Int32Array {
  const inv = new Int32Array(perm.length);
  for (let base = 0; base < perm.length; base += n) {
    for (let r = 0; r < n; r++) inv[base + perm[base + r]] = r;
  }
  return inv;
}

function check(x: Tensor, perm: Int32Array, what: string): [number, number, number] {
  if (x.rank !== 4) throw new ShapeError(`${what} takes [B, H, N, D] tensors; got ${formatShape(x.shape)}`);
  const [b, h, n, d] = x.shape;
  if (perm.length !== b * h * n) {
    throw new ShapeError(
      `${what}: a permutation for ${formatShape(x.shape)} has B·H·N = ${b * h * n} entries; got ${perm.length}`,
    );
  }
  return [b * h, n, d];
}

/** x′[b, h, r] = x[b, h, perm[(b·H + h)·N + r]] for a [B, H, N, D] tensor (HND), in x's dtype. */
export function gatherTokens<T extends Tensor>(x: T, perm: Int32Array): T {
  const [bh, n, d] = check(x, perm, 'gatherTokens');
  const src = x.data;
  const dst = new (storageOf(x.dtype))(src.length) as TypedArray;
  for (let s = 0; s < bh; s++) {
    for (let r = 0; r < n; r++) {
      const from = (s * n + perm[s * n + r]) * d;
      dst.set(src.subarray(from, from + d), (s * n + r) * d);
    }
  }
  return new Tensor(dst, x.shape, x.dtype) as T;
}

/** The inverse of `gatherTokens`: x[b, h, perm[(b·H + h)·N + r]] = x′[b, h, r]. */
export function scatterTokens<T extends Tensor>(x: T, perm: Int32Array): T {
  const [bh, n, d] = check(x, perm, 'scatterTokens');
  const src = x.data;
  const dst = new (storageOf(x.dtype))(src.length) as TypedArray;
  for (let s = 0; s < bh; s++) {
    for (let r = 0; r < n; r++) {
      const from = (s * n + r) * d;
      dst.set(src.subarray(from, from + d), (s * n + perm[s * n + r]) * d);
    }
  }
  return new Tensor(dst, x.shape, x.dtype) as T;
}

/**
 * The composition SVG and SVG2 share on the CPU (§2.2 step 3, §3.2 steps 4–6): gather q by `perms.q`
 * and k, v by `perms.k` (all converted to HND), run `kernel` on the permuted tensors, and scatter O —
 * and the LSE, when `returnLse` — back by `perms.q`, in the caller's `layout`.
 */
export function permutedAttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  perms: { q: Int32Array; k: Int32Array },
  layout: Layout,
  returnLse: boolean,
  kernel: (q: Tensor, k: Tensor, v: Tensor) => AttentionResult<Tensor<'float32'>>,
): AttentionResult<Tensor<'float32'>> {
  const hnd = <T extends Tensor>(t: T): T => convertLayout(t, layout, 'HND');
  const result = kernel(
    gatherTokens(hnd(q), perms.q),
    gatherTokens(hnd(k), perms.k),
    gatherTokens(hnd(v), perms.k),
  );
  const toOriginal = (o: Tensor<'float32'>) => convertLayout(scatterTokens(o, perms.q), 'HND', layout);
  if (!returnLse) return toOriginal(result as Tensor<'float32'>);
  const { out, lse } = result as AttentionWithLse<Tensor<'float32'>>;
  const [b, h, n] = lse.shape;
  return { out: toOriginal(out), lse: scatterTokens(lse.reshape([b, h, n, 1]), perms.q).reshape([b, h, n]) };
}

/**
 * Where a call of q, k and v runs: 'gpu' when all three are GPU tensors, 'cpu' when all are host
 * tensors; a mix is an UnsupportedOptionError saying how to move them.
 */
export function tensorsBackend(q: unknown, k: unknown, v: unknown): 'gpu' | 'cpu' {
  const onGpu = [q, k, v].map(isGpuTensor);
  if (onGpu.every(Boolean)) return 'gpu';
  if (onGpu.some(Boolean)) {
    throw new UnsupportedOptionError(
      'q, k and v must all be host tensors or all GPU tensors; use upload() or download() to move them',
    );
  }
  return 'cpu';
}
