/**
 * Consistency-trajectory distillation (CTM, Kim et al. 2024; the toy of training_methods.md §5.5) with
 * a pluggable preconditioning (CTM's or Analytic-Precond's):
 *
 *   f_θ(x_t, t, s) = skip(t, s)·x_t + out(t, s)·D_θ(x_t, t, s)
 *   D_θ(x, t, s) = c_skip(t)·x + c_out(t)·F_θ(c_in(t)·x, c_noise(t), c_noise(s))   (EDM, σ_data estimated)
 *
 * Training pairs live on a decreasing time grid t_0 = t_max > … > t_{N−1} = t_min (EDM's ρ = 7
 * spacing, like CTM's discretised time): per sample n ~ U{0 … N − 2} (t = t_n), m ~ U{n + 1 … N − 1}
 * (s = t_m), u = t_{n+1}; x_t = x₀ + t·ε, x_u = one Heun step of the exact teacher from t to u, and
 *
 *   L = mean ‖f_θ(x_t, t, s) − sg[f_θ⁻(x_u, u, s)]‖²      (θ⁻ an EMA of θ, μ = 0.999)
 *
 * in x_s space (the note's distance; CTM's optional second mapping of both sides to t_min with the
 * stop-gradient student, its GAN and DSM terms are not used). At u = s the target is x_u itself (the
 * boundary condition). The student starts from the teacher: `prefitLoss` fits D_θ to D_φ for random
 * grid pairs in F space (EDM's λ-weighted denoiser loss), which both preconditionings share.
 *
 * Random streams: x₀ from rng.split(0), ε split(1), (n, m) split(2).
 */
import { ShapeError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { add, mul } from '../autograd/elementwise.js';
import { type F64, type Var, constant, noGrad } from '../autograd/var.js';
import type { ConditionalMlp } from './conditional-mlp.js';
import type { ConsistencyPreconditioning } from './consistency-preconditioning.js';
import { edmPreconditioning } from './edm.js';
import { meanSquaredError } from './epsilon-loss.js';
import { type EdmTeacher, teacherHeunStep } from './teacher.js';

/** A consistency-trajectory student: its network F_θ (scalars 'tNoise', 'sNoise') and preconditioning. */
export class ConsistencyStudent {
  readonly net: ConditionalMlp;
  readonly precond: ConsistencyPreconditioning;
  readonly sigmaData: number;

  constructor(net: ConditionalMlp, precond: ConsistencyPreconditioning, sigmaData: number) {
    const names = net.config.scalars.map((s) => s.name).join(',');
    if (
      names !== 'tNoise,sNoise' ||
      net.config.numClasses !== 0 ||
      net.config.outputDim !== net.config.inputDim
    ) {
      throw new ShapeError(
        `a consistency student's network takes x and the scalars tNoise, sNoise (no classes); got scalars '${names}'`,
      );
    }
    this.net = net;
    this.precond = precond;
    this.sigmaData = sigmaData;
  }

  /** F_θ's raw output and the per-row EDM coefficients c_skip(t), c_out(t), for rows with times t, s. */
  networkOutput(x: F64, t: ArrayLike<number>, s: ArrayLike<number>) {
    const [n, d] = x.shape;
    const cSkip = new Float64Array(n);
    const cOut = new Float64Array(n);
    const xin = new Float64Array(x.size);
    const tNoise = new Float64Array(n);
    const sNoise = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = edmPreconditioning(t[i], this.sigmaData);
      cSkip[i] = p.cSkip;
      cOut[i] = p.cOut;
      tNoise[i] = p.cNoise;
      sNoise[i] = edmPreconditioning(s[i], this.sigmaData).cNoise;
      for (let j = 0; j < d; j++) xin[i * d + j] = p.cIn * x.data[i * d + j];
    }
    const F = this.net.forward(constant(new Tensor(xin, x.shape, 'float64')), { tNoise, sNoise });
    return { F, cSkip, cOut };
  }

  /** D_θ(x, t, s) per row. */
  denoiser(x: F64, t: ArrayLike<number>, s: ArrayLike<number>): Var {
    const [n, d] = x.shape;
    const { F, cSkip, cOut } = this.networkOutput(x, t, s);
    const base = Float64Array.from(x.data, (v, k) => cSkip[Math.floor(k / d)] * v);
    return add(
      constant(new Tensor(base, x.shape, 'float64')),
      mul(constant(new Tensor(cOut, [n, 1], 'float64')), F),
    );
  }

  /** f_θ(x, t, s) per row (0 < s ≤ t). */
  jump(x: F64, t: ArrayLike<number>, s: ArrayLike<number>): Var {
    const [n, d] = x.shape;
    if (t.length !== n || s.length !== n)
      throw new ShapeError(`jump needs ${n} times t and s; got ${t.length} and ${s.length}`);
    const { F, cSkip, cOut } = this.networkOutput(x, t, s);
    const base = new Float64Array(x.size);
    const scale = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const { skip, out } = this.precond.coefficients(t[i], s[i]);
      scale[i] = out * cOut[i];
      for (let j = 0; j < d; j++) base[i * d + j] = (skip + out * cSkip[i]) * x.data[i * d + j];
    }
    return add(
      constant(new Tensor(base, x.shape, 'float64')),
      mul(constant(new Tensor(scale, [n, 1], 'float64')), F),
    );
  }

  /** f_θ for one (t, s) over the batch, without a graph (sampling and evaluation). */
  jumpAll(x: F64, t: number, s: number): F64 {
    const n = x.shape[0];
    return noGrad(() => this.jump(x, new Float64Array(n).fill(t), new Float64Array(n).fill(s))).value;
  }
}

