import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import type { F64 } from '../../src/autograd/var.js';
import { gaussLegendre } from '../../src/diffusion/gauss-legendre.js';
import { GaussianMixture } from '../../src/diffusion/gaussian-mixture.js';
import { mixtureTeacher, solveTeacherOde, teacherHeunStep } from '../../src/diffusion/teacher.js';
import {
  AnalyticProfile,
  analyticPreconditioning,
  finiteDifferenceTrace,
} from '../../src/diffusion/analytic-precond.js';
import { ctmPreconditioning } from '../../src/diffusion/consistency-preconditioning.js';
import { consistencyGaps, teacherInitialisedJump } from '../../src/diffusion/consistency-gap.js';
import { edmSigmaGrid } from '../../src/diffusion/edm.js';
import { ConditionalMlp } from '../../src/diffusion/conditional-mlp.js';
import { ConsistencyStudent, ctmLoss, prefitLoss, sampleJumpPairs } from '../../src/diffusion/ctm.js';

const grid = [...edmSigmaGrid({ steps: 14 })].slice(0, 14);
const pts = (rows: number[][]): F64 =>
  new Tensor(Float64Array.from(rows.flat()), [rows.length, rows[0].length], 'float64');
const probe = pts([
  [0.3, -1.2],
  [5, 2],
  [-40, 70],
]);

test('Gauss–Legendre: exact for degree ≤ 2n − 1, running integrals exact for degree < n', () => {
  const { nodes, weights, integration } = gaussLegendre(6);
  const poly = (y: number) => 3 * y ** 11 - y ** 10 + 2 * y ** 3 + 1;
  const exact = (-2 / 11) * 1 + 2; // ∫₋₁¹: odd terms vanish, −y¹⁰ → −2/11, 1 → 2
  let q = 0;
  for (let i = 0; i < 6; i++) q += weights[i] * poly(nodes[i]);
  assert.ok(Math.abs(q - exact) < 1e-14);
  const p5 = (y: number) => y ** 5 - 2 * y ** 2 + 0.5;
  const P5 = (y: number) => y ** 6 / 6 - (2 * y ** 3) / 3 + 0.5 * y;
  for (let i = 0; i < 6; i++) {
    let run = 0;
    for (let j = 0; j < 6; j++) run += integration[i * 6 + j] * p5(nodes[j]);
    assert.ok(Math.abs(run - (P5(nodes[i]) - P5(-1))) < 1e-14);
  }
});

test('teacher ODE: RK4 in ln t matches the closed-form Gaussian trajectory; Heun is second order', () => {
  const g = new GaussianMixture({ means: [[0.7, -0.2]], stds: [0.5] });
  const teacher = mixtureTeacher(g);
  const exact = (x: F64, t: number, s: number) => {
    const r = Math.sqrt((0.25 + s * s) / (0.25 + t * t));
    const mu = [0.7, -0.2];
    return Float64Array.from(x.data, (v, i) => mu[i % 2] + r * (v - mu[i % 2]));
  };
  const got = solveTeacherOde(teacher, probe, 80, 0.002).data;
  const want = exact(probe, 80, 0.002);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-7, `${v} vs ${want[i]}`));
  const err = (h: number) => {
    const t = new Float64Array(3).fill(1);
    const u = new Float64Array(3).fill(1 - h);
    const y = teacherHeunStep(teacher, probe, t, u).data;
    const w = exact(probe, 1, 1 - h);
    return Math.max(...[...y].map((v, i) => Math.abs(v - w[i])));
  };
  const ratio = err(0.1) / err(0.05);
  assert.ok(ratio > 6 && ratio < 10, `local error ratio ${ratio} (third-order local error → 8)`);
});

