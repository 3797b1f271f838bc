/**
 * `sparq report`, the main job: runs the quick configuration of every registered experiment and
 * evaluation on the best backend present (the CPU when there is no hardware GPU) and writes
 * `report/index.html` — the table of the ten methods with the accuracy and speed this run measured,
 * every experiment's findings and plots, the machine and backend — plus each record's JSON and SVG
 * plots under `report/results/`.
 *
 * Experiments run in `--jobs` child processes (`sparq run <name> --json` of this same installation),
 * two by default on a machine with two cores, so the report's wall time is about half the sum of the
 * quick runs; `--jobs 1` runs them one after another in this process. One experiment failing does not
 * stop the others: the page shows its error and the exit code is 1.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnyExperiment, RunMode } from '../../experiments/experiment.js';
import { EXPERIMENTS } from '../../experiments/registry.js';
import { type ExperimentRecord, runExperiment } from '../../experiments/runner.js';
import { parseResultsJson, resultsJson } from '../../io/json-results.js';
import { type FailedRun, type RenderedPlot, reportHtml } from '../../report/html.js';
import { loadRecordedBenchmarks } from '../../report/recorded-benchmarks.js';
import { writeAtomic, writeRecord } from '../../report/write-record.js';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../backend.js';
import { type CliIo, type CommandArgs, EXIT, type OptionSpec, UsageError } from '../command.js';
import { parseCount, parseSeed } from '../parse-numbers.js';
import { createProgress } from '../progress.js';
import { sparqVersion } from '../version.js';

export const name = 'report';
export const summary = 'The main job: run every experiment (quick) and write report/index.html';
export const usage = `Usage: sparq report [--out DIR] [--full] [--only a,b,...] [--seed N] [--seeds K] [--jobs K]
                    [--backend cpu|webgpu|auto] [--json]

Runs the quick configuration of every registered experiment and evaluation (${EXPERIMENTS.length} now: see
'sparq run --list') and writes DIR/index.html: the table of the ten methods with the accuracy and
speed measured in this run, each experiment's claim, pre-registered test, verdicts, metrics (mean ±
std over its seeds) and plots, the machine and backend it ran on, and the GPU benchmarks recorded in
the repository. Each record's JSON and SVG plots go to DIR/results/. About 10 minutes on 2 CPU cores.

Options:
  --out <dir>       Output directory (default report).
  --full            Run the full configurations instead (the README's numbers; much longer).
  --only <names>    Comma-separated experiment names to run instead of all.
  --seed <N>        First seed of every experiment (default 0).
  --seeds <K>       Seeds per experiment (default: each experiment's own, at least 3).
  --jobs <K>        Experiments run at once, each in its own process (default: min(2, cores)).
  --backend <name>  cpu, webgpu or auto (default auto: WebGPU only for a hardware adapter).
  --json            Print a JSON summary (page, records, verdicts, failures) on stdout and nothing else.
  -h, --help        Show this help.

Exit codes: 0 every experiment ran, 1 some failed (the page says which and why), 2 usage error.`;

export const options: Record<string, OptionSpec> = {
  out: { type: 'string', default: 'report' },
  full: { type: 'boolean', default: false },
  only: { type: 'string' },
  seed: { type: 'string', default: '0' },
  seeds: { type: 'string' },
  jobs: { type: 'string' },
  backend: { type: 'string', default: 'auto', choices: BACKEND_CHOICES },
  json: { type: 'boolean', default: false },
};

/** This installation's CLI entry: the TypeScript sources under tsx, or the built bin. */
function cliEntry(): string[] {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? ['--import', 'tsx', fileURLToPath(new URL('../bin-dev.ts', import.meta.url))]
    : [fileURLToPath(new URL('../../../bin/sparq.js', import.meta.url))];
}

/** The repository's recorded benchmarks, when sparq runs from a clone (bench/ is not published). */
const BENCH_RESULTS = fileURLToPath(new URL('../../../bench/results', import.meta.url));

interface Outcome {
  readonly record?: ExperimentRecord;
  readonly plots?: readonly RenderedPlot[];
  readonly failure?: FailedRun;
}

interface JobContext {
  readonly mode: RunMode;
  readonly seed: number;
  readonly seeds: number | undefined;
  readonly backend: 'cpu' | 'webgpu';
  readonly outDir: string;
  readonly resultsDir: string;
  onProgress(name: string, fraction: number, label: string): void;
}

const failure = (e: AnyExperiment, error: string): Outcome => ({
  failure: { name: e.name, title: e.title, methods: e.methods, error },
});

async function runInProcess(e: AnyExperiment, ctx: JobContext): Promise<Outcome> {
  try {
    const record = await runExperiment(e, {
      mode: ctx.mode,
      seed: ctx.seed,
      seeds: ctx.seeds,
      backend: ctx.backend,
      onProgress: (f, label) => ctx.onProgress(e.name, f, label),
    });
    const { plots } = await writeRecord(record, ctx.resultsDir, ctx.resultsDir, ctx.outDir);
    return { record, plots };
  } catch (err) {
    return failure(e, (err as Error).stack ?? String(err));
  }
}

