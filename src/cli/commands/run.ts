/**
 * `sparq run <experiment>`: runs one registered experiment or evaluation (src/experiments/registry.ts)
 * for its seeds, writes the record as JSON and its plots as SVG under `results/` (atomically), and
 * prints the findings and metrics — or, with `--json`, the record and nothing else on stdout.
 */
import { join } from 'node:path';
import { EXPERIMENTS, findExperiment } from '../../experiments/registry.js';
import { runExperiment } from '../../experiments/runner.js';
import { resultsJson } from '../../io/json-results.js';
import { writeRecord } from '../../report/write-record.js';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../backend.js';
import { type CliIo, type CommandArgs, EXIT, type OptionSpec, UsageError } from '../command.js';
import { parseCount, parseSeed } from '../parse-numbers.js';
import { createProgress } from '../progress.js';
import { formatRecord } from '../summary-text.js';

export const name = 'run';
export const summary = 'Run a registered experiment or evaluation; write JSON and plots under results/';

export function usageText(): string {
  const width = Math.max(...EXPERIMENTS.map((e) => e.name.length));
  const list = EXPERIMENTS.map((e) => `  ${e.name.padEnd(width)}  ${e.title} (${e.kind})`).join('\n');
  return `Usage: sparq run <experiment> [--quick] [--seed N] [--seeds K] [--backend cpu|webgpu|auto]
                 [--out DIR] [--json]
       sparq run --list

Runs one experiment (a reproduced paper claim) or evaluation for K seeds (default: the experiment's,
at least 3), each a pure function of its config and seed, then aggregates every metric as mean ± std
and judges the claim by the threshold registered before the run.

Experiments:
${list || '  (none registered)'}

Options:
  --quick           The quick configuration (at most about 3 minutes on 2 CPU cores); default: full.
  --seed <N>        First seed, a non-negative integer (default 0); seeds are N, N+1, ….
  --seeds <K>       Number of seeds (default: the experiment's).
  --backend <name>  cpu, webgpu or auto (default auto: WebGPU only for a hardware adapter).
  --out <dir>       Where to write <name>[.quick].json and <name>-<plot>[.quick].svg (default results).
  --json            Print the record as one JSON document on stdout and nothing else (files are still
                    written). Non-finite numbers are written as the strings "Infinity", "-Infinity", "NaN".
  --list            List the experiments, one per line: name, kind, methods, title.
  -h, --help        Show this help.

Progress goes to stderr (a live bar on a terminal). Exit codes: 0 the run finished (whatever the
verdicts), 1 it failed, 2 usage error.`;
}

export const usage = usageText();

export const options: Record<string, OptionSpec> = {
  quick: { type: 'boolean', default: false },
  seed: { type: 'string', default: '0' },
  seeds: { type: 'string' },
  backend: { type: 'string', default: 'auto', choices: BACKEND_CHOICES },
  out: { type: 'string', default: 'results' },
  json: { type: 'boolean', default: false },
  list: { type: 'boolean', default: false },
};

export const positionals = true;

export async function run(args: CommandArgs, io: CliIo): Promise<number> {
  const { values } = args;
  if (values.list === true) {
    if (args.positionals.length > 0) throw new UsageError('--list takes no experiment name');
    for (const e of EXPERIMENTS) io.stdout(`${e.name}\t${e.kind}\t${e.methods.join(', ')}\t${e.title}\n`);
    return EXIT.ok;
  }
  const names = EXPERIMENTS.map((e) => e.name).join(', ');
  if (args.positionals.length !== 1) {
    const got = args.positionals.length === 0 ? 'none' : `'${args.positionals.join(' ')}'`;
    throw new UsageError(`run takes one experiment, one of ${names}; got ${got}`);
  }
  const experiment = findExperiment(args.positionals[0]);
  if (!experiment) throw new UsageError(`no experiment '${args.positionals[0]}'; experiments: ${names}`);
  const seed = parseSeed(values.seed as string);
  const seeds = values.seeds === undefined ? undefined : parseCount(values.seeds as string, '--seeds');
  const selection = await selectBackend(values.backend as BackendChoice);
  io.stderr(`sparq run ${experiment.name}: backend ${selection.backend} (${selection.reason})\n`);
  const progress = createProgress(io, `sparq run ${experiment.name}:`);
  const record = await runExperiment(experiment, {
    mode: values.quick === true ? 'quick' : 'full',
    seed,
    seeds,
    backend: selection.backend,
    onProgress: (fraction, label) => progress.update(fraction, label),
  });
  progress.done();
  const written = await writeRecord(record, values.out as string);
  io.stdout(
    values.json === true
      ? resultsJson(record)
      : formatRecord(record, {
          json: written.json,
          plots: written.plots.map((p) => join(values.out as string, p.file)),
        }),
  );
  return EXIT.ok;
}
