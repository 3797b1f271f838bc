/**
 * sparq's version, read from package.json next to the code: `../../package.json` from both
 * `src/cli/` (tsx) and `dist/cli/` (the built bin), so it never drifts from what npm published.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The `version` field of sparq's package.json. */
export function sparqVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return cached;
}
