/**
 * Runs a registered experiment: its config for the mode, `runSeed` for each seed in order, then
 * `summarize`. The record it returns is what `sparq run` writes as JSON and what `sparq report` renders;
 * everything in it but `timing` and `environment` is a function of (experiment, mode, config, seeds),
 * so a record can be checked for reproducibility by running it again.
 */
import type { AnyExperiment, RunMode, SeedRun, Summary } from './experiment.js';

export interface RunOptions {
  readonly mode: RunMode;
  /** First seed (default 0); seeds are first, first + 1, …. */
  readonly seed?: number;
  /** How many seeds (default: the experiment's `defaultSeeds`). */
  readonly seeds?: number;
  readonly backend?: 'cpu' | 'webgpu';
  /** Replaces fields of the mode's config (tests use it for small sizes). */
  readonly configOverride?: Readonly<Record<string, unknown>>;
  /** Progress over the whole run: `fraction` in [0, 1] and a one-line label. */
  readonly onProgress?: (fraction: number, label: string) => void;
  /** Wall-clock source (ms); injectable so tests are deterministic. */
  readonly now?: () => number;
}

export interface ExperimentRecord {
  readonly name: string;
  readonly title: string;
  readonly kind: 'experiment' | 'evaluation';
  readonly methods: readonly string[];
  readonly claim: string;
  readonly preregistered: string;
  readonly mode: RunMode;
  readonly backend: 'cpu' | 'webgpu';
  readonly seeds: readonly number[];
  readonly config: unknown;
  readonly runs: readonly SeedRun<unknown>[];
  readonly summary: Summary;
  /** Not reproducible: wall-clock seconds per seed and in all. */
  readonly timing: { readonly perSeedSeconds: readonly number[]; readonly totalSeconds: number };
}

export async function runExperiment(experiment: AnyExperiment, opts: RunOptions): Promise<ExperimentRecord> {
  const first = opts.seed ?? 0;
  const count = opts.seeds ?? experiment.defaultSeeds;
  if (!Number.isSafeInteger(first) || first < 0) {
    throw new RangeError(`seed must be a non-negative safe integer; got ${String(opts.seed)}`);
  }
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`seeds must be a positive integer; got ${String(opts.seeds)}`);
  }
  const base = experiment.config(opts.mode) as Record<string, unknown>;
  if (opts.configOverride) {
    for (const key of Object.keys(opts.configOverride)) {
      if (!(key in base)) {
        throw new RangeError(
          `${experiment.name} has no config field '${key}'; its fields are ${Object.keys(base).join(', ')}`,
        );
      }
    }
  }
  const config = opts.configOverride ? { ...base, ...opts.configOverride } : base;
  const backend = opts.backend ?? 'cpu';
  const now = opts.now ?? (() => performance.now());
  const seeds = Array.from({ length: count }, (_, i) => first + i);
  const runs: SeedRun<unknown>[] = [];
  const perSeedSeconds: number[] = [];
  const start = now();
  for (const [i, seed] of seeds.entries()) {
    const t0 = now();
    const ctx = {
      mode: opts.mode,
      backend,
      progress(done: number, total: number, label?: string) {
        const within = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
        opts.onProgress?.((i + within) / count, `seed ${seed}${label ? `: ${label}` : ''}`);
      },
    };
    opts.onProgress?.(i / count, `seed ${seed}`);
    const result: unknown = await experiment.runSeed(config, seed, ctx);
    runs.push({ seed, result });
    perSeedSeconds.push((now() - t0) / 1000);
  }
  const summary = experiment.summarize(config, runs);
  opts.onProgress?.(1, 'done');
  return {
    name: experiment.name,
    title: experiment.title,
    kind: experiment.kind,
    methods: experiment.methods,
    claim: experiment.claim,
    preregistered: experiment.preregistered,
    mode: opts.mode,
    backend,
    seeds,
    config,
    runs,
    summary,
    timing: { perSeedSeconds, totalSeconds: (now() - start) / 1000 },
  };
}

/**
 * The record as JSON without its non-reproducible parts (every key named `timing`, the record's own and
 * any a seed result carries): two runs with the same inputs give equal values.
 */
export function reproducibleRecord(record: ExperimentRecord): Omit<ExperimentRecord, 'timing'> {
  const strip = (key: string, value: unknown): unknown => (key === 'timing' ? undefined : value);
  return JSON.parse(JSON.stringify(record, strip)) as Omit<ExperimentRecord, 'timing'>;
}
