/**
 * Writes what one experiment run produced: the record as JSON and each of its plots as an SVG file,
 * both atomically (temporary file, then rename), so an interrupted run never leaves a half-written
 * result. `sparq run` writes into `results/`, `sparq report` into `report/`.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ExperimentRecord } from '../experiments/runner.js';
import { resultsJson } from '../io/json-results.js';
import type { RenderedPlot } from './html.js';
import { renderPlotSvg } from './render-plot.js';

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export interface WrittenRecord {
  /** Path of the JSON file. */
  readonly json: string;
  readonly plots: readonly RenderedPlot[];
}

/**
 * Writes `<dir>/<name>[.quick].json` and `<plotDir>/<name>-<plot id>.svg`; plot `file` paths are
 * relative to `linkBase` (the directory of the page that links them).
 */
export async function writeRecord(
  record: ExperimentRecord,
  dir: string,
  plotDir: string = dir,
  linkBase: string = dir,
): Promise<WrittenRecord> {
  mkdirSync(dir, { recursive: true });
  mkdirSync(plotDir, { recursive: true });
  const suffix = record.mode === 'quick' ? '.quick' : '';
  const json = join(dir, `${record.name}${suffix}.json`);
  writeAtomic(json, resultsJson(record));
  const plots: RenderedPlot[] = [];
  for (const plot of record.summary.plots) {
    const svg = await renderPlotSvg(plot);
    const file = join(plotDir, `${record.name}-${plot.id}${suffix}.svg`);
    writeAtomic(file, svg);
    plots.push({ id: plot.id, caption: plot.caption, svg, file: relative(linkBase, file) });
  }
  return { json, plots };
}
