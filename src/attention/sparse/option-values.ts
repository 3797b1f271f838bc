/**
 * Checks of single option values that the SVG and SVG2 resolvers share (svg-plan.ts, svg2-plan.ts):
 * an absent value takes the reference implementation's default, a present one must have the right
 * type and range or is an UnsupportedOptionError naming the option, the rule and the value given.
 */
import { UnsupportedOptionError } from '../../core/errors.js';

/** An integer option ≥ `min`, or `fallback` when absent. */
export function intOption(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new UnsupportedOptionError(`${name} must be an integer ≥ ${min}; got ${String(value)}`);
  }
  return value as number;
}

/** A boolean option, or `fallback` when absent. */
export function boolOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new UnsupportedOptionError(`${name} must be true or false; got ${JSON.stringify(value)}`);
  return value;
}
