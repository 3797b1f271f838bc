/**
 * Every `sparq` command, in the order `sparq --help` lists them. Adding a command is one module under
 * `commands/` (named exports satisfying `Command`) and one entry here; the dispatcher needs no edit.
 */
import type { Command } from './command.js';
import * as doctor from './commands/doctor.js';
import * as attentionCommand from './commands/attention.js';
import * as evalCommand from './commands/eval.js';
import * as runCommand from './commands/run.js';
import * as reportCommand from './commands/report.js';
import * as benchCommand from './commands/bench.js';

export const COMMANDS: readonly Command[] = [
  reportCommand,
  doctor,
  evalCommand,
  runCommand,
  benchCommand,
  attentionCommand,
];

/** The command called `name`, if there is one. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
