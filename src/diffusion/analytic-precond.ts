/**
 * Analytic-Precond (Zheng et al., ICLR 2025, "Elucidating the Preconditioning in Consistency
 * Distillation"; training_methods.md §5.2–§5.3). No code or full text was available; the form below
 * is the note's reconstruction [recon], implemented as documented with every choice a parameter, and
 * the experiment measures the consistency gap directly so that no conclusion rests on it.
 *
 * The teacher PF-ODE dx/dt = (x − D_φ)/t is rewritten, for any scalar functions l_t and s_t > 0, with
 * u = D_φ − l_t·x and h = u/s_t, as dx/dt = ((1 − l_t)/t)·x − (s_t/t)·h. Integrating the linear part
 * exactly and freezing h at (x_t, t) gives the first-order jump from t to s (note §5.3):
 *
 *   x_s ≈ α(t, s)·x_t + γ(t, s)·h(x_t, t)
 *   α(t, s) = exp(−∫_s^t (1 − l_u)/u du),   γ(t, s) = ∫_s^t (s_u/u)·exp(−∫_s^u (1 − l_v)/v dv) du
 *
 * so the preconditioning is skip = α − γ·l_t/s_t and out = γ/s_t (student in denoiser form): the
 * 'forward' form. With l ≡ 0, s ≡ 1 it is CTM's (s/t, 1 − s/t); with s_u = 1 − l_u, γ = 1 − α.
 *
 * The 'backward' form (default) freezes h at the target instead, h(x_s, s) = (D − l_s·x_s)/s_s with the
 * student's D standing for the teacher's denoiser at (x_s, s), and solves the implicit step for x_s:
 * with k = 1 + γ·l_s/s_s, skip = α/k and out = (γ/s_s)/k. The note reports that the paper uses "a
 * backward-Euler form of the preconditioning for stability on long jumps" (§5.2); this is our reading
 * of it [recon]. Why it matters, measured (experiment analytic-precond): with s_t = rms residual the
 * forward form's out = γ/s_t reaches ~10⁶ on long jumps for zero-mean data (s_t → 0 as t grows), so any
 * error of a learned D_θ is amplified by that factor; the backward form keeps out ≤ 1/l_s (≈ 1 near
 * t_min), and for jumps to t_min it tends to (skip, out) → (0, 1/l_s) ≈ CTM's (0, 1) — the note's "all
 * first-order choices nearly coincide for s → ε". Both forms reduce to CTM's for l ≡ 0, s ≡ 1.
 *
 * The profile (note §5.2–§5.3), estimated by Monte Carlo over one fixed sample of (x₀, ε) — the same
 * draws at every t, so the estimates are smooth functions of t:
 * - l_t = E_{x_t}[tr ∇_x D_φ(x_t, t)]/d ('jacobian-trace'; the least-squares fit of the Jacobian by a
 *   scaled identity, the paper's l_t with its i-DODE motivation), or 0 ('zero', CTM).
 * - s_t: 'rms-residual' = √(E‖u_t‖²/d). This makes h = u/s_t vary as little as possible along teacher
 *   trajectories: minimising E‖dh/dt‖² over d ln s/dt gives d ln s_t/dt = E⟨u, du/dt⟩/E‖u‖², and since the
 *   PF-ODE transports q_t, E⟨u, du/dt⟩ = ½·d E‖u_t‖²/dt, so s_t ∝ √E‖u_t‖² exactly (the constant cancels
 *   in γ/s_t). It stands in for the paper's Eq. 17 (a minimiser of its gap bound for s ≈ t), which could
 *   not be checked. 'one-minus-l' = 1 − l_t (note's variant (2)); 'one' (CTM). s_t is floored at
 *   `sFloor`·σ̂_data so a vanishing residual (Gaussian data) cannot divide by 0.
 * Defaults: 4096 samples (the paper's reported estimate size); the paper evaluates at 120 timesteps and
 * reuses them — here the same estimator is evaluated at every quadrature node instead (≈ 8 per 0.25 in
 * ln t), which removes interpolation error at the same order of cost.
 *
 * Why the gap vanishes for Gaussian data N(μ, σ_d²·I): D_φ = l_t·x + (1 − l_t)·μ with l_t = σ_d²/(σ_d² +
 * t²) exactly, for every x, so the estimator returns the exact l_t and u_t = (1 − l_t)·μ; the exact
 * solution is x_s − μ = √((σ_d² + s²)/(σ_d² + t²))·(x_t − μ), and α(t, s) = exp(−∫_s^t u/(σ_d² + u²) du) is that
 * ratio, while s_t ∝ (1 − l_t) (either rule; for μ = 0 u ≡ 0 and the h term vanishes) gives γ/s_t·u_t =
 * (1 − α)·μ. Every approximation in the jump — freezing h — is exact because h is constant along the
 * trajectory, so f = x_s^ODE to quadrature accuracy (Gauss–Legendre, spectrally accurate for these
 * smooth integrands): the zero-gap unit test of the forward form. In the backward form the jump is
 * exact when D is the teacher's denoiser at the target, D_φ(x_s, s) (h is constant, so freezing it at s
 * is as exact as at t); its teacher-initialised jump, which uses D_φ(x_t, t), is not. CTM's s/t is not
 * exact either way.
 *
 * Coefficients are exact (to quadrature) at the `anchors` — every t and s the user will ask for (the
 * distillation grid and any evaluation times); the cumulative integrals A(ρ) = ∫(1 − l) dρ and
 * G(ρ) = ∫ s·e^{−A} dρ over ρ = ln t are tabulated there with Gauss–Legendre panels of at most
 * `maxPanel` in ρ, so α(t, s) = e^{−(A(t) − A(s))} and γ(t, s) = e^{A(s)}·(G(t) − G(s)). Other times are
 * an UnsupportedOptionError (pass them as anchors).
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { Rng, type Seed } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkInRange, checkInteger, checkPositive } from './checks.js';
import {
  type ConsistencyPreconditioning,
  type JumpCoefficients,
  checkJumpTimes,
} from './consistency-preconditioning.js';
import { gaussLegendre } from './gauss-legendre.js';
import type { EdmTeacher } from './teacher.js';

export type LRule = 'jacobian-trace' | 'zero';
export type SRule = 'rms-residual' | 'one-minus-l' | 'one';

export interface AnalyticProfileOptions {
  /** Monte-Carlo sample size (default 4096). */
  samples?: number;
  seed?: Seed;
  /** Default 'jacobian-trace'. */
  lRule?: LRule;
  /** Default 'rms-residual'. */
  sRule?: SRule;
  /** s_t ≥ sFloor·σ̂_data (default 1e-8). */
  sFloor?: number;
}