test('profile: l_t = σ_d²/(σ_d² + t²) for Gaussian data; finite-difference trace agrees with the analytic one', () => {
  const g = new GaussianMixture({ means: [[0, 0]], stds: [0.5] });
  const prof = new AnalyticProfile(mixtureTeacher(g), { samples: 16 });
  for (const t of [0.01, 0.5, 3, 80]) assert.ok(Math.abs(prof.at(t).l - 0.25 / (0.25 + t * t)) < 1e-15);
  const ring = new GaussianMixture({
    means: Array.from({ length: 5 }, (_, k) => [Math.cos(k), Math.sin(k)]),
    stds: new Array<number>(5).fill(0.2),
  });
  const teacher = mixtureTeacher(ring);
  const x = pts([
    [0.5, 0.1],
    [-0.2, 0.9],
  ]);
  const fd = finiteDifferenceTrace(teacher, x, 0.3);
  const exact = ring.denoiserJacobianTrace(x, { alpha: 1, sigma: 0.3 });
  fd.forEach((v, i) => assert.ok(Math.abs(v - exact[i]) < 1e-6));
  const noTrace = { ...teacher, denoiseWithTrace: undefined };
  const a = new AnalyticProfile(teacher, { samples: 64 }).at(0.4);
  const b = new AnalyticProfile(noTrace, { samples: 64 }).at(0.4);
  assert.ok(Math.abs(a.l - b.l) < 1e-6 && Math.abs(a.s - b.s) < 1e-6);
});

test('CTM: skip = s/t, out = 1 − s/t; the analytic machinery with l ≡ 0, s ≡ 1 reproduces it in both forms', () => {
  const ctm = ctmPreconditioning();
  assert.deepEqual(ctm.coefficients(2, 2), { skip: 1, out: 0 });
  assert.deepEqual(ctm.coefficients(4, 1), { skip: 0.25, out: 0.75 });
  for (const form of ['forward', 'backward'] as const) {
    const p = analyticPreconditioning({ at: () => ({ l: 0, s: 1 }) }, { anchors: grid, form });
    for (const t of grid) {
      for (const s of grid) {
        if (s > t) continue;
        const c = p.coefficients(t, s);
        assert.ok(
          Math.abs(c.skip - s / t) < 1e-11 && Math.abs(c.out - (1 - s / t)) < 1e-11,
          `${form} ${t} ${s}`,
        );
      }
    }
  }
});

test('s_t = 1 − l_t gives γ = 1 − α; quadrature converges (panel 0.25 vs 0.05 agree to 1e-9)', () => {
  const ring = new GaussianMixture({
    means: Array.from({ length: 8 }, (_, k) => [Math.cos((k * Math.PI) / 4), Math.sin((k * Math.PI) / 4)]),
    stds: new Array<number>(8).fill(0.1),
  });
  const teacher = mixtureTeacher(ring);
  const small = [80, 5, 0.8, 0.1, 0.002];
  const lOnly = analyticPreconditioning(
    new AnalyticProfile(teacher, { samples: 128, sRule: 'one-minus-l' }),
    {
      anchors: small,
    },
  );
  const prof = new AnalyticProfile(teacher, { samples: 128 });
  const coarse = analyticPreconditioning(prof, { anchors: small, maxPanel: 0.25 });
  const fine = analyticPreconditioning(prof, { anchors: small, maxPanel: 0.05 });
  for (let i = 0; i < small.length; i++) {
    for (let j = i; j < small.length; j++) {
      const [t, s] = [small[i], small[j]];
      const { alpha, gamma } = lOnly.alphaGamma(t, s);
      assert.ok(Math.abs(gamma - (1 - alpha)) < 1e-10, `γ = 1 − α at ${t} → ${s}`);
      const a = coarse.alphaGamma(t, s);
      const b = fine.alphaGamma(t, s);
      assert.ok(Math.abs(a.alpha - b.alpha) < 1e-9 * (1 + b.alpha), `α ${t} ${s}`);
      assert.ok(Math.abs(a.gamma - b.gamma) < 1e-9 * (1 + Math.abs(b.gamma)), `γ ${t} ${s}`);
    }
  }
});

