/**
 * Per-head calibration of SpargeAttn's θ (simthreshd1), τ (cdfthreshd) and pvthreshd, as the
 * reference's `SparseAttentionMeansim` autotuner does (sparse_attention.md §1.6, `autotune.py`), on
 * the CPU against the float64 oracle. For every call (sample) and every head still marked sparse:
 *
 * 1. θ = −1, −15/16, …, 15/16 in turn. For each:
 *    a. τ by bisection on [0, 1] starting at 0.1: while the interval is wider than 0.001, run TopCdf
 *       (exclusive) at the current τ; if relative L1 < l1 the current τ becomes the upper end, else
 *       the lower end, and τ moves to the midpoint. Above 1 − 0.001 the result becomes 1.
 *    b. pvthreshd by the same bisection on [0, 50] starting at 20 with width 0.1 and target l2, at the
 *       τ and θ just found.
 *    c. the point (θ, τ, pvthreshd, sparsity) is recorded, sparsity = 1 − the block density at the
 *       chosen τ; the sweep stops as soon as a sparsity is below 0.1 (raising θ only adds fix blocks).
 *
 *    One departure: the reference returns the bracket's final midpoint, which was never run and, where
 *    the error jumps across a block boundary inside the last 0.001, lies on the failing side (and it
 *    records the sparsity of its last run, not of the τ it returns). sparq returns the bracket's
 *    passing end — the smallest τ (and pvthreshd) that met its target, or 1 (50) when none did — with
 *    the sparsity measured at that τ, so a calibrated head meets l1 and l2 on its calibration data.
 * 2. The head's points from all calls so far are binned by θ in bins of width 2/16 from −1; the bin
 *    with the largest SUM of sparsity wins and the head takes the max θ, τ and pvthreshd in it
 *    (conservative); its mean sparsity ≤ 0.1 marks the head dense (τ = 1, θ = 1), and a dense head is
 *    not tuned again.
 *
 * Relative L1 is Σ|O − O′|/Σ|O| over the head's output (all batch entries), rounded to 4 decimals as the
 * reference's `precision_metric` does before comparing. The kernel is the CPU block-sparse kernel with
 * the given `sage` quantization (the reference tunes with its quantized kernel, so its targets include
 * the quantization error; without `sage` they measure sparsity error alone). The stage-2 test uses the
 * kernel's defaults (whole-block groups, pvExemptLast 2) unless given. Sparsity is exact for causal
 * maps (the reference approximates the causal block count).
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { convertLayout } from '../../core/layout.js';
import { Tensor } from '../../core/tensor.js';
import { metrics } from '../metrics.js';
import { kvHeadOf, resolveAttentionProblem } from '../options.js';
import { attentionReference } from '../reference.js';
import { blockSparseAttentionCpu } from './block-sparse-cpu.js';
import type { BlockSparseOptions } from './block-sparse-options.js';
import { layoutFromBlockMap } from './layout-builders.js';
import { selectBlocks, spargeBlockStatistics, type SpargeBlockStatistics } from './sparge-block-map.js';
import { type ResolvedSpargeMap, resolveSpargeMap } from './sparge-options.js';
import { SPARGE_PARAMS_FORMAT, SPARGE_PARAMS_VERSION, type SpargeParams } from './sparge-params.js';

export interface CalibrationSample {
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

export interface CalibrateSpargeOptions {
  /** Relative-L1 target of the τ search (default 0.07, `l1`). */
  l1?: number;
  /** Relative-L1 target of the pvthreshd search (default 0.08, `pv_l1`; must exceed l1). */
  l2?: number;
  /** Tensor layout (default 'HND'). */
  layout?: 'HND' | 'NHD';
  blockQ?: number;
  blockK?: number;
  smoothK?: boolean;
  causal?: boolean;
  /** Tune pvthreshd too (default true, `tune_pv`); otherwise it is 20 for every point. */
  tunePv?: boolean;
  /** Kernel options for the sparse runs (sage quantization, stage-2 groups, CPU tiles). */
  kernel?: Pick<BlockSparseOptions, 'sage' | 'pvGroupRows' | 'pvExemptLast' | 'tileQ' | 'tileK' | 'smScale'>;
  /** Called after each (sample, head) with the numbers done and to do. */
  onProgress?: (done: number, total: number) => void;
}

/** One recorded search result of one head on one sample. */
export interface CalibrationPoint {
  simThreshold: number;
  cdfThreshold: number;
  pvThreshold: number;
  sparsity: number;
  sample: number;
}

