/**
 * `svg2Attention`: Sparse VideoGen2's semantic-aware permutation (arXiv 2505.18875; sparse_attention.md
 * §3) on the block-sparse kernel, as a composition of public steps:
 *
 *   planSvg2 (k-means on Q and on K per head, warm-started from the layer's centroid cache; criticality
 *   and top-p → cluster map; permutations; variable-block layout)
 *   → gatherTokens (Q by its permutation, K and V by K's)
 *   → blockSparseAttention on the variable layout
 *   → scatterTokens (O and the LSE back to the original order: O[π_q[r]] = O′[r]).
 *
 * The result equals the float64 oracle masked by `svg2Mask(plan)` up to float32 rounding (SVG2 §4.1:
 * the permutation is inverted, so the map acts on the original tokens). Warm-up calls run the dense
 * kernel. GPU tensors take the same steps on WebGPU (svg2-gpu.ts). NaN: k-means cannot cluster non-finite points, so non-finite values in q or k are a
 * NonFiniteInputError whatever `nanPolicy` says; non-finite V follows `nanPolicy`.
 */
import { ShapeError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import type { GpuTensor } from '../../gpu/gpu-tensor.js';
import { attentionCpu } from '../dense-cpu.js';
import { type AttentionResult, type AttentionWithLse, assertFiniteInputs } from '../options.js';
import { blockSparseAttention } from './block-sparse.js';
import { permutedAttentionCpu, tensorsBackend } from './permute.js';
import { svg2AttentionGpu } from './svg2-gpu.js';
import { type Svg2Options, type Svg2Plan, planSvg2, resolveSvg2 } from './svg2-plan.js';

export function svg2Attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: Svg2Options & { returnLse: true },
): AttentionWithLse<Tensor<'float32'>>;
export function svg2Attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: Svg2Options & { returnLse?: false },
): Tensor<'float32'>;
export function svg2Attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: Svg2Options,
): AttentionResult<Tensor<'float32'>>;
export function svg2Attention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: Svg2Options & { returnLse: true },
): Promise<AttentionWithLse<GpuTensor<'float32'>>>;
export function svg2Attention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts?: Svg2Options & { returnLse?: false },
): Promise<GpuTensor<'float32'>>;
export function svg2Attention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts?: Svg2Options,
): Promise<AttentionResult<GpuTensor<'float32'>>>;
/**
 * SVG2 attention of a clip to itself (module comment); options in `Svg2Options`. Host tensors run on
 * the CPU and return host tensors; GPU tensors run on WebGPU (svg2-gpu.ts) and return a promise of GPU
 * tensors (k-means reads its convergence test and the centroids back).
 */
export function svg2Attention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  opts: Svg2Options = {},
): AttentionResult<Tensor<'float32'>> | Promise<AttentionResult<GpuTensor<'float32'>>> {
  if (tensorsBackend(q, k, v) === 'gpu')
    return svg2AttentionGpu(q as GpuTensor, k as GpuTensor, v as GpuTensor, opts);
  return svg2AttentionCpu(q as Tensor, k as Tensor, v as Tensor, opts);
}

function svg2AttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: Svg2Options,
): AttentionResult<Tensor<'float32'>> {
  const { problem } = resolveSvg2(q, k, v, opts);
  if (problem.nanPolicy === 'error') assertFiniteInputs({ q, k, v });
  const plan: Svg2Plan = opts.plan ?? planSvg2(q, k, v, opts);
  if (plan.batch !== problem.batch || plan.heads !== problem.headsQ || plan.tokens !== problem.tokensQ) {
    throw new ShapeError(
      `the plan was made for B = ${plan.batch}, H = ${plan.heads}, N = ${plan.tokens}; these inputs have ` +
        `B = ${problem.batch}, H = ${problem.headsQ}, N = ${problem.tokensQ}. Plan again with planSvg2.`,
    );
  }
  const shared = { smScale: problem.smScale, returnLse: problem.returnLse, nanPolicy: problem.nanPolicy };
  if (plan.dense || !plan.layout || !plan.qPermutation || !plan.kPermutation) {
    return attentionCpu(q, k, v, { ...shared, layout: problem.layout });
  }
  const layout = plan.layout;
  return permutedAttentionCpu(
    q,
    k,
    v,
    { q: plan.qPermutation, k: plan.kPermutation },
    problem.layout,
    problem.returnLse,
    (qp, kp, vp) => blockSparseAttention(qp, kp, vp, layout, shared) as AttentionResult<Tensor<'float32'>>,
  );
}
