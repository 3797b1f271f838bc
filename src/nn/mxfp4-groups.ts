/**
 * MXFP4 quantization of a GEMM operand (TetraJet §3.1–3.3; training_methods.md §1.1–1.4): E2M1
 * elements sharing one E8M0 scale 2^e per group of 32 along the GEMM's reduction dimension — 1×32
 * groups (along a row) or 32×1 groups (along a column). The scale exponent comes from
 * quant/mxfp4.ts (truncation-free ⌈log2(amax/6)⌉ or the OCP rule).
 *
 * Elements are rounded in float64 on the E2M1 grid {0, 0.5, 1, 1.5, 2, 3, 4, 6}: deterministic Q_D
 * is round-to-nearest (ties to the even code, as ml_dtypes and `encode` do), stochastic Q_S rounds
 * up with probability equal to the distance to the lower neighbour, so E[Q_S(v)] = v (§1.3). This
 * is written here rather than through numerics' `encode`, which rounds float32 inputs: the
 * autograd values are float64 and the stochastic bits come from the caller's Rng stream.
 */
import type { Rng } from '../core/rng.js';
import { roundToInteger } from '../numerics/int-quant.js';
import { MXFP4_GROUP_SIZE, mxfp4ScaleExponent } from '../quant/mxfp4.js';
import type { MxScaleRule } from '../quant/types.js';
import type { Matrix } from './matrix.js';

/** 'row': 1×32 groups of consecutive elements of a row; 'column': 32×1 groups down a column. */
export type GroupAxis = 'row' | 'column';

export type Fp4Rounding = 'nearest-even' | 'stochastic';

/** Largest E2M1 magnitude. */
const E2M1_MAX = 6;

/**
 * v rounded onto the signed E2M1 grid after clipping to ±6. The grid's spacing is 0.5 below 2,
 * 1 in [2, 4) and 2 in [4, 6], so rounding v/spacing to an integer is rounding to a grid neighbour;
 * there, half-to-even on the integer is half-to-even on the E2M1 code's mantissa bit.
 * 'stochastic' needs `randomBits` (a uint32).
 */
export function roundE2M1(v: number, rounding: Fp4Rounding, randomBits?: number): number {
  const a = Math.min(Math.abs(v), E2M1_MAX);
  const step = a < 2 ? 0.5 : a < 4 ? 1 : 2;
  const r = roundToInteger(a / step, rounding, randomBits) * step;
  return v < 0 ? -r : r;
}

export interface Mxfp4Groups {
  readonly rows: number;
  readonly cols: number;
  readonly along: GroupAxis;
  readonly groupSize: number;
  /** Signed E2M1 values (x / 2^e rounded), row-major like the matrix. */
  readonly elements: Float64Array;
  /**
   * E8M0 exponents, one per group: for 'row', index r·⌈cols/32⌉ + ⌊c/32⌋; for 'column',
   * ⌊r/32⌋·cols + c.
   */
  readonly exponents: Int16Array;
}

export interface QuantizeMxfp4Options {
  along: GroupAxis;
  rounding: Fp4Rounding;
  /** 'truncation-free' (TetraJet, default) or 'ocp' (Microscaling baseline, clips above 6). */
  scaleRule?: MxScaleRule;
  /** Required for 'stochastic': one uint32 per element, drawn in row-major order. */
  rng?: Rng;
  /** Default 32. */
  groupSize?: number;
}

function groupIndex(q: { cols: number; along: GroupAxis; groupSize: number }, r: number, c: number): number {
  return q.along === 'row'
    ? r * Math.ceil(q.cols / q.groupSize) + Math.floor(c / q.groupSize)
    : Math.floor(r / q.groupSize) * q.cols + c;
}

/** Q_D or Q_S of TetraJet §3.3 on one operand: per-group scale, then E2M1 rounding of x / 2^e. */
export function quantizeMxfp4(x: Matrix, opts: QuantizeMxfp4Options): Mxfp4Groups {
  if (opts.rounding === 'stochastic' && opts.rng === undefined) {
    throw new RangeError("quantizeMxfp4: 'stochastic' rounding needs an rng");
  }
  const shape = { cols: x.cols, along: opts.along, groupSize: opts.groupSize ?? MXFP4_GROUP_SIZE };
  const groups =
    opts.along === 'row'
      ? x.rows * Math.ceil(x.cols / shape.groupSize)
      : Math.ceil(x.rows / shape.groupSize) * x.cols;
  const amax = new Float64Array(groups);
  for (let r = 0; r < x.rows; r++) {
    for (let c = 0; c < x.cols; c++) {
      const g = groupIndex(shape, r, c);
      amax[g] = Math.max(amax[g], Math.abs(x.data[r * x.cols + c]));
    }
  }
  const exponents = Int16Array.from(amax, (m) => mxfp4ScaleExponent(m, opts.scaleRule));
  const elements = new Float64Array(x.data.length);
  for (let r = 0; r < x.rows; r++) {
    for (let c = 0; c < x.cols; c++) {
      const i = r * x.cols + c;
      const bits = opts.rng === undefined ? undefined : opts.rng.nextUint32();
      elements[i] = roundE2M1(x.data[i] / 2 ** exponents[groupIndex(shape, r, c)], opts.rounding, bits);
    }
  }
  return { rows: x.rows, ...shape, elements, exponents };
}

/** elements × 2^e: the fake-quantized operand the simulated GEMM multiplies (as TetraJet's code does). */
export function dequantizeMxfp4(q: Mxfp4Groups): Matrix {
  const data = new Float64Array(q.elements.length);
  for (let r = 0; r < q.rows; r++) {
    for (let c = 0; c < q.cols; c++) {
      const i = r * q.cols + c;
      data[i] = q.elements[i] * 2 ** q.exponents[groupIndex(q, r, c)];
    }
  }
  return { data, rows: q.rows, cols: q.cols };
}