test('zero gap: for Gaussian data the analytic (forward) jump is the exact ODE solution to float error', () => {
  // Why (analytic-precond.ts): D = l_t·x + (1 − l_t)·μ with l_t = σ_d²/(σ_d² + t²) exactly, so
  // α(t, s) = √((σ_d² + s²)/(σ_d² + t²)) and h = u/s_t is constant along the trajectory.
  for (const mean of [
    [0, 0],
    [0.7, -0.4],
  ]) {
    const g = new GaussianMixture({ means: [mean], stds: [0.5] });
    const teacher = mixtureTeacher(g);
    for (const sRule of ['rms-residual', 'one-minus-l'] as const) {
      const pre = analyticPreconditioning(new AnalyticProfile(teacher, { samples: 32, sRule }), {
        anchors: grid,
        form: 'forward',
      });
      const jump = teacherInitialisedJump(teacher, pre);
      const ctmJump = teacherInitialisedJump(teacher, ctmPreconditioning());
      let worst = 0;
      let ctmWorst = 0;
      for (const t of grid) {
        for (const s of grid) {
          if (!(s < t)) continue;
          const r = Math.sqrt((0.25 + s * s) / (0.25 + t * t));
          const exact = Float64Array.from(probe.data, (v, i) => mean[i % 2] + r * (v - mean[i % 2]));
          const f = jump(probe, t, s).data;
          const c = ctmJump(probe, t, s).data;
          exact.forEach((e, i) => {
            worst = Math.max(worst, Math.abs(f[i] - e) / (1 + Math.abs(e)));
            ctmWorst = Math.max(ctmWorst, Math.abs(c[i] - e) / (1 + Math.abs(e)));
          });
        }
      }
      assert.ok(worst < 1e-12, `μ = ${mean}, ${sRule}: worst relative error ${worst}`);
      assert.ok(ctmWorst > 1e-2, `CTM is not exact for Gaussians (${ctmWorst})`);
    }
    // The backward form is exact when its D is the teacher's denoiser at the target (x_s, s).
    const back = analyticPreconditioning(new AnalyticProfile(teacher, { samples: 32 }), { anchors: grid });
    for (const [t, s] of [
      [grid[0], grid[13]],
      [grid[3], grid[7]],
    ]) {
      const r = Math.sqrt((0.25 + s * s) / (0.25 + t * t));
      const xs = new Tensor(
        Float64Array.from(probe.data, (v, i) => mean[i % 2] + r * (v - mean[i % 2])),
        probe.shape,
        'float64',
      );
      const Ds = teacher.denoise(xs, s);
      const { skip, out } = back.coefficients(t, s);
      probe.data.forEach((v, i) => {
        const f = skip * v + out * Ds.data[i];
        assert.ok(Math.abs(f - xs.data[i]) < 1e-11 * (1 + Math.abs(xs.data[i])), `backward ${t} → ${s}`);
      });
    }
  }
});

test('consistency gap on a grid: ≈ 0 for the exact jump, > 0 for CTM; gap_D is (x_s − skip·x_t)/out vs D_φ', () => {
  const g = new GaussianMixture({ means: [[0.4, 0.1]], stds: [0.5] });
  const teacher = mixtureTeacher(g);
  const pre = analyticPreconditioning(new AnalyticProfile(teacher, { samples: 32 }), {
    anchors: grid,
    form: 'forward',
  });
  const ctm = ctmPreconditioning();
  const sub = [grid[0], grid[4], grid[9], grid[13]];
  const gaps = consistencyGaps(
    teacher,
    {
      analytic: { jump: teacherInitialisedJump(teacher, pre), precond: pre },
      ctm: { jump: teacherInitialisedJump(teacher, ctm), precond: ctm },
    },
    { grid: sub, samples: 64, seed: 3 },
  );
  assert.equal(gaps.analytic.length, 6);
  // What remains is RK4's error (relative ~1e-8 of x_t, whose scale is t).
  for (const p of gaps.analytic)
    assert.ok(p.gapX < 3e-8 * p.t && (p.gapD as number) < 1e-5, `${p.t} → ${p.s}: ${p.gapX} ${p.gapD}`);
  for (const p of gaps.ctm) assert.ok(p.gapX > 1e-4);
  // Recompute the first CTM point by hand from the documented draws (x₀ split(0), ε split(1)).
  const p = gaps.ctm[0];
  assert.equal(p.logRatio, Math.log(p.t / p.s));
  const root = Rng.fromSeed(3);
  const x0 = teacher.sampleData(64, root.split(0));
  const eps = new Float64Array(128);
  root.split(1).fillNormal(eps);
  const xt = new Tensor(
    Float64Array.from(x0.data, (v, i) => v + p.t * eps[i]),
    [64, 2],
    'float64',
  );
  const xs = solveTeacherOde(teacher, xt, p.t, p.s).data;
  const D = teacher.denoise(xt, p.t).data;
  const { skip, out } = ctm.coefficients(p.t, p.s);
  let gx = 0;
  let gd = 0;
  let dn = 0;
  for (let i = 0; i < 64; i++) {
    let a = 0;
    let b = 0;
    let c = 0;
    for (let j = 0; j < 2; j++) {
      const k = i * 2 + j;
      a += (skip * xt.data[k] + out * D[k] - xs[k]) ** 2;
      b += ((xs[k] - skip * xt.data[k]) / out - D[k]) ** 2;
      c += D[k] ** 2;
    }
    gx += Math.sqrt(a) / 64;
    gd += Math.sqrt(b) / 64;
    dn += Math.sqrt(c) / 64;
  }
  assert.ok(Math.abs(p.gapX - gx / Math.SQRT2) < 1e-12);
  assert.ok(Math.abs((p.gapD as number) - gd / dn) < 1e-12);
});

