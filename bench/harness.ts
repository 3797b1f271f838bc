/**
 * Benchmark plumbing shared by every bench module. A module measures one area and returns rows; the
 * runner (bench/run.ts) prints them as a markdown table and writes JSON under results/. Nothing here
 * runs under `npm test`.
 */
export { median } from '../src/gpu/stats.js';

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
