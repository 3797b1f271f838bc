/**
 * Aggregation over seeds: mean and sample standard deviation (n − 1), the form every claim in the
 * README and the report uses ("mean ± std over n seeds").
 */
import type { MetricRow } from './experiment.js';

export interface MeanStd {
  readonly mean: number;
  /** Sample standard deviation; null for fewer than two values. */
  readonly std: number | null;
  readonly n: number;
}

/** Mean and sample std of finite or non-finite values (a NaN or ±inf value propagates to the mean). */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  if (n === 0) throw new RangeError('meanStd needs at least one value');
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  if (n < 2) return { mean, std: null, n };
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** One metric row from per-seed values. */
export function metricRow(metric: string, arm: string, values: readonly number[], unit?: string): MetricRow {
  const { mean, std, n } = meanStd(values);
  return unit === undefined ? { metric, arm, mean, std, n } : { metric, arm, mean, std, n, unit };
}

/**
 * "0.0119 ± 2.7e-4" or "0.9999954 ± 4.6e-6": the mean with enough significant digits that the std's
 * magnitude shows (at least 3, at most 8; or exactly `digits`), the std with 2.
 */
export function formatMeanStd(s: MeanStd, digits?: number): string {
  digits ??= significantDigits(s);
  const f = (x: number, d: number): string => {
    if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'inf' : '-inf';
    const a = Math.abs(x);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(d - 1) : x.toPrecision(d);
  };
  return s.std === null ? f(s.mean, digits) : `${f(s.mean, digits)} ± ${f(s.std, 2)}`;
}

function significantDigits(s: MeanStd): number {
  const { mean, std } = s;
  if (std === null || std === 0 || !Number.isFinite(std) || !Number.isFinite(mean) || mean === 0) return 3;
  const d = Math.ceil(Math.log10(Math.abs(mean))) - Math.floor(Math.log10(std)) + 1;
  return Math.min(8, Math.max(3, d));
}
