/**
 * Weight-oscillation metrics of TetraJet App. A (training_methods.md §1.6): how much the forward
 * (quantized) weight moves compared with the latent weight that drives it. Late in MXFP4 training
 * latent weights sit near FP4 rounding thresholds and tiny updates flip their quantized value
 * (TetraJet §4), so the quantized weight keeps changing while the latent one has settled.
 *
 * - r(X) = (1/T0) Σ_t ‖X_t − X_{t−1}‖_F / ‖X_{t−1}‖_F, the mean relative change per step.
 * - R_w = dist_Q / dist_W per element, dist = Σ_t |x_t − x_{t−1}|; an element oscillates if R_w > 16.
 * - QuantConf(w) = min_i |w/S − thrd_i| / MaxDist, the distance of the scaled latent value to the
 *   nearest E2M1 rounding threshold, relative to the largest such distance inside its rounding cell.
 */
import { dequantizeMxfp4, type Mxfp4Groups } from './mxfp4-groups.js';
import type { Matrix } from './matrix.js';

/** Oscillation threshold on R_w used by TetraJet (App. A, Fig. 6) and by Q-Ramping's k1. */
export const OSCILLATION_THRESHOLD = 16;

/** ‖cur − prev‖_F / ‖prev‖_F: one term of r(X); 0 when both are zero, ∞ when only prev is. */
export function relativeChange(prev: Float64Array, cur: Float64Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < prev.length; i++) {
    diff += (cur[i] - prev[i]) ** 2;
    norm += prev[i] ** 2;
  }
  if (diff === 0) return 0;
  return Math.sqrt(diff) / Math.sqrt(norm);
}

/**
 * Rounding cells of the non-negative E2M1 grid {0, 0.5, 1, 1.5, 2, 3, 4, 6}: the thresholds are the
 * midpoints between neighbours; the top cell [5, 6] ends at 6 because the truncation-free scale keeps
 * |w/S| ≤ 6 (values beyond it are clipped to 6 and count as fully confident).
 */
const CELL_EDGES = [0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 6];

/**
 * TetraJet App. A QuantConf of one scaled latent value v = w/S, in [0, 1]. MaxDist is half the width
 * of v's rounding cell, the largest distance to a threshold a point of the cell can have; the cell
 * around 0 is [−0.25, 0.25] and the top cell [5, 6] only has a threshold at 5 (so MaxDist is 1).
 */
export function quantConf(v: number): number {
  const a = Math.abs(v);
  if (a >= 6) return 1;
  if (a < 0.25) return (0.25 - a) / 0.25;
  let k = 1;
  while (a >= CELL_EDGES[k + 1]) k++;
  const [lo, hi] = [CELL_EDGES[k], CELL_EDGES[k + 1]];
  if (hi === 6) return (a - lo) / (hi - lo);
  return Math.min(a - lo, hi - a) / ((hi - lo) / 2);
}

/** Mean QuantConf over a matrix: each latent element divided by its group's scale 2^e from `q`. */
export function meanQuantConf(latent: Matrix, q: Mxfp4Groups): number {
  const scaled = scaledLatent(latent, q);
  let sum = 0;
  for (const v of scaled) sum += quantConf(v);
  return scaled.length === 0 ? 0 : sum / scaled.length;
}

/** latent / 2^e per element, with e the exponent of the element's MXFP4 group in `q`. */
export function scaledLatent(latent: Matrix, q: Mxfp4Groups): Float64Array {
  const out = new Float64Array(latent.data.length);
  const inverse = Float64Array.from(q.exponents, (e) => 2 ** -e);
  const groupsPerRow = Math.ceil(q.cols / q.groupSize);
  for (let r = 0; r < q.rows; r++) {
    for (let c = 0; c < q.cols; c++) {
      const g =
        q.along === 'row'
          ? r * groupsPerRow + Math.floor(c / q.groupSize)
          : Math.floor(r / q.groupSize) * q.cols + c;
      // × 2^-e is exact (a power of two within float64's range), the same value as ÷ 2^e
      out[r * q.cols + c] = latent.data[r * q.cols + c] * inverse[g];
    }
  }
  return out;
}

/** R_w = dist_Q / dist_W; 0 where neither moved, ∞ where only the quantized value did. */
export function oscillationRatio(distW: number, distQ: number): number {
  if (distQ === 0) return 0;
  return distQ / distW;
}

/**
 * Tracks one weight matrix over a window of steps: feed `observe` the latent (master) weights and
 * their MXFP4 forward quantization after every optimizer step. The first observation only sets the
 * reference; each later one adds a transition to r(W), r(W_Q), dist_W and dist_Q.
 */
export class OscillationTracker {
  /** Σ_t |w_t − w_{t−1}| per element. */
  readonly distW: Float64Array;
  /** Σ_t |w_Q,t − w_Q,t−1| per element, on the dequantized forward weight. */
  readonly distQ: Float64Array;
  private prevW: Float64Array | null = null;
  private prevQ: Float64Array | null = null;
  private sumRW = 0;
  private sumRQ = 0;
  private steps = 0;
  private conf = Number.NaN;

  constructor(readonly size: number) {
    this.distW = new Float64Array(size);
    this.distQ = new Float64Array(size);
  }

  /** Records one step; `latent` and `quantized` describe the same matrix of `size` elements. */
  observe(latent: Matrix, quantized: Mxfp4Groups): void {
    if (latent.data.length !== this.size || quantized.elements.length !== this.size) {
      throw new RangeError(
        `OscillationTracker of ${this.size} elements observed ${latent.data.length} latent, ${quantized.elements.length} quantized`,
      );
    }
    const w = Float64Array.from(latent.data);
    const wq = dequantizeMxfp4(quantized).data;
    if (this.prevW !== null && this.prevQ !== null) {
      for (let i = 0; i < this.size; i++) {
        this.distW[i] += Math.abs(w[i] - this.prevW[i]);
        this.distQ[i] += Math.abs(wq[i] - this.prevQ[i]);
      }
      this.sumRW += relativeChange(this.prevW, w);
      this.sumRQ += relativeChange(this.prevQ, wq);
      this.steps++;
    }
    this.prevW = w;
    this.prevQ = wq;
    this.conf = meanQuantConf(latent, quantized);
  }

  /** Transitions recorded (observations − 1): T0. */
  get transitions(): number {
    return this.steps;
  }

  /** r(W) over the recorded transitions (0 before the second observation). */
  get rW(): number {
    return this.steps === 0 ? 0 : this.sumRW / this.steps;
  }

  /** r(W_Q) over the recorded transitions. */
  get rWQ(): number {
    return this.steps === 0 ? 0 : this.sumRQ / this.steps;
  }

  /** R_w per element. */
  ratios(): Float64Array {
    return Float64Array.from(this.distW, (dw, i) => oscillationRatio(dw, this.distQ[i]));
  }

  /** Fraction of elements with R_w > threshold (default 16). */
  oscillatingFraction(threshold = OSCILLATION_THRESHOLD): number {
    if (this.size === 0) return 0;
    let n = 0;
    for (const r of this.ratios()) if (r > threshold) n++;
    return n / this.size;
  }

  /** Mean QuantConf of the latest observation (NaN before the first). */
  get quantConf(): number {
    return this.conf;
  }

  /** Starts a new window, keeping the latest observation as its reference. */
  resetWindow(): void {
    this.distW.fill(0);
    this.distQ.fill(0);
    this.sumRW = 0;
    this.sumRQ = 0;
    this.steps = 0;
  }
}
