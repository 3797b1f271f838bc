/**
 * Maximum mean discrepancy with a Gaussian (RBF) kernel k(x, y) = exp(−‖x − y‖²/(2h²)), unbiased
 * estimator (Gretton et al. 2012, "A Kernel Two-Sample Test", JMLR, Lemma 6):
 *
 *   MMD²_u = 1/(n(n−1))·Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1))·Σ_{i≠j} k(y_i, y_j) − 2/(nm)·Σ_{i,j} k(x_i, y_j)
 *
 * Being unbiased it is ≈ 0 (and can be slightly negative) for two samples of one distribution, and
 * grows with their difference. Bandwidth: a fixed h when given — what a training curve should use,
 * so every point is measured with the same kernel — otherwise Gretton et al.'s median heuristic (§8:
 * h = the median distance between points of the pooled sample), computed over at most 1000 evenly
 * strided pooled points so it costs O(10⁶) distances at most.
 */
import { ShapeError } from '../core/errors.js';
import { formatShape } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkBatch, checkInteger, checkPositive } from './checks.js';

export interface MmdOptions {
  /** Kernel bandwidth h > 0 (default: the median heuristic). */
  bandwidth?: number;
}

export interface MmdResult {
  /** The unbiased MMD² estimate. */
  mmd2: number;
  /** The bandwidth used. */
  bandwidth: number;
}

/** Median pairwise distance of the pooled sample (over ≤ 1000 strided points). */
export function medianBandwidth(x: F64, y: F64): number {
  const d = x.shape[1];
  const total = x.shape[0] + y.shape[0];
  const stride = Math.max(1, Math.ceil(total / 1000));
  const pts: number[] = [];
  for (let i = 0; i < total; i += stride) pts.push(i);
  const at = (i: number, j: number): number =>
    i < x.shape[0] ? x.data[i * d + j] : y.data[(i - x.shape[0]) * d + j];
  const dist: number[] = [];
  for (let a = 0; a < pts.length; a++) {
    for (let b = a + 1; b < pts.length; b++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (at(pts[a], j) - at(pts[b], j)) ** 2;
      dist.push(Math.sqrt(s));
    }
  }
  dist.sort((p, q) => p - q);
  const mid = dist.length >> 1;
  const med = dist.length % 2 === 1 ? dist[mid] : 0.5 * (dist[mid - 1] + dist[mid]);
  return med > 0 ? med : 1;
}

function kernelSum(a: F64, b: F64, gamma: number, skipDiagonal: boolean): number {
  const d = a.shape[1];
  const A = a.data;
  const B = b.data;
  let s = 0;
  for (let i = 0; i < a.shape[0]; i++) {
    for (let j = skipDiagonal ? i + 1 : 0; j < b.shape[0]; j++) {
      let sq = 0;
      for (let k = 0; k < d; k++) {
        const diff = A[i * d + k] - B[j * d + k];
        sq += diff * diff;
      }
      s += Math.exp(-gamma * sq);
    }
  }
  // The within-sample sums are symmetric: each unordered pair stands for two ordered ones.
  return skipDiagonal ? 2 * s : s;
}

/** Unbiased MMD² between x [n, d] and y [m, d] (n, m ≥ 2) with an RBF kernel (module comment). */
export function mmdRbf(x: F64, y: F64, opts: MmdOptions = {}): MmdResult {
  const { n, d } = checkBatch('x', x);
  const { n: m } = checkBatch('y', y);
  if (y.shape[1] !== d) {
    throw new ShapeError(
      `x and y must have the same dimension; got ${formatShape(x.shape)} and ${formatShape(y.shape)}`,
    );
  }
  checkInteger('x sample count (unbiased MMD needs two)', n, 2);
  checkInteger('y sample count (unbiased MMD needs two)', m, 2);
  const h = opts.bandwidth ?? medianBandwidth(x, y);
  checkPositive('MMD bandwidth', h);
  const gamma = 1 / (2 * h * h);
  const kxx = kernelSum(x, x, gamma, true) / (n * (n - 1));
  const kyy = kernelSum(y, y, gamma, true) / (m * (m - 1));
  const kxy = kernelSum(x, y, gamma, false) / (n * m);
  return { mmd2: kxx + kyy - 2 * kxy, bandwidth: h };
}