/** Runs `sparq run <name> --json` in a child process and reads back the record and plots it wrote. */
function runInChild(e: AnyExperiment, ctx: JobContext): Promise<Outcome> {
  const args = [
    ...cliEntry(),
    'run',
    e.name,
    ...(ctx.mode === 'quick' ? ['--quick'] : []),
    '--seed',
    String(ctx.seed),
    ...(ctx.seeds === undefined ? [] : ['--seeds', String(ctx.seeds)]),
    '--backend',
    ctx.backend,
    '--out',
    ctx.resultsDir,
    '--json',
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderrTail = (stderrTail + d).slice(-4000);
      for (const line of d.split('\n')) {
        const m = /^sparq run \S+: +(\d+)% (.*)$/.exec(line);
        if (m) ctx.onProgress(e.name, Number(m[1]) / 100, m[2]);
      }
    });
    child.on('error', (err) => resolve(failure(e, err.message)));
    child.on('close', (code) => {
      if (code !== 0) {
        resolve(failure(e, `sparq run ${e.name} exited with code ${code}: ${stderrTail.trim()}`));
        return;
      }
      try {
        const record = parseResultsJson(stdout) as ExperimentRecord;
        const suffix = record.mode === 'quick' ? '.quick' : '';
        const plots = record.summary.plots.map((p): RenderedPlot => {
          const file = join(ctx.resultsDir, `${record.name}-${p.id}${suffix}.svg`);
          return {
            id: p.id,
            caption: p.caption,
            svg: readFileSync(file, 'utf8'),
            file: relative(ctx.outDir, file),
          };
        });
        resolve({ record, plots });
      } catch (err) {
        resolve(failure(e, `could not read the results of sparq run ${e.name}: ${(err as Error).message}`));
      }
    });
  });
}

/** Runs `jobs` experiments at a time, keeping the registry's order in the result. */
async function runAll(
  experiments: readonly AnyExperiment[],
  jobs: number,
  one: (e: AnyExperiment) => Promise<Outcome>,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(experiments.length);
  let next = 0;
  const worker = async () => {
    while (next < experiments.length) {
      const i = next++;
      outcomes[i] = await one(experiments[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, experiments.length) }, worker));
  return outcomes;
}

function selectExperiments(only: string | undefined): AnyExperiment[] {
  if (only === undefined) return [...EXPERIMENTS];
  const names = only
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new UsageError('--only needs at least one experiment name');
  return names.map((n) => {
    const e = EXPERIMENTS.find((x) => x.name === n);
    if (!e)
      throw new UsageError(
        `--only: no experiment '${n}'; experiments: ${EXPERIMENTS.map((x) => x.name).join(', ')}`,
      );
    return e;
  });
}

export async function run(args: CommandArgs, io: CliIo): Promise<number> {
  const { values } = args;
  const experiments = selectExperiments(values.only as string | undefined);
  const seed = parseSeed(values.seed as string);
  const seeds = values.seeds === undefined ? undefined : parseCount(values.seeds as string, '--seeds');
  const jobs =
    values.jobs === undefined
      ? Math.max(1, Math.min(2, os.availableParallelism()))
      : parseCount(values.jobs as string, '--jobs');
  const mode: RunMode = values.full === true ? 'full' : 'quick';
  const outDir = values.out as string;
  const resultsDir = join(outDir, 'results');
  mkdirSync(resultsDir, { recursive: true });

  const selection = await selectBackend(values.backend as BackendChoice);
  io.stderr(
    `sparq report: ${experiments.length} experiments, ${mode} mode, ${jobs} at a time; backend ${selection.backend} (${selection.reason})\n`,
  );

  const progress = createProgress(io, 'sparq report:');
  const fractions = new Map<string, number>();
  const labels = new Map<string, string>();
  const show = () => {
    const total = [...fractions.values()].reduce((a, b) => a + b, 0) / experiments.length;
    const running = [...labels.entries()].map(([n, l]) => `${n} (${l})`).join(', ');
    progress.update(total, running || 'writing the page');
  };
  const ctx: JobContext = {
    mode,
    seed,
    seeds,
    backend: selection.backend,
    outDir,
    resultsDir,
    onProgress(name, fraction, label) {
      fractions.set(name, fraction);
      labels.set(name, `${Math.round(fraction * 100)}% ${label}`);
      show();
    },
  };
  const outcomes = await runAll(experiments, jobs, async (e) => {
    ctx.onProgress(e.name, 0, 'starting');
    const outcome = jobs === 1 ? await runInProcess(e, ctx) : await runInChild(e, ctx);
    fractions.set(e.name, 1);
    labels.delete(e.name);
    show();
    return outcome;
  });
  progress.done();

  const records = outcomes.filter((o) => o.record).map((o) => ({ record: o.record!, plots: o.plots ?? [] }));
  const failures = outcomes.filter((o) => o.failure).map((o) => o.failure!);
  const html = reportHtml({
    environment: {
      sparqVersion: sparqVersion(),
      generatedAt: new Date().toISOString(),
      mode,
      backend: selection.backend,
      adapter: selection.adapter,
      cpuModel: os.cpus()[0]?.model.trim() || 'unknown CPU',
      cores: os.availableParallelism(),
      memoryGiB: os.totalmem() / 2 ** 30,
      platform: `${process.platform} ${process.arch}`,
      node: process.version,
    },
    records,
    failures,
    benchmarks: existsSync(BENCH_RESULTS) ? loadRecordedBenchmarks(BENCH_RESULTS) : [],
  });
  const page = join(outDir, 'index.html');
  writeAtomic(page, html);
  for (const f of failures) io.stderr(`sparq report: ${f.name} failed: ${f.error.split('\n')[0]}\n`);
  if (values.json === true) {
    io.stdout(
      resultsJson({
        page,
        mode,
        backend: selection.backend,
        records: records.map(({ record }) => ({
          name: record.name,
          file: join(resultsDir, `${record.name}${record.mode === 'quick' ? '.quick' : ''}.json`),
          seconds: record.timing.totalSeconds,
          findings: record.summary.findings,
        })),
        failures,
      }),
    );
  } else {
    io.stdout(
      `Wrote ${page} (${records.length} experiments${failures.length ? `, ${failures.length} failed` : ''}).\n`,
    );
  }
  return failures.length === 0 ? EXIT.ok : EXIT.failure;
}
