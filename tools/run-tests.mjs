// Node 20's test runner takes no glob patterns, so this lists test files and hands them to it.
// Usage: node tools/run-tests.mjs [substring filter ...]
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const filters = process.argv.slice(2);
const files = readdirSync('test', { recursive: true })
  .map((f) => join('test', String(f)))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// Node 20 runs test files one at a time on a 2-core machine (availableParallelism − 1); two at a time
// keeps both cores busy through the many files whose time is mostly tsx start-up and waiting on children.
const concurrency = process.env.SPARQ_TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
