/**
 * The SageAttention accuracy evaluation behind `sparq eval sage` (issue 3, item 3): every preset and
 * the papers' main ablations, measured against the float64 oracle on the same inputs with the metrics
 * every sparq figure uses (cosine, relative L1, RMSE; SA1 §4.3, SA2 App. A.7, sageattention.md §9).
 *
 * The inputs are synthetic: Gaussian q, k, v and the same draws with one pathology of real models
 * added each (sageattention.md §3–§4): a large per-channel bias on K (what K smoothing removes, SA1
 * §4.2), a few outlier channels in Q and K, a per-channel bias on V (what V smoothing removes, SA2
 * §3.4), and a long Gaussian sequence. Each finding is a comparison of ablation rows with a criterion
 * fixed in advance (`criterion`); `holds` is computed from the seed means, so the evaluation states
 * where the papers' findings, measured on real model activations, do not carry over to these inputs.
 *
 * Everything runs on the CPU emulation (kernel-cpu.ts), which models the reference kernels' numerics;
 * it is O(N²·D) in JavaScript, so the shapes are small (EVAL_SHAPES). Nothing here prints: progress
 * goes to the `onProgress` callback.
 */
import { Rng } from '../../core/rng.js';
import { Tensor } from '../../core/tensor.js';
import { metrics } from '../metrics.js';
import { attentionReference } from '../reference.js';
import type { SageOptions } from './options.js';
import { SAGE_PRESETS } from './presets.js';
import { sageAttention } from './sage-attention.js';

/** The sizes of one evaluation: B·H·N·D of inputs (a)–(d) and of the long sequence (e). */
export interface EvalShapes {
  batch: number;
  heads: number;
  tokens: number;
  headDim: number;
  longHeads: number;
  longTokens: number;
}

/**
 * Quick mode runs one seed at N = 256 (long: 1024) in about 8 s on one core; full mode runs three
 * seeds at N = 1024 (long: 4096), about 5 minutes, since the CPU kernel is O(N²·D) in JavaScript.
 */
export const EVAL_SHAPES: Readonly<Record<'quick' | 'full', Readonly<EvalShapes>>> = Object.freeze({
  quick: Object.freeze({ batch: 1, heads: 2, tokens: 256, headDim: 64, longHeads: 1, longTokens: 1024 }),
  full: Object.freeze({ batch: 1, heads: 2, tokens: 1024, headDim: 64, longHeads: 1, longTokens: 4096 }),
});

/** Seeds per mode: quick runs `seed`, full runs `seed`, `seed + 1`, `seed + 2`. */
const SEED_COUNT = { quick: 1, full: 3 } as const;

/** Standard deviation of the per-channel biases of inputs (b) and (d), in units of the Gaussian's. */
export const CHANNEL_BIAS_STD = 5;
/** Outlier channels of input (c) and the factor they are scaled by in both Q and K. */
export const OUTLIER_CHANNELS = 4;
export const OUTLIER_SCALE = 4;

export type EvalInputId = 'gaussian' | 'k-bias' | 'qk-outliers' | 'v-bias' | 'long';

export interface EvalInput {
  id: EvalInputId;
  description: string;
  /** [B, H, N, D], layout HND. */
  shape: number[];
}

/** A metric over seeds: the mean, the sample std (null with one seed or a non-finite value), each seed's value. */
export interface Stat {
  mean: number;
  std: number | null;
  perSeed: number[];
}

/** The ablation families; each has one finding per input it runs on. */
export type AblationFamily =
  'smooth-k' | 'int4-granularity' | 'p-format' | 'nvfp4-p-scaling' | 'fp16-accumulation' | 'smooth-v';

