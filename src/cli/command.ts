/**
 * The contract between the `sparq` dispatcher and its commands. A command is a module under
 * `src/cli/commands/` whose named exports satisfy `Command`; the dispatcher parses its options with
 * `node:util` parseArgs, answers `--help` from its `usage`, and turns every usage error into exit code 2,
 * so a command only sees options that are known and valid.
 */

/** Exit codes shared by every command. */
export const EXIT = Object.freeze({
  /** The command did what was asked. */
  ok: 0,
  /** The command ran but what was asked for is not possible here (e.g. a backend that is missing). */
  failure: 1,
  /** The command line was wrong: unknown command, unknown option, bad option value. */
  usage: 2,
});

/** One option of a command: what parseArgs needs, plus the values a string option accepts. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly default?: string | boolean;
  /** The values a string option accepts; anything else is a usage error. */
  readonly choices?: readonly string[];
}

/** A command's parsed command line; option values are already checked against their `choices`. */
export interface CommandArgs {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

/** Where a command writes. Commands never touch `process.stdout` themselves, so they run in-process too. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal: long work then shows a live progress bar instead of plain lines. */
  readonly stderrIsTTY?: boolean;
}

/** What a command module exports. */
export interface Command {
  /** The word after `sparq`. */
  readonly name: string;
  /** One line for `sparq --help`. */
  readonly summary: string;
  /** The full text `sparq <name> --help` prints. */
  readonly usage: string;
  /** Options besides `--help`, which every command has. */
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Whether the command takes positional arguments. */
  readonly positionals?: boolean;
  /** Runs the command; resolves to the process exit code. May throw `UsageError` (exit 2). */
  run(args: CommandArgs, io: CliIo): Promise<number>;
}

/** A command line that parses but makes no sense; the dispatcher prints it and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
