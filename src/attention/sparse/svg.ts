/**
 * `svgAttention`: Sparse VideoGen (SVG, arXiv 2502.01776; sparse_attention.md §2) on the block-sparse
 * kernel. A short composition of public steps:
 *
 *   planSvg (dense warm-up? band from the density; online profiling → spatial | temporal per head)
 *   → gatherTokens (temporal heads into token-major order, §2.2 step 3)
 *   → blockSparseAttention with one band layout for every head
 *   → scatterTokens (the inverse transform on O and the LSE).
 *
 * The result equals the float64 oracle masked by `svgMask(plan)` up to float32 rounding. Warm-up calls
 * run the dense kernel. GPU tensors take the same steps on WebGPU (svg-gpu.ts) and return GPU tensors. NaN handling follows `nanPolicy` (see svg-profile.ts for what a NaN does to
 * profiling).
 */
import { ShapeError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import type { GpuTensor } from '../../gpu/gpu-tensor.js';
import { attentionCpu } from '../dense-cpu.js';
import { type AttentionResult, type AttentionWithLse, assertFiniteInputs } from '../options.js';
import { blockSparseAttention } from './block-sparse.js';
import { permutedAttentionCpu, tensorsBackend } from './permute.js';
import { svgAttentionGpu } from './svg-gpu.js';
import { type SvgOptions, type SvgPlan, planSvg, resolveSvgProblem } from './svg-plan.js';

export function svgAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SvgOptions & { returnLse: true },
): AttentionWithLse<Tensor<'float32'>>;
export function svgAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SvgOptions & { returnLse?: false },
): Tensor<'float32'>;
export function svgAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SvgOptions,
): AttentionResult<Tensor<'float32'>>;
export function svgAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SvgOptions & { returnLse: true },
): AttentionWithLse<GpuTensor<'float32'>>;
export function svgAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SvgOptions & { returnLse?: false },
): GpuTensor<'float32'>;
export function svgAttention(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SvgOptions,
): AttentionResult<GpuTensor<'float32'>>;
/**
 * SVG attention of a clip to itself (module comment); options in `SvgOptions`. Host tensors run on the
 * CPU, GPU tensors on WebGPU (svg-gpu.ts, everything on the GPU).
 */
export function svgAttention(
  q: Tensor | GpuTensor,
  k: Tensor | GpuTensor,
  v: Tensor | GpuTensor,
  opts: SvgOptions,
): AttentionResult<Tensor<'float32'>> | AttentionResult<GpuTensor<'float32'>> {
  if (tensorsBackend(q, k, v) === 'gpu')
    return svgAttentionGpu(q as GpuTensor, k as GpuTensor, v as GpuTensor, opts);
  return svgAttentionCpu(q as Tensor, k as Tensor, v as Tensor, opts);
}

function svgAttentionCpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SvgOptions,
): AttentionResult<Tensor<'float32'>> {
  const { problem } = resolveSvgProblem(q, k, v, opts);
  if (problem.nanPolicy === 'error') assertFiniteInputs({ q, k, v });
  const plan: SvgPlan = opts.plan ?? planSvg(q, k, v, opts);
  if (plan.batch !== problem.batch || plan.heads !== problem.headsQ || plan.layout.nq !== problem.tokensQ) {
    throw new ShapeError(
      `the plan was made for B = ${plan.batch}, H = ${plan.heads}, N = ${plan.layout.nq}; these inputs have ` +
        `B = ${problem.batch}, H = ${problem.headsQ}, N = ${problem.tokensQ}. Plan again with planSvg.`,
    );
  }
  const shared = { smScale: problem.smScale, returnLse: problem.returnLse, nanPolicy: problem.nanPolicy };
  if (plan.dense) return attentionCpu(q, k, v, { ...shared, layout: problem.layout });
  const perm = plan.permutation;
  return permutedAttentionCpu(
    q,
    k,
    v,
    { q: perm, k: perm },
    problem.layout,
    problem.returnLse,
    (qp, kp, vp) =>
      blockSparseAttention(qp, kp, vp, plan.layout, shared) as AttentionResult<Tensor<'float32'>>,
  );
}