export interface EvalRow {
  /** 'preset' for the presets block, otherwise the ablation the row belongs to. */
  family: 'preset' | AblationFamily;
  input: EvalInputId;
  /** A short label of the configuration. */
  config: string;
  /** The `sageAttention` options of the run (layout HND, non-causal, default σ). */
  options: SageOptions;
  /** null when an output held ±inf: the cosine of a vector with infinite entries is undefined. */
  cosine: Stat | null;
  relL1: Stat;
  rmse: Stat;
  /** NaN and ±inf elements in the outputs, summed over seeds (finite inputs must never give NaN). */
  nanCount: number;
  infCount: number;
}

export interface FindingEvidence {
  config: string;
  cosine: number | null;
  relL1: number;
  nanCount: number;
  infCount: number;
}

export interface Finding {
  family: AblationFamily;
  input: EvalInputId;
  /** The paper's claim. */
  claim: string;
  /** Where the papers report it, with their numbers (on real model activations). */
  paper: string;
  /** The test applied to the seed means, fixed before measuring. */
  criterion: string;
  holds: boolean;
  /** The measured ratios or conditions the criterion read, in words. */
  measured: string;
  evidence: FindingEvidence[];
}

export interface SageEvaluation {
  mode: 'quick' | 'full';
  seeds: number[];
  /** The kernel emulation the rows come from. */
  backend: 'cpu';
  shapes: EvalShapes;
  inputs: EvalInput[];
  rows: EvalRow[];
  findings: Finding[];
}

export interface SageEvalOptions {
  /** Quick mode (default false): one seed and short sequences (EVAL_SHAPES.quick). */
  quick?: boolean;
  /** First seed (default 0), a non-negative safe integer. */
  seed?: number;
  /** Overrides of the mode's shapes (small ones make a fast test). */
  shapes?: Partial<EvalShapes>;
  /** Called before each run with a one-line description of it. */
  onProgress?: (message: string) => void;
}

const INPUT_DESCRIPTIONS: Record<EvalInputId, string> = {
  gaussian: 'q, k, v ~ N(0, 1)',
  'k-bias': `(a) with a per-channel bias ~ N(0, ${CHANNEL_BIAS_STD}²) added to every K token`,
  'qk-outliers': `(a) with ${OUTLIER_CHANNELS} channels of Q and K (the same ones) scaled by ${OUTLIER_SCALE}`,
  'v-bias': `(a) with a per-channel bias ~ N(0, ${CHANNEL_BIAS_STD}²) added to every V token`,
  long: 'q, k, v ~ N(0, 1), long sequence',
};

const INPUT_IDS: readonly EvalInputId[] = ['gaussian', 'k-bias', 'qk-outliers', 'v-bias', 'long'];

/** One planned run: a row of the result. */
interface RunSpec {
  family: EvalRow['family'];
  input: EvalInputId;
  config: string;
  options: SageOptions;
}

const INT4 = (granularity: 'per-thread' | 'per-token' | 'per-block') =>
  ({ kind: 'int4', granularity }) as const;

