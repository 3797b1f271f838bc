/**
 * The GPU benchmark results stored in the repository (bench/results/*.json, written by
 * `npm run bench -- ... --out`), for the report's "recorded benchmarks" section. Files that do not
 * have the bench runner's shape are skipped, not fatal: the report must render whatever is there.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordedBenchmark } from './html.js';

function isBenchFile(x: unknown): x is Omit<RecordedBenchmark, 'file'> {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return (
    typeof o.command === 'string' &&
    typeof o.date === 'string' &&
    Array.isArray(o.rows) &&
    o.rows.every(
      (r: unknown) =>
        typeof r === 'object' &&
        r !== null &&
        typeof (r as Record<string, unknown>).name === 'string' &&
        typeof (r as Record<string, unknown>).value === 'number',
    )
  );
}

/** Every well-formed results file under `dir`, newest date first, then by name. */
export function loadRecordedBenchmarks(dir: string): RecordedBenchmark[] {
  if (!existsSync(dir)) return [];
  const out: RecordedBenchmark[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch {
      continue;
    }
    if (isBenchFile(parsed)) out.push({ ...parsed, file: `bench/results/${file}` });
  }
  return out.sort((a, b) => b.date.localeCompare(a.date) || a.file.localeCompare(b.file));
}
