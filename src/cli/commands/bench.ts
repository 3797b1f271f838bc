/**
 * `sparq bench <area>`: runs the benchmark modules of a clone of the repository (bench/, which is not
 * part of the published package) through their runner, `node --import tsx bench/run.ts`, the same
 * thing `npm run bench` does. Benchmarks measure speed; they are never part of `npm test`, and
 * BENCHMARKS.md records what they printed with the machine, the tier and the same-run peer.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CliIo, type CommandArgs, EXIT, type OptionSpec, UsageError } from '../command.js';

const AREAS = ['numerics', 'attention', 'sage', 'sparse'] as const;

export const name = 'bench';
export const summary = 'Run speed benchmarks (from a clone of the repository; same as npm run bench)';
export const usage = `Usage: sparq bench [area ...] [--quick] [--filter TEXT] [--out FILE] [--json]

Runs the benchmark modules of the named areas (default: all): ${AREAS.join(', ')}. GPU areas need a
WebGPU adapter (NVIDIA tensor cores through Dawn: see the README). The markdown table of results goes to
stdout and the rows to FILE as JSON (default results/bench-<areas>.json); with --json, stdout holds
only the JSON document.

Options:
  --quick          Fewer shapes and repetitions (a smoke run).
  --filter <text>  Only cases whose name contains TEXT.
  --out <file>     Where to write the JSON rows.
  --json           Print the JSON rows on stdout instead of the table.
  -h, --help       Show this help.

Benchmarks live in bench/ of the repository: clone it, run 'npm install', then 'npx sparq bench'.
Exit codes: 0 done, 1 the benchmarks failed or bench/ is not here, 2 usage error.`;

export const options: Record<string, OptionSpec> = {
  quick: { type: 'boolean', default: false },
  filter: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean', default: false },
};

export const positionals = true;

const RUNNER = fileURLToPath(new URL('../../../bench/run.ts', import.meta.url));

export async function run(args: CommandArgs, io: CliIo): Promise<number> {
  for (const a of args.positionals) {
    if (!(AREAS as readonly string[]).includes(a)) {
      throw new UsageError(`no benchmark area '${a}'; areas: ${AREAS.join(', ')}`);
    }
  }
  if (!existsSync(RUNNER)) {
    io.stderr(
      'sparq bench: the benchmarks are not part of the installed package; run them from a clone of the ' +
        "repository ('npm install', then 'npx sparq bench' or 'npm run bench').\n",
    );
    return EXIT.failure;
  }
  const { values } = args;
  const argv = [
    ...args.positionals,
    ...(values.quick === true ? ['--quick'] : []),
    ...(typeof values.filter === 'string' ? ['--filter', values.filter] : []),
    ...(typeof values.out === 'string' ? ['--out', values.out] : []),
    ...(values.json === true ? ['--json'] : []),
  ];
  const r = spawnSync(process.execPath, ['--import', 'tsx', RUNNER, ...argv], {
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.stdout) io.stdout(r.stdout);
  if (r.stderr) io.stderr(r.stderr);
  if (r.error) {
    io.stderr(`sparq bench: ${r.error.message}\n`);
    return EXIT.failure;
  }
  return r.status === 0 ? EXIT.ok : EXIT.failure;
}