/** The configurations of each ablation and the inputs it runs on. */
const ABLATIONS: readonly {
  family: AblationFamily;
  inputs: EvalInputId[];
  configs: [string, SageOptions][];
}[] = [
  {
    family: 'smooth-k',
    inputs: ['k-bias'],
    configs: [
      ['sage2, INT4 per-thread QK, smoothK on', { preset: 'sage2', qk: INT4('per-thread') }],
      ['sage2, INT4 per-thread QK, smoothK off', { preset: 'sage2', qk: INT4('per-thread'), smoothK: false }],
    ],
  },
  {
    family: 'int4-granularity',
    inputs: ['gaussian', 'qk-outliers'],
    configs: [
      ['sage2, INT4 per-thread QK', { preset: 'sage2', qk: INT4('per-thread') }],
      ['sage2, INT4 per-token QK', { preset: 'sage2', qk: INT4('per-token') }],
      ['sage2, INT4 per-block QK', { preset: 'sage2', qk: INT4('per-block') }],
    ],
  },
  {
    family: 'p-format',
    inputs: ['gaussian', 'long'],
    configs: [
      ['sage2, E4M3 P + E4M3 V, fp32 accumulation', { preset: 'sage2', pvAccum: 'fp32' }],
      [
        'sage2, INT8 P + INT8 V, fp32 accumulation',
        { preset: 'sage2', pFormat: 'int8', vFormat: 'int8', pvAccum: 'fp32' },
      ],
    ],
  },
  {
    family: 'nvfp4-p-scaling',
    inputs: ['gaussian', 'long'],
    configs: [
      ['sage3, two-level NVFP4 P', { preset: 'sage3' }],
      ['sage3, direct NVFP4 P', { preset: 'sage3', pScaling: 'direct' }],
    ],
  },
  {
    family: 'fp16-accumulation',
    inputs: ['v-bias'],
    configs: [
      [
        'sage2, fp32+fp16, vScaleMax 448 (no range limit)',
        { preset: 'sage2', pvAccum: 'fp32+fp16', vScaleMax: 448 },
      ],
      [
        'sage2, fp32+fp16, vScaleMax 2.25 (SA2++ limit)',
        { preset: 'sage2', pvAccum: 'fp32+fp16', vScaleMax: 2.25 },
      ],
      ['sage2, fp32, vScaleMax 2.25', { preset: 'sage2', pvAccum: 'fp32', vScaleMax: 2.25 }],
      ['sage2, fp32, vScaleMax 448', { preset: 'sage2', pvAccum: 'fp32', vScaleMax: 448 }],
    ],
  },
  {
    family: 'smooth-v',
    inputs: ['v-bias'],
    configs: [
      ['sage2', { preset: 'sage2' }],
      ['sage2, smoothV on', { preset: 'sage2', smoothV: true }],
    ],
  },
];

/** "≫": the worse configuration's relative L1 is at least this many times the better one's. */
const MUCH_WORSE = 2;
/** "≈" / "matches": relative L1 within this fraction of the other's. */
const CLOSE = 0.1;

const ratio = (a: number, b: number) => (Number.isFinite(a) ? a / b : Infinity);
const fmtRatio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '∞');
const fmtNumber = (x: number) => (Number.isFinite(x) ? x.toPrecision(3) : String(x));
const close = (a: number, b: number) => Math.abs(a / b - 1) <= CLOSE;

/**
 * The claims, with their sources and criteria. `judge` reads the rows of its family on one input,
 * in the order of ABLATIONS' configs, and returns whether the criterion holds and what it measured.
 */
const CLAIMS: Record<
  AblationFamily,
  {
    claim: string;
    paper: string;
    criterion: string;
    judge(rows: EvalRow[]): { holds: boolean; measured: string };
  }