export interface SpargeCalibration {
  params: SpargeParams;
  /** Every point recorded per head (the reference's hyperparams_cache). */
  points: CalibrationPoint[][];
}

const GRANULARITY = 16;
const TAU_TOL = 0.001;
const PV_TOL = 0.1;

/** Calibrates per-head SpargeAttn parameters on `samples` (attention calls); see the file comment. */
export function calibrateSparge(
  samples: readonly CalibrationSample[],
  opts: CalibrateSpargeOptions = {},
): SpargeCalibration {
  if (!Array.isArray(samples) || samples.length === 0) {
    throw new UnsupportedOptionError('calibrateSparge needs at least one sample { q, k, v }');
  }
  const l1 = opts.l1 ?? 0.07;
  const l2 = opts.l2 ?? 0.08;
  if (!(l1 >= 0) || !(l2 > l1)) {
    throw new UnsupportedOptionError(
      `the targets must satisfy 0 ≤ l1 < l2 (the reference asserts pv_l1 > l1); got l1 ${l1}, l2 ${l2}`,
    );
  }
  const layout = opts.layout ?? 'HND';
  const heads = resolveAttentionProblem(samples[0].q, samples[0].k, samples[0].v, { layout }).headsQ;
  const base = resolveSpargeMap(
    { blockQ: opts.blockQ, blockK: opts.blockK, smoothK: opts.smoothK, causal: opts.causal, cdfThreshold: 1 },
    1,
  );
  const state = {
    simThreshold: new Array<number>(heads).fill(-1),
    cdfThreshold: new Array<number>(heads).fill(0.1),
    pvThreshold: new Array<number>(heads).fill(20),
    sparse: new Array<boolean>(heads).fill(true),
    sparsity: new Array<number>(heads).fill(0),
  };
  const points: CalibrationPoint[][] = Array.from({ length: heads }, () => []);
  let done = 0;
  samples.forEach((sample, si) => {
    const p = resolveAttentionProblem(sample.q, sample.k, sample.v, { layout, causal: opts.causal });
    if (p.headsQ !== heads) {
      throw new UnsupportedOptionError(
        `every sample must have ${heads} query heads; sample ${si} has ${p.headsQ}`,
      );
    }
    for (let h = 0; h < heads; h++) {
      if (state.sparse[h]) {
        const head = headSlice(sample, h, p.headsQ, p.headsKv, layout);
        const tuner = new HeadTuner(head, { ...base, smoothK: base.smoothK }, p.headDim, opts, l1, l2);
        const found = tuner.sweep(si);
        points[h].push(...found);
        const winner = aggregate(points[h]);
        state.simThreshold[h] = winner.simThreshold;
        state.cdfThreshold[h] = winner.cdfThreshold;
        state.pvThreshold[h] = winner.pvThreshold;
        state.sparsity[h] = winner.meanSparsity;
        state.sparse[h] = winner.meanSparsity > 0.1;
        if (!state.sparse[h]) {
          state.cdfThreshold[h] = 1;
          state.simThreshold[h] = 1;
        }
      }
      opts.onProgress?.(++done, samples.length * heads);
    }
  });
  return {
    params: {
      format: SPARGE_PARAMS_FORMAT,
      version: SPARGE_PARAMS_VERSION,
      heads,
      blockQ: base.blockQ,
      blockK: base.blockK,
      ...state,
      l1,
      l2,
    },
    points,
  };
}

/** One head of a sample as single-head HND tensors (all batch entries), with its oracle output. */
function headSlice(s: CalibrationSample, h: number, hq: number, hkv: number, layout: 'HND' | 'NHD') {
  const take = (t: Tensor, heads: number, index: number) => {
    const x = convertLayout(new Tensor(t.toFloat64(), t.shape, 'float64'), layout, 'HND');
    const [b, , n, d] = x.shape;
    const out = new Float64Array(b * n * d);
    for (let bi = 0; bi < b; bi++) {
      out.set(x.data.subarray((bi * heads + index) * n * d, (bi * heads + index + 1) * n * d), bi * n * d);
    }
    return new Tensor(out, [b, 1, n, d], 'float64');
  };
  const hk = kvHeadOf(h, hq, hkv);
  return { q: take(s.q, hq, h), k: take(s.k, hkv, hk), v: take(s.v, hkv, hk) };
}

class HeadTuner {
  private readonly stats: SpargeBlockStatistics;
  private readonly reference: Tensor;
  private readonly nq: number;
  private readonly nk: number;

