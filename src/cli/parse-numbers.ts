/**
 * Numeric command-line values. Digits only, so '1e3', '-1', '0x10' and '1.5' are usage errors rather
 * than surprises.
 */
import { UsageError } from './command.js';

/** `--seed`: a non-negative safe integer. */
export function parseSeed(text: string): number {
  const seed = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(seed)) {
    throw new UsageError(`--seed must be a non-negative integer; got '${text}'`);
  }
  return seed;
}

/** A positive count such as `--seeds` or `--jobs`. */
export function parseCount(text: string, option: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${option} must be a positive integer; got '${text}'`);
  }
  return n;
}
