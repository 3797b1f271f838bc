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
  // a / step is exact (step is a power of two), so floor and fraction are exact: the integer
  // roundings of numerics/int-quant.ts, inlined because this runs once per element per GEMM operand.
  const t = a / step;
  const f = Math.floor(t);
  const d = t - f;
  let r: number;
  if (rounding === 'nearest-even') r = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  else if (rounding === 'stochastic') {
    if (randomBits === undefined) throw new RangeError("roundE2M1: 'stochastic' rounding needs randomBits");
    r = randomBits < d * 4294967296 ? f + 1 : f;
  } else {
    throw new RangeError(
      `roundE2M1: rounding must be 'nearest-even' or 'stochastic'; got ${String(rounding)}`,
    );
  }
  r *= step;
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

/**
 * Group index of every element, row-major: 'row' groups run along a row, 'column' groups down a
 * column (the layout `exponents` documents).
 */
function elementGroups(rows: number, cols: number, along: GroupAxis, groupSize: number): Int32Array {
  const out = new Int32Array(rows * cols);
  const perRow = Math.ceil(cols / groupSize);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] =
        along === 'row' ? r * perRow + Math.floor(c / groupSize) : Math.floor(r / groupSize) * cols + c;
    }
  }
  return out;
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
  const groupOf = elementGroups(x.rows, x.cols, opts.along, shape.groupSize);
  const amax = new Float64Array(groups);
  const data = x.data;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > amax[groupOf[i]]) amax[groupOf[i]] = a;
  }
  const exponents = Int16Array.from(amax, (m) => mxfp4ScaleExponent(m, opts.scaleRule));
  const scales = Float64Array.from(exponents, (e) => 2 ** e);
  const elements = new Float64Array(data.length);
  const rng = opts.rng;
  for (let i = 0; i < data.length; i++) {
    const bits = rng === undefined ? undefined : rng.nextUint32();
    elements[i] = roundE2M1(data[i] / scales[groupOf[i]], opts.rounding, bits);
  }
  return { rows: x.rows, ...shape, elements, exponents };
}

/** elements × 2^e: the fake-quantized operand the simulated GEMM multiplies (as TetraJet's code does). */
export function dequantizeMxfp4(q: Mxfp4Groups): Matrix {
  const groupOf = elementGroups(q.rows, q.cols, q.along, q.groupSize);
  const scales = Float64Array.from(q.exponents, (e) => 2 ** e);
  const data = new Float64Array(q.elements.length);
  for (let i = 0; i < data.length; i++) data[i] = q.elements[i] * scales[groupOf[i]];
  return { data, rows: q.rows, cols: q.cols };
}