  constructor(
    private readonly head: CalibrationSample,
    private readonly map: ResolvedSpargeMap,
    headDim: number,
    private readonly opts: CalibrateSpargeOptions,
    private readonly l1: number,
    private readonly l2: number,
  ) {
    this.stats = spargeBlockStatistics(head.q, head.k, { ...map, layout: 'HND', headDim });
    this.reference = attentionReference(head.q, head.k, head.v, {
      causal: map.causal,
      smScale: opts.kernel?.smScale,
    });
    this.nq = head.q.shape[2];
    this.nk = head.k.shape[2];
  }

  /** relative L1 (rounded to 4 decimals) and block sparsity of one configuration. */
  private run(theta: number, tau: number, pv: number | undefined): { l1: number; sparsity: number } {
    const resolved: ResolvedSpargeMap = {
      ...this.map,
      simThreshold: Float64Array.of(theta),
      cdfThreshold: Float64Array.of(tau),
      topk: null,
      cdfRule: 'exclusive',
      attentionSink: false,
    };
    const m = selectBlocks(this.stats, resolved);
    const layout = layoutFromBlockMap(m.map, {
      nq: this.nq,
      nk: this.nk,
      blockQ: this.map.blockQ,
      blockK: this.map.blockK,
    });
    const out = blockSparseAttentionCpu(this.head.q, this.head.k, this.head.v, layout, {
      ...this.opts.kernel,
      causal: this.map.causal,
      pvThreshold: pv,
      returnLse: false,
      returnStats: false,
    }) as Tensor<'float32'>;
    const err = metrics.relL1(out, this.reference);
    return { l1: Math.round(err * 1e4) / 1e4, sparsity: 1 - m.stats.density };
  }

  /** Step 1 for one sample: the θ sweep with its τ and pvthreshd searches. */
  sweep(sample: number): CalibrationPoint[] {
    const found: CalibrationPoint[] = [];
    for (let i = -GRANULARITY; i < GRANULARITY; i++) {
      const theta = i / GRANULARITY;
      const { tau, sparsity } = this.tuneTau(theta);
      const pv = this.opts.tunePv === false ? 20 : this.tunePv(theta, tau);
      found.push({ simThreshold: theta, cdfThreshold: tau, pvThreshold: pv, sparsity, sample });
      if (sparsity < 0.1) break;
    }
    return found;
  }

  private tuneTau(theta: number): { tau: number; sparsity: number } {
    let lo = 0;
    let hi = 1;
    let tau = 0.1;
    let passing: number | undefined;
    while (hi - lo > TAU_TOL) {
      // the reference's kernel call here leaves pvthreshd at its default 50
      const r = this.run(theta, tau, 50);
      if (r.l1 < this.l1) {
        hi = tau;
        passing = r.sparsity;
        tau = (tau + lo) / 2;
      } else {
        lo = tau;
        tau = (tau + hi) / 2;
      }
    }
    if (hi > 1 - TAU_TOL) return { tau: 1, sparsity: this.run(theta, 1, 50).sparsity };
    return { tau: hi, sparsity: passing as number };
  }

  private tunePv(theta: number, tau: number): number {
    let lo = 0;
    let hi = 50;
    let pv = 20;
    while (hi - lo > PV_TOL) {
      if (this.run(theta, tau, pv).l1 < this.l2) {
        hi = pv;
        pv = (pv + lo) / 2;
      } else {
        lo = pv;
        pv = (pv + hi) / 2;
      }
    }
    return hi;
  }
}

/** Step 2: the θ bin (width 2/16 from −1) with the largest sum of sparsity; max θ, τ, pv within it. */
function aggregate(points: readonly CalibrationPoint[]) {
  const bins = new Map<number, CalibrationPoint[]>();
  for (const p of points) {
    const key = Math.floor((p.simThreshold + 1) / (2 / GRANULARITY));
    const bin = bins.get(key) ?? [];
    bin.push(p);
    bins.set(key, bin);
  }
  // ties keep the first bin in insertion order, as Python's stable sort on the dict's values
  let best: CalibrationPoint[] = [];
  let bestSum = -Infinity;
  for (const bin of bins.values()) {
    const sum = bin.reduce((a, p) => a + p.sparsity, 0);
    if (sum > bestSum) {
      best = bin;
      bestSum = sum;
    }
  }
  return {
    simThreshold: Math.max(...best.map((p) => p.simThreshold)),
    cdfThreshold: Math.max(...best.map((p) => p.cdfThreshold)),
    pvThreshold: Math.max(...best.map((p) => p.pvThreshold)),
    meanSparsity: bestSum / best.length,
  };
}