/** l_t and s_t of the module comment, as functions of t. */
export class AnalyticProfile {
  readonly lRule: LRule;
  readonly sRule: SRule;
  private readonly teacher: EdmTeacher;
  private readonly x0: F64;
  private readonly eps: Float64Array;
  private readonly floor: number;

  constructor(teacher: EdmTeacher, opts: AnalyticProfileOptions = {}) {
    const {
      samples = 4096,
      seed = 0,
      lRule = 'jacobian-trace',
      sRule = 'rms-residual',
      sFloor = 1e-8,
    } = opts;
    checkInteger('profile samples', samples, 2);
    checkPositive('sFloor', sFloor);
    if (!['jacobian-trace', 'zero'].includes(lRule)) {
      throw new UnsupportedOptionError(
        `lRule must be 'jacobian-trace' or 'zero'; got ${JSON.stringify(lRule)}`,
      );
    }
    if (!['rms-residual', 'one-minus-l', 'one'].includes(sRule)) {
      throw new UnsupportedOptionError(
        `sRule must be 'rms-residual', 'one-minus-l' or 'one'; got ${JSON.stringify(sRule)}`,
      );
    }
    this.teacher = teacher;
    this.lRule = lRule;
    this.sRule = sRule;
    const root = Rng.fromSeed(seed);
    this.x0 = teacher.sampleData(samples, root.split(0));
    this.eps = new Float64Array(this.x0.size);
    root.split(1).fillNormal(this.eps);
    let m = 0;
    let sq = 0;
    for (const v of this.x0.data) {
      m += v;
      sq += v * v;
    }
    m /= this.x0.size;
    this.floor = sFloor * Math.sqrt(Math.max(sq / this.x0.size - m * m, 1e-300));
  }

  /** (l_t, s_t) at EDM time t > 0. */
  at(t: number): { l: number; s: number } {
    checkPositive('profile time t', t);
    const needsL = this.lRule === 'jacobian-trace';
    const needsU = this.sRule === 'rms-residual';
    if (!needsL && !needsU) return { l: 0, s: 1 };
    const [n, d] = this.x0.shape;
    const xt = new Float64Array(this.x0.size);
    for (let i = 0; i < xt.length; i++) xt[i] = this.x0.data[i] + t * this.eps[i];
    const x = new Tensor(xt, this.x0.shape, 'float64');
    let l = 0;
    let D: F64 | null = null;
    if (needsL) {
      let tr: Float64Array;
      if (this.teacher.denoiseWithTrace) {
        const both = this.teacher.denoiseWithTrace(x, t);
        tr = both.trace;
        D = both.denoised;
      } else {
        tr = finiteDifferenceTrace(this.teacher, x, t);
      }
      for (let i = 0; i < n; i++) l += tr[i];
      l /= n * d;
    }
    let s: number;
    if (needsU) {
      D ??= this.teacher.denoise(x, t);
      let ss = 0;
      for (let i = 0; i < xt.length; i++) ss += (D.data[i] - l * xt[i]) ** 2;
      s = Math.sqrt(ss / (n * d));
    } else {
      s = this.sRule === 'one-minus-l' ? 1 - l : 1;
    }
    return { l, s: Math.max(s, this.floor) };
  }
}

