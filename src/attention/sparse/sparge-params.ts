/**
 * Calibrated SpargeAttn hyperparameters per head (sparse_attention.md §1.6) and their JSON form — what
 * the reference keeps in the `SparseAttentionMeansim` state dict (`simthreshd1`, `cdfthreshd`,
 * `pvthreshd`, `is_sparse`) plus the tiling and targets they were tuned for, so a file cannot be
 * applied to a kernel with other blocks unnoticed. Loading validates every field and throws a
 * MalformedFileError saying which one is wrong.
 */
import { MalformedFileError } from '../../core/errors.js';

export const SPARGE_PARAMS_FORMAT = 'sparq.sparge-params';
export const SPARGE_PARAMS_VERSION = 1;

export interface SpargeParams {
  format: typeof SPARGE_PARAMS_FORMAT;
  version: typeof SPARGE_PARAMS_VERSION;
  /** Query heads. */
  heads: number;
  /** Tiling the parameters were calibrated for. */
  blockQ: number;
  blockK: number;
  /** θ per head (simthreshd1); 1 for a dense head. */
  simThreshold: number[];
  /** τ per head (cdfthreshd, TopCdf exclusive); 1 for a dense head. */
  cdfThreshold: number[];
  /** pvthreshd per head. */
  pvThreshold: number[];
  /** Whether the head stays sparse (`is_sparse`): false once its mean sparsity was ≤ 0.1. */
  sparse: boolean[];
  /** Mean block sparsity of the winning θ bin per head (`tuning_sparsity`). */
  sparsity: number[];
  /** The relative-L1 targets of the τ and pvthreshd searches (`l1`, `pv_l1`). */
  l1: number;
  l2: number;
}

/** The parameters as JSON text (two-space indented, stable key order). */
export function spargeParamsToJson(p: SpargeParams): string {
  assertSpargeParams(p);
  return JSON.stringify(p, null, 2) + '\n';
}

/** Parses and validates parameters saved by spargeParamsToJson. */
export function spargeParamsFromJson(text: string): SpargeParams {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new MalformedFileError(`SpargeAttn parameters are not valid JSON: ${(e as Error).message}`);
  }
  assertSpargeParams(value);
  return value;
}

/** Throws a MalformedFileError unless `p` is a complete, consistent SpargeParams object. */
export function assertSpargeParams(p: unknown): asserts p is SpargeParams {
  const bad = (what: string) => {
    throw new MalformedFileError(
      `SpargeAttn parameters: ${what}. Expected an object from calibrateSparge / spargeParamsToJson ` +
        `({ format: '${SPARGE_PARAMS_FORMAT}', version: ${SPARGE_PARAMS_VERSION}, heads, blockQ, blockK, simThreshold[], cdfThreshold[], pvThreshold[], sparse[], sparsity[], l1, l2 }).`,
    );
  };
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return bad(`got ${JSON.stringify(p)}`);
  const o = p as Record<string, unknown>;
  if (o.format !== SPARGE_PARAMS_FORMAT) bad(`format is ${JSON.stringify(o.format)}`);
  if (o.version !== SPARGE_PARAMS_VERSION)
    bad(`version is ${JSON.stringify(o.version)}, this sparq reads ${SPARGE_PARAMS_VERSION}`);
  for (const key of ['heads', 'blockQ', 'blockK']) {
    if (!Number.isSafeInteger(o[key]) || (o[key] as number) < 1)
      bad(`${key} must be a positive integer; got ${JSON.stringify(o[key])}`);
  }
  for (const key of ['l1', 'l2']) {
    if (typeof o[key] !== 'number' || !((o[key] as number) >= 0))
      bad(`${key} must be a number ≥ 0; got ${JSON.stringify(o[key])}`);
  }
  const heads = o.heads as number;
  const numbers = (key: string, lo: number, hi: number) => {
    const a = o[key];
    if (!Array.isArray(a) || a.length !== heads)
      bad(`${key} must be an array of ${heads} numbers (one per head); got ${JSON.stringify(a)}`);
    (a as unknown[]).forEach((x, h) => {
      if (typeof x !== 'number' || !Number.isFinite(x) || x < lo || x > hi)
        bad(`${key}[${h}] must be a number in [${lo}, ${hi}]; got ${JSON.stringify(x)}`);
    });
  };
  numbers('simThreshold', -1, 1);
  numbers('cdfThreshold', 0, 1);
  numbers('pvThreshold', 0, 50);
  numbers('sparsity', 0, 1);
  const sparse = o.sparse;
  if (!Array.isArray(sparse) || sparse.length !== heads || !sparse.every((x) => typeof x === 'boolean')) {
    bad(`sparse must be an array of ${heads} booleans; got ${JSON.stringify(sparse)}`);
  }
  const known = [
    'format',
    'version',
    'heads',
    'blockQ',
    'blockK',
    'simThreshold',
    'cdfThreshold',
    'pvThreshold',
    'sparse',
    'sparsity',
    'l1',
    'l2',
  ];
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0) bad(`unknown field(s) ${extra.map((k) => `'${k}'`).join(', ')}`);
}
