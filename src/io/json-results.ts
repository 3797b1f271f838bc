/**
 * Results as JSON. JSON has no Infinity or NaN, and JSON.stringify would silently write them as null;
 * sparq writes the strings "Infinity", "-Infinity" and "NaN" instead, so an overflow in a result stays
 * visible in the file. Imports nothing.
 */

/** A JSON.stringify replacer that writes non-finite numbers as strings. */
export function nonFiniteAsString(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/** Pretty-printed JSON of a result, newline-terminated, with non-finite numbers as strings. */
export function resultsJson(value: unknown): string {
  return JSON.stringify(value, nonFiniteAsString, 2) + '\n';
}

const NON_FINITE: Readonly<Record<string, number>> = { Infinity: Infinity, '-Infinity': -Infinity, NaN: NaN };

/** Parses what `resultsJson` wrote, turning the strings "Infinity", "-Infinity" and "NaN" back into numbers. */
export function parseResultsJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) =>
    typeof value === 'string' && value in NON_FINITE ? NON_FINITE[value] : value,
  );
}
