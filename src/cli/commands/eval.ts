/**
 * `sparq eval <suite>`: an accuracy evaluation against the float64 oracle. `sage` is the SageAttention
 * evaluation (attention/sage/evaluate.ts) with its own tables — the presets on every input, then the
 * papers' findings with the numbers that decide them; every other suite is an evaluation of the
 * experiment registry (kind 'evaluation'), run by the experiment runner and printed as its findings and
 * metrics. `--json` prints one JSON document instead. Progress goes to stderr, so stdout holds only the
 * result.
 */
import {
  type EvalRow,
  type Finding,
  type SageEvaluation,
  type Stat,
  evaluateSage,
} from '../../attention/sage/evaluate.js';
import { type CliIo, type CommandArgs, EXIT, type OptionSpec, UsageError } from '../command.js';
import { resultsJson } from '../../io/json-results.js';
import { parseSeed } from '../parse-numbers.js';
import { EXPERIMENTS } from '../../experiments/registry.js';
import { runExperiment } from '../../experiments/runner.js';
import { createProgress } from '../progress.js';
import { formatRecord } from '../summary-text.js';

/** Registered evaluations besides sage, which has its own formatting below. */
const REGISTERED = () => EXPERIMENTS.filter((e) => e.kind === 'evaluation' && e.name !== 'sage');
const SUITES = () => ['sage', ...REGISTERED().map((e) => e.name)];

export const name = 'eval';
export const summary = `Measure accuracy against the float64 oracle (suites: ${SUITES().join(', ')})`;
export const usage = `Usage: sparq eval <suite> [--quick] [--seed N] [--json]

Suites: ${SUITES().join(', ')}.
${REGISTERED()
  .map((e) => `\n${e.name}: ${e.title}. ${e.claim}\n`)
  .join('')}
sage: measures every SageAttention preset (sage1, sage2, sage2++, sage3) against the float64 oracle on
Gaussian inputs and on inputs with the pathologies of real models (K channel bias, Q/K outlier
channels, V channel bias, a long sequence), then runs the papers' ablations and says whether each
finding holds here: K smoothing rescues INT4 QK; INT4 per-thread ≈ per-token ≫ per-block; E4M3 P ≫
INT8 P; two-level NVFP4 P ≫ direct; FP16 accumulation overflows without SA2++'s range limit and
matches FP32 with it; V smoothing helps V with a channel bias. Metrics: cosine similarity, relative
L1, RMSE. Runs on the CPU emulation of the kernels.

Options:
  --quick     The quick configuration. sage: one seed, N = 256 (long sequence 1024), about 10 s;
              default three seeds (mean ± std), N = 1024 (long sequence 4096), about 5 minutes. Other
              suites: their quick configuration (at most about 3 minutes on 2 CPU cores) with their
              default seeds (at least 3).
  --seed <N>  First seed, a non-negative integer (default 0).
  --json      Print one JSON document on stdout and nothing else. Non-finite numbers are written as
              the strings "Infinity", "-Infinity" and "NaN"; a null cosine means the output held ±inf.
  -h, --help  Show this help.

Progress lines go to stderr. Exit codes: 0 the evaluation ran (whether or not the findings hold),
2 usage error.`;

export const options: Record<string, OptionSpec> = {
  quick: { type: 'boolean', default: false },
  seed: { type: 'string', default: '0' },
  json: { type: 'boolean', default: false },
};

export const positionals = true;

const fmt = (x: number, digits: number, fixed: boolean): string =>
  Number.isFinite(x) ? (fixed ? x.toFixed(digits) : x.toPrecision(digits)) : Number.isNaN(x) ? 'NaN' : 'inf';

/** A metric's mean, with ± std when there are several seeds; cosine to 5 decimals, errors to 3 digits. */
function fmtStat(s: Stat | null, cosine: boolean): string {
  if (s === null) return 'undefined (inf output)';
  const mean = fmt(s.mean, cosine ? 5 : 3, cosine);
  return s.std === null ? mean : `${mean} ± ${fmt(s.std, cosine ? 5 : 2, cosine)}`;
}

const table = (header: string[], body: string[][]): string[] => [
  `| ${header.join(' | ')} |`,
  `|${header.map(() => '---').join('|')}|`,
  ...body.map((cells) => `| ${cells.join(' | ')} |`),
];

