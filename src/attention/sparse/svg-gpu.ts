/**
 * Sparse VideoGen on WebGPU: the same composition as svg.ts with every step on the GPU — profiling,
 * kind choice and permutation (svg-profile-gpu.ts), the token gather (permute-gpu.ts), the block-sparse
 * kernel with the band layout (block-sparse-gpu.ts; the layout depends only on the clip's geometry, so
 * it is built on the host without reading anything back), and the inverse scatter of O and the LSE.
 * `svgAttentionGpu` therefore returns GPU tensors synchronously, like `attention`; `planSvgGpu` runs
 * the profiling and reads the kinds and MSEs back, to inspect them or to pass as `plan`.
 */
import { submitComputePass } from '../../gpu/dispatch.js';
import { Tensor } from '../../core/tensor.js';
import { download, type GpuTensor, upload } from '../../gpu/gpu-tensor.js';
import { attentionGpu } from '../dense-gpu.js';
import type { AttentionResult, AttentionWithLse } from '../options.js';
import type { FixedBlockLayout } from './block-layout.js';
import { blockSparseAttentionGpu } from './block-sparse-gpu.js';
import { permutedAttentionGpu } from './permute-gpu.js';
import { type SvgHeadKind, fixedTileMask, svgPermutation } from './svg-layout.js';
import { type SvgOptions, type SvgPlan, resolveSvgPlanShape, resolveSvgProblem } from './svg-plan.js';
import { recordSvgProfileGpu } from './svg-profile-gpu.js';

/** The plan of one SVG call on GPU tensors: profiling on the GPU, kinds and MSEs read back. */
export async function planSvgGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SvgOptions,
): Promise<SvgPlan> {
  const shape = resolveSvgPlanShape(q, k, v, opts);
  const { problem, geometry, base, dense, profiling } = shape;
  const sets = problem.batch * problem.headsQ;
  if (dense || !profiling) {
    const kinds = dense ? new Array<SvgHeadKind>(sets).fill('spatial') : shape.headKinds!;
    return {
      ...base,
      dense,
      density: dense ? 1 : base.density,
      headKinds: kinds,
      permutation: svgPermutation(kinds, geometry),
    };
  }
  const rt = q.runtime;
  let prof!: ReturnType<typeof recordSvgProfileGpu>;
  submitComputePass(rt, (pass) => {
    prof = recordSvgProfileGpu(
      q,
      k,
      v,
      problem,
      geometry,
      fixedTileMask(base.layout),
      profiling.blockQ,
      profiling.blockK,
      profiling.rows,
      pass,
    );
  });
  try {
    const kinds = Array.from((await download(prof.kinds)).data, (x): SvgHeadKind =>
      x === 1 ? 'temporal' : 'spatial',
    );
    const mse = (await download(prof.mse)).data;
    return {
      ...base,
      dense: false,
      headKinds: kinds,
      profile: {
        rows: profiling.rows,
        headKinds: kinds,
        mse: kinds.map((_, s) => ({ spatial: mse[2 * s], temporal: mse[2 * s + 1] })),
      },
      permutation: svgPermutation(kinds, geometry),
    };
  } finally {
    prof.release();
    prof.kinds.destroy();
    prof.mse.destroy();
    prof.perm.destroy();
  }
}

/**
 * SVG attention of GPU tensors (module comment); options as `svgAttention`. Without `plan` or
 * `headKinds` the profiling runs on the GPU and nothing is read back.
 */
export function svgAttentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: SvgOptions,
): AttentionResult<GpuTensor<'float32'>> {
  const { problem } = resolveSvgProblem(q, k, v, opts);
  const shared = { smScale: problem.smScale, returnLse: problem.returnLse, layout: problem.layout };
  const rt = q.runtime;
  let layout: FixedBlockLayout;
  let perm: GpuTensor<'int32'>;
  const releases: (() => void)[] = [];
  if (opts.plan) {
    const plan = opts.plan;
    if (plan.dense) return attentionGpu(q, k, v, shared);
    layout = plan.layout;
    perm = upload(rt, new Tensor(plan.permutation, [plan.permutation.length], 'int32'), 'svg permutation');
  } else {
    const shape = resolveSvgPlanShape(q, k, v, opts);
    if (shape.dense) return attentionGpu(q, k, v, shared);
    layout = shape.base.layout;
    if (!shape.profiling) {
      const p = svgPermutation(shape.headKinds!, shape.geometry);
      perm = upload(rt, new Tensor(p, [p.length], 'int32'), 'svg permutation');
    } else {
      const prof = shape.profiling;
      let made!: ReturnType<typeof recordSvgProfileGpu>;
      submitComputePass(rt, (pass) => {
        made = recordSvgProfileGpu(
          q,
          k,
          v,
          problem,
          shape.geometry,
          fixedTileMask(shape.base.layout),
          prof.blockQ,
          prof.blockK,
          prof.rows,
          pass,
        );
      });
      releases.push(
        made.release,
        () => made.kinds.destroy(),
        () => made.mse.destroy(),
      );
      perm = made.perm;
    }
  }
  try {
    return permutedAttentionGpu(
      q,
      k,
      v,
      { q: perm, k: perm },
      problem.layout,
      problem.returnLse,
      (qp, kp, vp) =>
        blockSparseAttentionGpu(qp, kp, vp, layout, shared) as
          GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>>,
    );
  } finally {
    perm.destroy();
    for (const r of releases) r();
  }
}
