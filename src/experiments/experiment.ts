/**
 * The contract every reproduced claim and every accuracy evaluation follows, so that `sparq run <name>`,
 * the JSON under `results/` and `sparq report` treat them alike. An experiment is a module with a
 * config per mode, a `runSeed` that is a pure function of (config, seed), and a `summarize` that turns
 * the per-seed results into mean ± std metrics, a verdict against the pre-registered threshold, plot
 * specs and the headline figures the report's method table shows.
 *
 * Determinism: `runSeed` must return the same result for the same (config, seed) on the same backend
 * (every random draw comes from `Rng.fromSeed(seed)` or a split of it). Wall-clock times are not
 * results; a seed result may carry them only under a key named `timing`, which the runner keeps out of
 * the reproducibility check.
 */
import type { PlotSpec } from './plot-spec.js';

/**
 * The ten methods sparq implements, as the report's method table names them. The SageAttention family
 * (SA1, SA2, SA2++, SA3) is one method with four presets; its headlines name the preset.
 */
export const METHODS = [
  'SageAttention',
  'SpargeAttn',
  'Sparse VideoGen',
  'SVG2',
  'Fallback Quantization',
  'TetraJet',
  'SageBwd',
  'GFT',
  'Analytic-Precond',
  'VRPO',
] as const;
export type MethodName = (typeof METHODS)[number];

/** `quick`: ≤ 3 minutes on 2 CPU cores, what `sparq report` runs. `full`: the numbers the README quotes. */
export type RunMode = 'quick' | 'full';

/** What a seed run may use besides its config. */
export interface RunContext {
  readonly mode: RunMode;
  /** Where compute runs; experiments that only have a CPU path ignore it. */
  readonly backend: 'cpu' | 'webgpu';
  /** Progress within this seed: `done` of `total` units, with an optional label. */
  progress(done: number, total: number, label?: string): void;
}

/** One metric aggregated over seeds. `std` is the sample standard deviation (null for one seed). */
export interface MetricRow {
  /** What is measured, e.g. 'final loss' or 'relative L1'. */
  readonly metric: string;
  /** The arm / variant / condition it belongs to, e.g. 'int8-fallback' or 'sage2, K bias'. */
  readonly arm: string;
  readonly mean: number;
  readonly std: number | null;
  /** Number of seeds (or repeats) aggregated. */
  readonly n: number;
  readonly unit?: string;
}

/** The pre-registered claim, judged. `inconclusive` when the measurement cannot decide it. */
export interface Verdict {
  readonly outcome: 'holds' | 'does-not-hold' | 'inconclusive';
  /** The numbers that decide it, in a sentence. */
  readonly detail: string;
}

/** A finding with its verdict; an experiment usually tests one claim, an evaluation several. */
export interface Finding {
  readonly claim: string;
  readonly verdict: Verdict;
}

/** A figure the report's table of methods shows for one method. */
export interface Headline {
  readonly method: MethodName;
  /** e.g. 'cos 0.9998, rel. L1 0.012 vs float64 (Gaussian, N 1024)'. */
  readonly accuracy?: string;
  /** e.g. '2.1× fewer FLOPs at 38 % density' or a measured time. */
  readonly speed?: string;
}

export interface Summary {
  readonly metrics: readonly MetricRow[];
  readonly findings: readonly Finding[];
  readonly plots: readonly PlotSpec[];
  readonly headlines: readonly Headline[];
  /** Free-form notes worth showing with the results (caveats, what was not measured). */
  readonly notes?: readonly string[];
}

export interface Experiment<Config = unknown, SeedResult = unknown> {
  /** Kebab-case; the argument of `sparq run`. */
  readonly name: string;
  readonly title: string;
  /** `experiment` reproduces a paper claim by training or simulation; `evaluation` measures accuracy. */
  readonly kind: 'experiment' | 'evaluation';
  readonly methods: readonly MethodName[];
  /** The paper's claim, with its citation (paper section or table). */
  readonly claim: string;
  /** The metric and threshold fixed before running, e.g. 'gap closed ≥ 50 % at fallback rate ≤ 10 %'. */
  readonly preregistered: string;
  /** Seeds a run uses by default: ≥ 3, so every metric has a mean ± std. */
  readonly defaultSeeds: number;
  config(mode: RunMode): Config;
  runSeed(config: Config, seed: number, ctx: RunContext): Promise<SeedResult> | SeedResult;
  summarize(config: Config, runs: readonly SeedRun<SeedResult>[]): Summary;
}

export interface SeedRun<SeedResult> {
  readonly seed: number;
  readonly result: SeedResult;
}

/** Any registered experiment, whatever its config and result types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyExperiment = Experiment<any, any>;

/** Type-checks an experiment module's export while keeping its precise types. */
export function defineExperiment<C, R>(experiment: Experiment<C, R>): Experiment<C, R> {
  return experiment;
}
