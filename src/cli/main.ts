/**
 * The `sparq` command line: `sparq <command> [options]`. Global options are `--help` and `--version`;
 * `sparq help [command]` is the same as `--help`. Commands come from the registry; this file parses
 * their options (`node:util` parseArgs), checks `choices`, answers `--help`, and maps errors to exit
 * codes: usage errors 2, failures 1. `bin/sparq.js` calls `main` with `process.argv.slice(2)`.
 */
import { parseArgs } from 'node:util';
import { SparqError } from '../core/errors.js';
import { type CliIo, type Command, type CommandArgs, EXIT, UsageError } from './command.js';
import { COMMANDS, findCommand } from './registry.js';
import { sparqVersion } from './version.js';

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTTY: process.stderr.isTTY === true,
};

/** The text `sparq --help` prints. */
export function mainUsage(): string {
  const rows: [string, string][] = [
    ...COMMANDS.map((c): [string, string] => [c.name, c.summary]),
    ['help', "Show this help, or a command's with `sparq help <command>`"],
  ];
  const width = Math.max(...rows.map(([n]) => n.length));
  return `sparq ${sparqVersion()}: quantized and sparse attention, low-bit and generative training on WebGPU and CPU

Usage: sparq <command> [options]

Commands:
${rows.map(([n, s]) => `  ${n.padEnd(width)}  ${s}`).join('\n')}

Options:
  -h, --help     Show this help.
  -V, --version  Print the version.

Run 'sparq <command> --help' for a command's options.
`;
}

/** Parses a command's arguments; throws UsageError (or parseArgs' TypeError) on a bad command line. */
function parseCommandArgs(command: Command, argv: string[]): CommandArgs & { help: boolean } {
  const parsed = parseArgs({
    args: argv,
    options: { ...command.options, help: { type: 'boolean', short: 'h' } },
    allowPositionals: command.positionals ?? false,
    strict: true,
  });
  // No option is declared `multiple`, so every value is a string or a boolean.
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [key, spec] of Object.entries(command.options)) {
    const value = values[key];
    if (spec.choices && typeof value === 'string' && !spec.choices.includes(value)) {
      throw new UsageError(`--${key} must be one of ${spec.choices.join(', ')}; got '${value}'`);
    }
  }
  const { help, ...rest } = values;
  return { values: rest, positionals: parsed.positionals, help: help === true };
}

/** parseArgs reports a bad command line as a TypeError with an ERR_PARSE_ARGS_* code. */
const isParseArgsError = (e: unknown): e is Error =>
  e instanceof Error && String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_');

/** Usage errors: what was wrong on stderr, and where to read the usage. */
function usageError(io: CliIo, prefix: string, message: string): number {
  io.stderr(`${prefix}: ${message}\nRun '${prefix} --help' for usage.\n`);
  return EXIT.usage;
}

async function runCommand(command: Command, argv: string[], io: CliIo): Promise<number> {
  const prefix = `sparq ${command.name}`;
  try {
    const args = parseCommandArgs(command, argv);
    if (args.help) {
      io.stdout(command.usage + '\n');
      return EXIT.ok;
    }
    return await command.run(args, io);
  } catch (e) {
    if (e instanceof UsageError || isParseArgsError(e)) return usageError(io, prefix, e.message);
    // A SparqError's message already says what to do; anything else is a bug, so keep its stack.
    io.stderr(`${prefix}: ${e instanceof SparqError ? e.message : ((e as Error).stack ?? String(e))}\n`);
    return EXIT.failure;
  }
}

/** Runs `sparq` with the arguments after the program name; resolves to the process exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr(mainUsage());
    return EXIT.usage;
  }
  if (first === 'help') {
    if (rest.length === 0) return main(['--help'], io);
    const command = rest.length === 1 ? findCommand(rest[0]) : undefined;
    if (!command) return usageError(io, 'sparq', `no command '${rest.join(' ')}' to show help for`);
    io.stdout(command.usage + '\n');
    return EXIT.ok;
  }
  if (first.startsWith('-')) {
    try {
      const { values } = parseArgs({
        args: argv,
        options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } },
        strict: true,
      });
      io.stdout(values.version ? sparqVersion() + '\n' : mainUsage());
      return EXIT.ok;
    } catch (e) {
      if (isParseArgsError(e)) return usageError(io, 'sparq', e.message);
      throw e;
    }
  }
  const command = findCommand(first);
  if (!command) {
    const known = COMMANDS.map((c) => c.name).join(', ');
    return usageError(io, 'sparq', `unknown command '${first}' (commands: ${known}, help)`);
  }
  return runCommand(command, rest, io);
}
