/**
 * Progress of long work on stderr: on a terminal, one live line (`\r`-rewritten bar, percentage, label);
 * elsewhere (CI logs, pipes) a plain line whenever the label changes, at most one per `minInterval`
 * milliseconds unless the label is new, so logs stay readable. stdout is never touched, so `--json`
 * output stays clean.
 */
import type { CliIo } from './command.js';

export interface Progress {
  /** `fraction` in [0, 1] of the whole job, and what is being done now. */
  update(fraction: number, label: string): void;
  /** Ends the live line (a newline on a terminal); later updates start a new one. */
  done(message?: string): void;
}

const BAR_WIDTH = 24;

export function createProgress(
  io: CliIo,
  prefix: string,
  opts: { minInterval?: number; now?: () => number } = {},
): Progress {
  const tty = io.stderrIsTTY === true;
  const now = opts.now ?? (() => Date.now());
  const minInterval = opts.minInterval ?? 2000;
  let lastLabel = '';
  let lastTime = -Infinity;
  let live = false;
  return {
    update(fraction, label) {
      const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      const pct = `${(f * 100).toFixed(0).padStart(3)}%`;
      if (tty) {
        const filled = Math.round(f * BAR_WIDTH);
        const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
        const columns = process.stderr.columns ?? 100;
        const line = `${prefix} ${bar} ${pct} ${label}`;
        io.stderr(
          `\r${line.length > columns - 1 ? line.slice(0, columns - 2) + '…' : line.padEnd(columns - 1)}`,
        );
        live = true;
        return;
      }
      const t = now();
      const head = label.split(':')[0];
      if (head === lastLabel.split(':')[0] && t - lastTime < minInterval) return;
      lastLabel = label;
      lastTime = t;
      io.stderr(`${prefix} ${pct} ${label}\n`);
    },
    done(message) {
      if (live) io.stderr('\n');
      live = false;
      if (message) io.stderr(`${prefix} ${message}\n`);
    },
  };
}
