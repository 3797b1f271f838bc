/**
 * Gauss–Legendre quadrature on [−1, 1] (nodes by Newton's iteration on P_n, Golub & Welsch's
 * classical alternative not needed at these sizes) and its "integration matrix"
 * Q_ij = ∫_{−1}^{y_i} L_j(y) dy, L_j the Lagrange basis on the nodes. With Q the running integral of
 * a function sampled at the nodes is Σ_j Q_ij f_j — exact for polynomials of degree < n and
 * spectrally accurate for smooth functions — which lets the analytic preconditioning integrate
 * exp(−∫(1 − l)) without evaluating its profile anywhere but at the nodes.
 */
import { checkInteger } from './checks.js';

export interface GaussLegendre {
  readonly nodes: Float64Array;
  readonly weights: Float64Array;
  /** Row-major n×n running-integral matrix (module comment). */
  readonly integration: Float64Array;
}

const cache = new Map<number, GaussLegendre>();

/** P_n(x) and P_n′(x) by the three-term recurrence. */
function legendre(n: number, x: number): { p: number; dp: number } {
  let p0 = 1;
  let p1 = x;
  for (let k = 2; k <= n; k++) {
    const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
    p0 = p1;
    p1 = p2;
  }
  const p = n === 0 ? 1 : p1;
  const dp = n === 0 ? 0 : (n * (x * p1 - p0)) / (x * x - 1);
  return { p, dp };
}

/** The n-point rule (cached). */
export function gaussLegendre(n: number): GaussLegendre {
  checkInteger('Gauss–Legendre points', n, 1, 64);
  const hit = cache.get(n);
  if (hit) return hit;
  const nodes = new Float64Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    for (let it = 0; it < 100; it++) {
      const { p, dp } = legendre(n, x);
      const dx = p / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-16) break;
    }
    const { dp } = legendre(n, x);
    nodes[n - 1 - i] = x;
    weights[n - 1 - i] = 2 / ((1 - x * x) * dp * dp);
  }
  const lagrange = (j: number, y: number): number => {
    let v = 1;
    for (let m = 0; m < n; m++) if (m !== j) v *= (y - nodes[m]) / (nodes[j] - nodes[m]);
    return v;
  };
  const integration = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const half = (nodes[i] + 1) / 2;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let m = 0; m < n; m++) s += weights[m] * lagrange(j, -1 + half * (nodes[m] + 1));
      integration[i * n + j] = half * s;
    }
  }
  const rule = { nodes, weights, integration };
  cache.set(n, rule);
  return rule;
}
