/**
 * Option checks shared by the quantizers: an options argument must be a plain object, and a key the
 * function does not know is an error, so a typo such as `smoothk` cannot silently do nothing (the
 * same rule as the attention options, attention/options.ts).
 */
import { UnsupportedOptionError } from '../core/errors.js';

/** Throws an UnsupportedOptionError unless `opts` is undefined or an object whose keys are all in `known`. */
export function assertOptionKeys(opts: unknown, known: readonly string[], what: string): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new UnsupportedOptionError(`${what} options must be an object; got ${JSON.stringify(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) {
      throw new UnsupportedOptionError(
        `unknown ${what} option '${key}'; ${what} accepts ${known.map((n) => `'${n}'`).join(', ')}`,
      );
    }
  }
}

/** `value` if it is a boolean, `fallback` if undefined; an UnsupportedOptionError otherwise. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new UnsupportedOptionError(`${name} must be true or false; got ${JSON.stringify(value)}`);
  }
  return value;
}
