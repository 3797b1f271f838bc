/** How error messages name a value of the wrong kind: its constructor, `null`/`undefined`, or its type. */
export function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  return typeof x === 'object' ? (x.constructor?.name ?? 'an object') : typeof x;
}
