/**
 * Benchmark plumbing shared by every bench module. A module measures one area and returns rows; the
 * runner (bench/run.ts) prints them as a markdown table and writes JSON under results/. Nothing here
 * runs under `npm test`.
 */
import type { GpuAttentionPlan } from '../src/attention/dense-gpu.js';
import type { GpuRuntime } from '../src/gpu/runtime.js';
import { timeCompute, type TimingResult } from '../src/gpu/timing.js';

export { median } from '../src/gpu/stats.js';

/**
 * Times a GPU attention plan's kernel after one full run (which fills any converted operands), then
 * frees the plan's temporaries and outputs. Quick mode measures 3 batches instead of 5.
 */
export async function timePlan(
  rt: GpuRuntime,
  plan: GpuAttentionPlan,
  quick: boolean,
): Promise<TimingResult> {
  const prime = rt.device.createCommandEncoder();
  const pass = prime.beginComputePass();
  plan.record(pass);
  pass.end();
  rt.device.queue.submit([prime.finish()]);
  try {
    return await timeCompute(rt, (p) => plan.recordKernel(p), { batches: quick ? 3 : 5 });
  } finally {
    plan.destroyTemporaries();
    plan.out.destroy();
    plan.lse.destroy();
  }
}

export interface BenchRow {
  /** Area of sparq, e.g. 'numerics' or 'attention'. */
  area: string;
  /** What was measured, including the shape, e.g. 'encode float8_e4m3fn 4M values'. */
  name: string;
  /** The figure and its unit, e.g. 1.2e8 'values/s' or 187 'TFLOPS'. */
  value: number;
  unit: string;
  /** 'cpu' or 'webgpu'. */
  backend: string;
  /** Kernel tier for GPU rows ('subgroup-matrix', 'f16', 'f32'); 'js' for CPU rows. */
  tier: string;
  /** CPU model or GPU adapter name. */
  device: string;
  /** Extra facts needed to read the figure (timing method, the peer's figure in the same run). */
  notes?: string;
}

export interface BenchContext {
  /** Short mode: fewer shapes and repetitions (for a smoke run). */
  quick: boolean;
  /** Only run cases whose name contains one of these strings (empty: all). */
  filter: string[];
}

export interface BenchModule {
  area: string;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}