function presetTable(rows: EvalRow[]): string[] {
  return table(
    ['input', 'preset', 'cosine', 'relL1', 'RMSE'],
    rows.map((r) => [
      r.input,
      r.config,
      fmtStat(r.cosine, true),
      fmtStat(r.relL1, false),
      fmtStat(r.rmse, false),
    ]),
  );
}

/** One line per configuration; the claim, the measured ratios and the verdict on a finding's first line. */
function findingTable(findings: Finding[], rows: EvalRow[]): string[] {
  const body: string[][] = [];
  for (const f of findings) {
    const own = rows.filter((r) => r.family === f.family && r.input === f.input);
    own.forEach((r, i) => {
      const head = i === 0;
      body.push([
        head ? f.claim : '',
        head ? f.input : '',
        r.config,
        fmtStat(r.cosine, true),
        fmtStat(r.relL1, false),
        head ? f.measured : '',
        head ? (f.holds ? '**holds**' : '**does not hold**') : '',
      ]);
    });
  }
  return table(['finding', 'input', 'configuration', 'cosine', 'relL1', 'measured', 'verdict'], body);
}

/** Which rows, if any, produced NaN or ±inf (finite inputs must never produce NaN). */
function nonFiniteLines(rows: EvalRow[]): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const r of rows) {
    const key = `${r.input} ${r.config}`;
    if (r.nanCount + r.infCount === 0 || seen.has(key)) continue;
    seen.add(key);
    lines.push(`- ${r.input}, ${r.config}: ${r.nanCount} NaN, ${r.infCount} ±inf output elements`);
  }
  return lines.length === 0 ? ['No output held NaN or ±inf.'] : ['Non-finite outputs:', ...lines];
}

/** The markdown report: inputs, presets table, findings table with criteria and sources. */
export function formatEvaluation(e: SageEvaluation): string {
  const seeds = e.seeds.length === 1 ? `seed ${e.seeds[0]}` : `seeds ${e.seeds.join(', ')}, mean ± std`;
  const unique = [...new Map(e.findings.map((f) => [f.family, f])).values()];
  return [
    `## SageAttention accuracy vs the float64 oracle (${e.mode}: ${seeds}; ${e.backend} emulation)`,
    '',
    'Inputs (layout [B, H, N, D]):',
    ...e.inputs.map((i) => `- ${i.id} [${i.shape.join(', ')}]: ${i.description}`),
    '',
    '### Presets',
    '',
    ...presetTable(e.rows.filter((r) => r.family === 'preset')),
    '',
    '### Findings',
    '',
    ...findingTable(e.findings, e.rows),
    '',
    'Criteria (applied to the seed means) and what the papers report on real model activations:',
    ...unique.map((f) => `- ${f.claim}: ${f.criterion}. Paper: ${f.paper}.`),
    '',
    ...nonFiniteLines(e.rows),
  ].join('\n');
}

/** Runs the suite; progress on stderr, the report or the JSON on stdout. */
export async function run(args: CommandArgs, io: CliIo): Promise<number> {
  const [suite, ...extra] = args.positionals;
  if (suite === undefined || !SUITES().includes(suite) || extra.length > 0) {
    const got = args.positionals.length === 0 ? 'none' : `'${args.positionals.join(' ')}'`;
    throw new UsageError(`eval takes one suite, one of ${SUITES().join(', ')}; got ${got}`);
  }
  const seed = parseSeed(args.values.seed as string);
  const registered = REGISTERED().find((e) => e.name === suite);
  if (registered) {
    const progress = createProgress(io, `sparq eval ${suite}:`);
    const record = await runExperiment(registered, {
      mode: args.values.quick === true ? 'quick' : 'full',
      seed,
      onProgress: (fraction, label) => progress.update(fraction, label),
    });
    progress.done();
    io.stdout(args.values.json ? resultsJson(record) : formatRecord(record));
    return EXIT.ok;
  }
  const evaluation = evaluateSage({
    quick: args.values.quick === true,
    seed,
    onProgress: (message) => io.stderr(`sparq eval ${suite}: ${message}\n`),
  });
  io.stdout(args.values.json ? resultsJson(evaluation) : formatEvaluation(evaluation) + '\n');
  return EXIT.ok;
}