/** tr ∇D by central differences, step 1e-4·(1 + t) per coordinate (2d extra denoiser calls). */
export function finiteDifferenceTrace(teacher: EdmTeacher, x: F64, t: number): Float64Array {
  const [n, d] = x.shape;
  const h = 1e-4 * (1 + t);
  const tr = new Float64Array(n);
  for (let j = 0; j < d; j++) {
    const up = Float64Array.from(x.data);
    const dn = Float64Array.from(x.data);
    for (let i = 0; i < n; i++) {
      up[i * d + j] += h;
      dn[i * d + j] -= h;
    }
    const Du = teacher.denoise(new Tensor(up, x.shape, 'float64'), t);
    const Dd = teacher.denoise(new Tensor(dn, x.shape, 'float64'), t);
    for (let i = 0; i < n; i++) tr[i] += (Du.data[i * d + j] - Dd.data[i * d + j]) / (2 * h);
  }
  return tr;
}

export type JumpForm = 'backward' | 'forward';

export interface AnalyticPreconditioningOptions {
  /** Every time (t or s) coefficients will be asked for. */
  anchors: readonly number[];
  /** Where h is frozen: 'backward' (default, at the target s) or 'forward' (at t, note §5.3). */
  form?: JumpForm;
  /** Gauss–Legendre points per panel (default 8). */
  nodes?: number;
  /** Largest panel width in ln t (default 0.25). */
  maxPanel?: number;
  /** Name reported in results (default 'analytic'). */
  name?: string;
}

export interface AnalyticPreconditioning extends ConsistencyPreconditioning {
  /** α(t, s) and γ(t, s) of the module comment. */
  alphaGamma(t: number, s: number): { alpha: number; gamma: number };
  /** The profile value at an anchor. */
  profileAt(t: number): { l: number; s: number };
}

/** The analytic preconditioning for `profile` (any (l_t, s_t) functions), exact at the anchors. */
export function analyticPreconditioning(
  profile: { at(t: number): { l: number; s: number } },
  opts: AnalyticPreconditioningOptions,
): AnalyticPreconditioning {
  const { nodes = 8, maxPanel = 0.25, name = 'analytic', form = 'backward' } = opts;
  if (form !== 'backward' && form !== 'forward') {
    throw new UnsupportedOptionError(`form must be 'backward' or 'forward'; got ${JSON.stringify(form)}`);
  }
  checkInRange('maxPanel', maxPanel, 0, 10, { lo: true });
  const anchors = [...new Set(opts.anchors)].sort((a, b) => a - b);
  if (anchors.length === 0)
    throw new UnsupportedOptionError('analytic preconditioning needs at least one anchor time');
  for (const a of anchors) checkPositive('anchor time', a);
  const rule = gaussLegendre(nodes);
  const index = new Map<number, number>();
  const A = new Float64Array(anchors.length);
  const G = new Float64Array(anchors.length);
  const prof = anchors.map((a) => profile.at(a));
  anchors.forEach((a, k) => index.set(a, k));
  const f = new Float64Array(nodes);
  const g = new Float64Array(nodes);
  let aCum = 0;
  let gCum = 0;
  for (let k = 1; k < anchors.length; k++) {
    const r0 = Math.log(anchors[k - 1]);
    const r1 = Math.log(anchors[k]);
    const panels = Math.max(1, Math.ceil((r1 - r0) / maxPanel));
    const width = (r1 - r0) / panels;
    for (let p = 0; p < panels; p++) {
      const a = r0 + p * width;
      const half = width / 2;
      for (let i = 0; i < nodes; i++) {
        const pr = profile.at(Math.exp(a + half * (rule.nodes[i] + 1)));
        f[i] = 1 - pr.l;
        g[i] = pr.s;
      }
      let panelG = 0;
      for (let i = 0; i < nodes; i++) {
        let run = 0;
        for (let j = 0; j < nodes; j++) run += rule.integration[i * nodes + j] * f[j];
        panelG += rule.weights[i] * g[i] * Math.exp(-(aCum + half * run));
      }
      let panelA = 0;
      for (let j = 0; j < nodes; j++) panelA += rule.weights[j] * f[j];
      gCum += half * panelG;
      aCum += half * panelA;
    }
    A[k] = aCum;
    G[k] = gCum;
  }
  const at = (t: number): number => {
    const k = index.get(t);
    if (k === undefined) {
      throw new UnsupportedOptionError(
        `time ${t} is not one of the ${anchors.length} anchors the analytic coefficients were tabulated at; add it to anchors`,
      );
    }
    return k;
  };
  const alphaGamma = (t: number, s: number) => {
    checkJumpTimes(t, s);
    const kt = at(t);
    const ks = at(s);
    return { alpha: Math.exp(-(A[kt] - A[ks])), gamma: Math.exp(A[ks]) * (G[kt] - G[ks]) };
  };
  return {
    name,
    alphaGamma,
    profileAt: (t) => prof[at(t)],
    coefficients(t, s): JumpCoefficients {
      const { alpha, gamma } = alphaGamma(t, s);
      if (form === 'forward') {
        const { l, s: st } = prof[at(t)];
        return { skip: alpha - (gamma * l) / st, out: gamma / st };
      }
      const { l, s: ss } = prof[at(s)];
      const k = 1 + (gamma * l) / ss;
      return { skip: alpha / k, out: gamma / ss / k };
    },
  };
}
