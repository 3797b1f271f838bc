/**
 * `npm run bench -- [area ...] [--quick] [--filter text] [--out file.json]`: runs the bench modules,
 * prints a markdown table (the BENCHMARKS.md row format) and writes the rows as JSON (default
 * results/bench-<areas>.json). Never part of `npm test`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchModule, BenchRow } from './harness.js';

const MODULES: Record<string, () => Promise<{ default: BenchModule }>> = {
  numerics: () => import('./numerics.bench.js'),
  attention: () => import('./attention.bench.js'),
  sage: () => import('./sage.bench.js'),
  sparse: () => import('./sparse.bench.js'),
  svg: () => import('./svg.bench.js'),
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    filter: { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const areas = positionals.length > 0 ? positionals : Object.keys(MODULES);
for (const a of areas) {
  if (!MODULES[a]) {
    console.error(`unknown bench area '${a}'; known: ${Object.keys(MODULES).join(', ')}`);
    process.exit(2);
  }
}
const date = new Date().toISOString().slice(0, 10);
const rows: BenchRow[] = [];
for (const area of areas) {
  const mod = (await MODULES[area]()).default;
  console.error(`# bench ${area}${values.quick ? ' (quick)' : ''}`);
  rows.push(...(await mod.run({ quick: values.quick ?? false, filter: values.filter ?? [] })));
}
const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
if (values.json) {
  console.log(JSON.stringify({ command, date, rows }, null, 2));
} else {
  console.log(`\ncommand: \`${command}\`, date: ${date}\n`);
  console.log('| area | what | value | unit | backend | tier | device | notes |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const v = r.value >= 100 ? r.value.toFixed(1) : r.value.toPrecision(3);
    console.log(
      `| ${r.area} | ${r.name} | ${v} | ${r.unit} | ${r.backend} | ${r.tier} | ${r.device} | ${r.notes ?? ''} |`,
    );
  }
}
const out = values.out ?? `results/bench-${areas.join('-')}.json`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ command, date, rows }, null, 2) + '\n');
console.error(`# wrote ${out}`);
process.exit(0);
