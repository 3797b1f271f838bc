/**
 * An experiment record as markdown for the terminal (`sparq run`, `sparq eval <registered evaluation>`):
 * the claim and pre-registered test, each finding with its verdict, the metrics table (mean ± std over
 * seeds) and where the JSON and plots were written.
 */
import type { ExperimentRecord } from '../experiments/runner.js';
import { formatMeanStd } from '../experiments/stats.js';

const VERDICT = {
  holds: '**holds**',
  'does-not-hold': '**does not hold**',
  inconclusive: '**inconclusive**',
} as const;

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

export function formatRecord(
  record: ExperimentRecord,
  written: { json?: string; plots?: readonly string[] } = {},
): string {
  const seeds =
    record.seeds.length === 1 ? `seed ${record.seeds[0]}` : `seeds ${record.seeds.join(', ')}, mean ± std`;
  const lines = [
    `## ${record.title} (\`${record.name}\`, ${record.mode}: ${seeds}; ${record.backend})`,
    '',
    `Claim: ${record.claim}`,
    '',
    `Pre-registered: ${record.preregistered}`,
    '',
  ];
  if (record.summary.findings.length > 0) {
    lines.push('### Findings', '');
    for (const f of record.summary.findings)
      lines.push(`- ${VERDICT[f.verdict.outcome]} — ${f.claim}: ${f.verdict.detail}`);
    lines.push('');
  }
  if (record.summary.metrics.length > 0) {
    lines.push('### Metrics', '', '| arm | metric | value | n |', '|---|---|---|---|');
    for (const m of record.summary.metrics) {
      lines.push(
        `| ${cell(m.arm)} | ${cell(m.metric)} | ${formatMeanStd(m)}${m.unit ? ` ${m.unit}` : ''} | ${m.n} |`,
      );
    }
    lines.push('');
  }
  for (const note of record.summary.notes ?? []) lines.push(`Note: ${note}`);
  if (record.summary.notes?.length) lines.push('');
  lines.push(
    `Time: ${record.timing.totalSeconds.toFixed(1)} s (${record.timing.perSeedSeconds.map((s) => s.toFixed(1)).join(', ')} per seed).`,
  );
  if (written.json)
    lines.push(`Wrote ${written.json}${written.plots?.length ? ` and ${written.plots.join(', ')}` : ''}.`);
  return lines.join('\n') + '\n';
}