test('CTM student: f(x, t, t) = x, ctmLoss and prefitLoss are finite; pairs satisfy t > s with u = next grid time', () => {
  const ring = new GaussianMixture({
    means: [
      [1, 0],
      [-1, 0],
    ],
    stds: [0.1, 0.1],
  });
  const teacher = mixtureTeacher(ring);
  const net = () =>
    new ConditionalMlp({
      inputDim: 2,
      hidden: 8,
      layers: 2,
      embedDim: 4,
      scalars: [
        { name: 'tNoise', scale: 250 },
        { name: 'sNoise', scale: 250 },
      ],
      seed: 1,
    });
  const student = new ConsistencyStudent(net(), ctmPreconditioning(), 1);
  const target = new ConsistencyStudent(net(), ctmPreconditioning(), 1);
  const x = pts([
    [0.2, 0.3],
    [4, -1],
  ]);
  assert.deepEqual([...student.jumpAll(x, 0.7, 0.7).data], [...x.data]);
  const { tIdx, sIdx } = sampleJumpPairs(500, grid.length, Rng.fromSeed(2));
  for (let i = 0; i < 500; i++)
    assert.ok(tIdx[i] < sIdx[i] && sIdx[i] <= grid.length - 1 && tIdx[i] <= grid.length - 2);
  const l1 = ctmLoss(student, target, teacher, grid, 16, Rng.fromSeed(4)).item();
  const l2 = prefitLoss(student, teacher, grid, 16, Rng.fromSeed(4)).item();
  assert.ok(Number.isFinite(l1) && l1 >= 0 && Number.isFinite(l2) && l2 > 0);
  assert.throws(
    () =>
      new ConsistencyStudent(
        new ConditionalMlp({ inputDim: 2, scalars: [{ name: 't' }] }),
        ctmPreconditioning(),
        1,
      ),
    ShapeError,
  );
});

test('bad jump times, anchors and rules are typed errors', () => {
  const ctm = ctmPreconditioning();
  assert.throws(() => ctm.coefficients(1, 2), UnsupportedOptionError);
  assert.throws(() => ctm.coefficients(0, 0), UnsupportedOptionError);
  assert.throws(() => ctm.coefficients(NaN, 1), UnsupportedOptionError);
  const p = analyticPreconditioning({ at: () => ({ l: 0.5, s: 1 }) }, { anchors: [1, 2] });
  assert.throws(() => p.coefficients(3, 1), UnsupportedOptionError);
  assert.throws(() => p.coefficients(1, 2), UnsupportedOptionError);
  assert.throws(
    () => analyticPreconditioning({ at: () => ({ l: 0, s: 1 }) }, { anchors: [] }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => analyticPreconditioning({ at: () => ({ l: 0, s: 1 }) }, { anchors: [-1] }),
    UnsupportedOptionError,
  );
  assert.throws(
    () =>
      analyticPreconditioning(
        { at: () => ({ l: 0, s: 1 }) },
        { anchors: [1], form: 'sideways' as 'forward' },
      ),
    UnsupportedOptionError,
  );
  const teacher = mixtureTeacher(new GaussianMixture({ means: [[0]], stds: [1] }));
  assert.throws(() => new AnalyticProfile(teacher, { lRule: 'x' as 'zero' }), UnsupportedOptionError);
  assert.throws(() => new AnalyticProfile(teacher, { sRule: 'x' as 'one' }), UnsupportedOptionError);
  assert.throws(() => new AnalyticProfile(teacher, { samples: 16 }).at(0), UnsupportedOptionError);
});