> = {
  'smooth-k': {
    claim: 'K smoothing rescues INT4 QK',
    paper: 'SA2 Table 4 (CogVideoX): cos 80.04% → 98.07%, relL1 0.3906 → 0.1493 with smooth K',
    criterion: `relL1 without smoothK ≥ ${MUCH_WORSE}× relL1 with smoothK`,
    judge([on, off]) {
      const r = ratio(off.relL1.mean, on.relL1.mean);
      return { holds: r >= MUCH_WORSE, measured: `off/on relL1 ${fmtRatio(r)}` };
    },
  },
  'int4-granularity': {
    claim: 'INT4 QK: per-thread ≈ per-token ≫ per-block',
    paper: 'SA2 Table 6 (avg): relL1 per-thread 0.0622, per-token 0.0649, per-block 0.1492',
    criterion: `per-thread relL1 within ±${CLOSE * 100}% of per-token's, and per-block relL1 ≥ ${MUCH_WORSE}× per-thread's`,
    judge([thread, token, block]) {
      const near = thread.relL1.mean / token.relL1.mean;
      const far = ratio(block.relL1.mean, thread.relL1.mean);
      return {
        holds: close(thread.relL1.mean, token.relL1.mean) && far >= MUCH_WORSE,
        measured: `thread/token ${fmtRatio(near)}, block/thread ${fmtRatio(far)}`,
      };
    },
  },
  'p-format': {
    claim: 'E4M3 P ≫ INT8 P (V in the same kind)',
    paper: 'SA1 Table 2: relL1 0.0345 (E4M3 PV) vs 0.1035 (INT8 PV); SA2 Table 7: cos 99.44% vs 77.05%',
    criterion: `INT8 P+V relL1 ≥ ${MUCH_WORSE}× E4M3 P+V relL1`,
    judge([e4m3, int8]) {
      const r = ratio(int8.relL1.mean, e4m3.relL1.mean);
      return { holds: r >= MUCH_WORSE, measured: `INT8/E4M3 relL1 ${fmtRatio(r)}` };
    },
  },
  'nvfp4-p-scaling': {
    claim: 'two-level NVFP4 P ≫ direct',
    paper: 'SA3 Table 1b: cos 99.52%, RMSE 0.201 (two-level) vs 93.32%, RMSE 1.103 (direct)',
    criterion: `direct relL1 ≥ ${MUCH_WORSE}× two-level relL1`,
    judge([twoLevel, direct]) {
      const r = ratio(direct.relL1.mean, twoLevel.relL1.mean);
      return { holds: r >= MUCH_WORSE, measured: `direct/two-level relL1 ${fmtRatio(r)}` };
    },
  },
  'fp16-accumulation': {
    claim: "FP16 accumulation without range limits overflows; with SA2++'s limit it matches FP32",
    paper:
      'SA2++ §3 (P_r·V_r ≤ 1023.5), Table 2: cos 99.97%, relL1 0.0186 for every (P_r, V_r) and for SA2; ' +
      'NaN/black images without limits (#93)',
    criterion:
      'no NaN in any output; without the limit some output is ±inf or relL1 ≥ 1; with vScaleMax 2.25 ' +
      `every output is finite, relL1 is within ±${CLOSE * 100}% of fp32 accumulation's at the same V ` +
      `range, and at most ${1 + CLOSE}× that of fp32 accumulation with V range 448 (SA2)`,
    judge([unlimited, limited, fp32Limited, fp32]) {
      const noNan = [unlimited, limited, fp32Limited, fp32].every((r) => r.nanCount === 0);
      const overflows = unlimited.infCount > 0 || unlimited.relL1.mean >= 1;
      const sameAccuracy = close(limited.relL1.mean, fp32Limited.relL1.mean);
      const noLoss = limited.relL1.mean <= (1 + CLOSE) * fp32.relL1.mean;
      return {
        holds: noNan && overflows && limited.infCount === 0 && sameAccuracy && noLoss,
        measured:
          `unlimited: ${unlimited.infCount} inf, ${unlimited.nanCount} NaN, relL1 ${fmtNumber(unlimited.relL1.mean)}; ` +
          `limited / fp32 (2.25) relL1 ${fmtRatio(limited.relL1.mean / fp32Limited.relL1.mean)}, ` +
          `/ fp32 (448) ${fmtRatio(limited.relL1.mean / fp32.relL1.mean)}`,
      };
    },
  },
  'smooth-v': {
    claim: 'V smoothing helps V with a channel bias',
    paper: 'SA2 §3.4, Table 10 (CogVideoX): cos 98.25% → 99.75% with smooth V',
    criterion: `relL1 without smoothV ≥ ${MUCH_WORSE}× relL1 with smoothV`,
    judge([off, on]) {
      const r = ratio(off.relL1.mean, on.relL1.mean);
      return { holds: r >= MUCH_WORSE, measured: `off/on relL1 ${fmtRatio(r)}` };
    },
  },
};