/** Per-row grid indices (n, m) with n < m and u = grid[n + 1] (module comment). */
export function sampleJumpPairs(
  n: number,
  gridSize: number,
  rng: Rng,
): { tIdx: Int32Array; sIdx: Int32Array } {
  const r = rng.split(2);
  const tIdx = new Int32Array(n);
  const sIdx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = Math.min(gridSize - 2, Math.floor(r.uniform() * (gridSize - 1)));
    tIdx[i] = a;
    sIdx[i] = Math.min(gridSize - 1, a + 1 + Math.floor(r.uniform() * (gridSize - 1 - a)));
  }
  return { tIdx, sIdx };
}

function noisedData(teacher: EdmTeacher, batch: number, t: Float64Array, rng: Rng): F64 {
  const x0 = teacher.sampleData(batch, rng.split(0));
  const eps = new Float64Array(x0.size);
  rng.split(1).fillNormal(eps);
  const d = x0.shape[1];
  return new Tensor(
    Float64Array.from(x0.data, (v, k) => v + t[Math.floor(k / d)] * eps[k]),
    x0.shape,
    'float64',
  );
}

/** The CTM loss of the module comment for one batch. */
export function ctmLoss(
  student: ConsistencyStudent,
  target: ConsistencyStudent,
  teacher: EdmTeacher,
  grid: readonly number[],
  batch: number,
  rng: Rng,
): Var {
  const { tIdx, sIdx } = sampleJumpPairs(batch, grid.length, rng);
  const t = Float64Array.from(tIdx, (k) => grid[k]);
  const u = Float64Array.from(tIdx, (k) => grid[k + 1]);
  const s = Float64Array.from(sIdx, (k) => grid[k]);
  const xt = noisedData(teacher, batch, t, rng);
  const xu = teacherHeunStep(teacher, xt, t, u);
  const tgt = noGrad(() => target.jump(xu, u, s)).value;
  return meanSquaredError(student.jump(xt, t, s), constant(tgt));
}

/** Fits D_θ to the teacher at random grid pairs (F-space MSE = EDM's λ-weighted denoiser loss). */
export function prefitLoss(
  student: ConsistencyStudent,
  teacher: EdmTeacher,
  grid: readonly number[],
  batch: number,
  rng: Rng,
): Var {
  const { tIdx, sIdx } = sampleJumpPairs(batch, grid.length, rng);
  const t = Float64Array.from(tIdx, (k) => grid[k]);
  const s = Float64Array.from(sIdx, (k) => grid[k]);
  const xt = noisedData(teacher, batch, t, rng);
  const D = teacher.denoise(xt, t);
  const d = xt.shape[1];
  const [n] = xt.shape;
  const fStar = new Float64Array(xt.size);
  for (let i = 0; i < n; i++) {
    const p = edmPreconditioning(t[i], student.sigmaData);
    for (let j = 0; j < d; j++)
      fStar[i * d + j] = (D.data[i * d + j] - p.cSkip * xt.data[i * d + j]) / p.cOut;
  }
  return meanSquaredError(
    student.networkOutput(xt, t, s).F,
    constant(new Tensor(fStar, xt.shape, 'float64')),
  );
}