/** Every planned run (presets on every input, then every ablation), in the order of the result's rows. */
function plannedRuns(): RunSpec[] {
  const specs: RunSpec[] = [];
  for (const input of INPUT_IDS) {
    for (const preset of SAGE_PRESETS)
      specs.push({ family: 'preset', input, config: preset, options: { preset } });
  }
  for (const { family, inputs: on, configs } of ABLATIONS) {
    for (const input of on)
      for (const [config, options] of configs) {
        specs.push({ family, input, config, options: structuredClone(options) });
      }
  }
  return specs;
}

/** What one seed measured: each distinct run's metrics, keyed by the run (input and options). */
export interface SageSeedMeasurement {
  seed: number;
  shapes: EvalShapes;
  runs: Record<string, RunMetrics>;
}

/**
 * Measures one seed: every distinct run of the evaluation against the float64 oracle on that seed's
 * inputs. Identical runs (a preset that is also an ablation's baseline) are computed once.
 */
export function measureSageSeed(
  seed: number,
  shapes: EvalShapes,
  onProgress?: (done: number, total: number, label: string) => void,
): SageSeedMeasurement {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative safe integer; got ${String(seed)}`);
  }
  const distinct = new Map<string, RunSpec>();
  for (const s of plannedRuns()) distinct.set(runKey(s), s);
  const runs: Record<string, RunMetrics> = {};
  let done = 0;
  for (const input of INPUT_IDS) {
    const own = [...distinct.values()].filter((s) => s.input === input);
    if (own.length === 0) continue;
    const [q, k, v] = makeInput(input, shapes, seed);
    const ref = attentionReference(q, k, v).data as Float64Array;
    for (const s of own) {
      onProgress?.(done++, distinct.size, `${input}: ${s.config}`);
      const out = sageAttention(q, k, v, { ...s.options, returnLse: false }).data as Float32Array;
      runs[runKey(s)] = measureRun(out, ref);
    }
  }
  onProgress?.(done, distinct.size, 'done');
  return { seed, shapes, runs };
}

/** The evaluation from per-seed measurements of the same shapes: rows with mean ± std, then the findings. */
export function combineSageSeeds(
  mode: 'quick' | 'full',
  measured: readonly SageSeedMeasurement[],
): SageEvaluation {
  if (measured.length === 0) throw new RangeError('combineSageSeeds needs at least one seed');
  const shapes = measured[0].shapes;
  const inputs = INPUT_IDS.map((id) => ({
    id,
    description: INPUT_DESCRIPTIONS[id],
    shape: inputShape(id, shapes),
  }));
  const rows = plannedRuns().map((s): EvalRow => ({
    ...s,
    ...summarize(measured.map((m) => m.runs[runKey(s)])),
  }));
  const findings: Finding[] = [];
  for (const { family, inputs: on } of ABLATIONS) {
    for (const input of on) {
      const own = rows.filter((r) => r.family === family && r.input === input);
      const { claim, paper, criterion, judge } = CLAIMS[family];
      const evidence = own.map(({ config, cosine, relL1, nanCount, infCount }) => ({
        config,
        cosine: cosine?.mean ?? null,
        relL1: relL1.mean,
        nanCount,
        infCount,
      }));
      findings.push({ family, input, claim, paper, criterion, ...judge(own), evidence });
    }
  }
  return { mode, seeds: measured.map((m) => m.seed), backend: 'cpu', shapes, inputs, rows, findings };
}

/**
 * Runs the evaluation: every preset on inputs (a)–(e), then every ablation, each against the float64
 * oracle on the same inputs, for 1 (quick) or 3 (full) seeds; then judges the findings.
 */
export function evaluateSage(opts: SageEvalOptions = {}): SageEvaluation {
  const mode = opts.quick ? 'quick' : 'full';
  const first = opts.seed ?? 0;
  if (!Number.isSafeInteger(first) || first < 0) {
    throw new RangeError(`seed must be a non-negative safe integer; got ${String(opts.seed)}`);
  }
  const shapes: EvalShapes = { ...EVAL_SHAPES[mode], ...opts.shapes };
  const seeds = Array.from({ length: SEED_COUNT[mode] }, (_, i) => first + i);
  const total = seeds.length;
  const measured = seeds.map((seed, i) =>
    measureSageSeed(seed, shapes, (done, count, label) => {
      if (label !== 'done')
        opts.onProgress?.(`[${i * count + done + 1}/${count * total}] seed ${seed} ${label}`);
    }),
  );
  return combineSageSeeds(mode, measured);
}

function runKey(s: RunSpec): string {
  return `${s.input} ${JSON.stringify(s.options)}`;
}

function inputShape(id: EvalInputId, s: EvalShapes): number[] {
  return id === 'long'
    ? [s.batch, s.longHeads, s.longTokens, s.headDim]
    : [s.batch, s.heads, s.tokens, s.headDim];
}

/**
 * q, k, v of one input and seed, float32 HND. Inputs (a)–(d) share their Gaussian draws, so the
 * pathology is the only difference between them; the long input draws its own.
 */
function makeInput(id: EvalInputId, shapes: EvalShapes, seed: number): [Tensor, Tensor, Tensor] {
  const shape = inputShape(id, shapes);
  const d = shapes.headDim;
  const rng = Rng.fromSeed(seed).split(id === 'long' ? 1 : 0);
  const [q, k, v] = [0, 1, 2].map((i) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.split(i).fillNormal(data);
    return data;
  });
  const pathology = rng.split(3);
  if (id === 'k-bias' || id === 'v-bias') {
    const bias = new Float32Array(d);
    pathology.fillNormal(bias, 0, CHANNEL_BIAS_STD);
    const x = id === 'k-bias' ? k : v;
    for (let i = 0; i < x.length; i++) x[i] += bias[i % d];
  } else if (id === 'qk-outliers') {
    const channels = new Set<number>();
    while (channels.size < Math.min(OUTLIER_CHANNELS, d)) channels.add(Math.floor(pathology.uniform() * d));
    for (let i = 0; i < q.length; i++) {
      if (!channels.has(i % d)) continue;
      q[i] *= OUTLIER_SCALE;
      k[i] *= OUTLIER_SCALE;
    }
  }
  return [q, k, v].map((x) => new Tensor(x, shape, 'float32')) as [Tensor, Tensor, Tensor];
}

export interface RunMetrics {
  cosine: number | null;
  relL1: number;
  rmse: number;
  nan: number;
  inf: number;
}

function measureRun(out: Float32Array, ref: Float64Array): RunMetrics {
  let nan = 0;
  let inf = 0;
  for (const x of out) {
    if (Number.isNaN(x)) nan++;
    else if (!Number.isFinite(x)) inf++;
  }
  return {
    cosine: nan + inf === 0 ? metrics.cosine(out, ref) : null,
    relL1: metrics.relL1(out, ref),
    rmse: metrics.rmse(out, ref),
    nan,
    inf,
  };
}

function stat(values: number[]): Stat {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (values.length < 2 || !Number.isFinite(mean)) return { mean, std: null, perSeed: values };
  const variance = values.reduce((a, x) => a + (x - mean) ** 2, 0) / (values.length - 1);
  return { mean, std: Math.sqrt(variance), perSeed: values };
}

function summarize(runs: RunMetrics[]): Pick<EvalRow, 'cosine' | 'relL1' | 'rmse' | 'nanCount' | 'infCount'> {
  const cosines = runs.map((r) => r.cosine);
  return {
    cosine: cosines.every((c) => c !== null) ? stat(cosines as number[]) : null,
    relL1: stat(runs.map((r) => r.relL1)),
    rmse: stat(runs.map((r) => r.rmse)),
    nanCount: runs.reduce((a, r) => a + r.nan, 0),
    infCount: runs.reduce((a, r) => a + r.inf, 0),
  };
}
