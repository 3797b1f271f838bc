import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonFiniteInputError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import type { F64 } from '../../src/autograd/var.js';
import { GaussianMixture } from '../../src/diffusion/gaussian-mixture.js';
import { VpSchedule } from '../../src/diffusion/vp.js';
import { ddimSample, ddimTimesteps } from '../../src/diffusion/ddim.js';
import { edmSample } from '../../src/diffusion/edm-sampler.js';
import {
  type EpsModel,
  mixtureConditionalEpsModel,
  mixtureDenoiser,
  mixtureEpsModel,
} from '../../src/diffusion/models.js';
import { classifierFreeGuidance, guidanceCombine } from '../../src/diffusion/guidance.js';
import { slicedWasserstein } from '../../src/diffusion/sliced-wasserstein.js';

const schedule = new VpSchedule();
const gauss = new GaussianMixture({ means: [[0.5, -0.3]], stds: [0.4] });
const col = (rows: number[]): F64 => new Tensor(Float64Array.from(rows), [rows.length, 1], 'float64');

function meanStd(x: F64): { mean: number[]; std: number[] } {
  const [n, d] = x.shape;
  const mean = Array.from({ length: d }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x.data[i * d + j];
    return s / n;
  });
  const std = mean.map((m, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x.data[i * d + j] - m) ** 2;
    return Math.sqrt(s / (n - 1));
  });
  return { mean, std };
}

test('DDIM timesteps: trailing starts at T − 1, leading is i·⌊T/S⌋', () => {
  assert.deepEqual([...ddimTimesteps(1000, 4)], [999, 749, 499, 249]);
  assert.deepEqual([...ddimTimesteps(1000, 4, 'leading')], [750, 500, 250, 0]);
  assert.equal(ddimTimesteps(1000, 1000)[999], 0);
  assert.throws(() => ddimTimesteps(1000, 0), UnsupportedOptionError);
  assert.throws(() => ddimTimesteps(1000, 1001), UnsupportedOptionError);
});

test('deterministic samplers with the exact Gaussian denoiser converge to the data marginal at their order', () => {
  // Data N(0.5, 0.4²) in 1-D: every deterministic sampler is then an affine map of the start noise, so
  // two probe starts (0 and 1) give its offset and slope exactly; the exact PF-ODE maps N(0, 1) to
  // N(≈0.5, ≈0.4²) (up to the start's tiny mismatch with p_T).
  const g1 = new GaussianMixture({ means: [[0.5]], stds: [0.4] });
  const noise = col([0, 1]);
  const affine = (x: F64) => ({ mean: x.data[0], std: x.data[1] - x.data[0] });
  const ddimErr = (steps: number) =>
    Math.abs(affine(ddimSample(mixtureEpsModel(g1, schedule), { schedule, steps, noise }).samples).std - 0.4);
  const edmErr = (steps: number, solver: 'euler' | 'heun') =>
    Math.abs(affine(edmSample(mixtureDenoiser(g1), { steps, solver, noise }).samples).std - 0.4);
  for (const [name, err, tol] of [
    ['DDIM 1000', ddimErr(1000), 2e-3],
    ['Euler 200', edmErr(200, 'euler'), 7e-3],
    ['Heun 50', edmErr(50, 'heun'), 3e-3],
  ] as const) {
    assert.ok(err < tol, `${name}: |std − 0.4| = ${err}`);
  }
  const m = affine(edmSample(mixtureDenoiser(g1), { steps: 50, noise }).samples).mean;
  assert.ok(Math.abs(m - 0.5) < 3e-3, `Heun mean ${m}`);
  // Order of accuracy: Euler/DDIM first order (4× steps → ≈ 4× smaller error), Heun second (≈ 16×).
  const euler = edmErr(50, 'euler') / edmErr(200, 'euler');
  const heun = (edmErr(25, 'heun') - 0) / edmErr(100, 'heun');
  const ddim = (ddimErr(50) - ddimErr(1000)) / (ddimErr(200) - ddimErr(1000));
  assert.ok(euler > 3 && euler < 5, `Euler ratio ${euler}`);
  assert.ok(heun > 10, `Heun ratio ${heun}`);
  assert.ok(ddim > 3 && ddim < 6, `DDIM ratio ${ddim}`);
});

test('DDIM η = 1 and η = 0 reproduce the Gaussian marginal by Monte Carlo (2-D, 4000 samples)', () => {
  // 1000 steps: with DDPM's fixed-small variance (η = 1) the sampled variance converges more slowly
  // than the ODE's (−3.5 % in std at 250 steps for this Gaussian; Bao et al. 2022, Analytic-DPM, §3).
  for (const eta of [0, 1]) {
    const { samples } = ddimSample(mixtureEpsModel(gauss, schedule), {
      schedule,
      steps: 1000,
      eta,
      n: 4000,
      dim: 2,
      seed: 5,
    });
    const { mean, std } = meanStd(samples);
    assert.ok(Math.abs(mean[0] - 0.5) < 0.025 && Math.abs(mean[1] + 0.3) < 0.025, `η=${eta} mean ${mean}`);
    for (const s of std) assert.ok(Math.abs(s / 0.4 - 1) < 0.04, `η=${eta} std ${std}`);
  }
});

test('DDIM with the exact mixture denoiser: SWD to the true mixture near the sampling floor, and large at 5 steps', () => {
  const means = Array.from({ length: 8 }, (_, k) => [
    Math.cos((2 * Math.PI * k) / 8),
    Math.sin((2 * Math.PI * k) / 8),
  ]);
  const ring = new GaussianMixture({ means, stds: new Array<number>(8).fill(0.1) });
  const n = 1500;
  const ref = ring.sample(n, Rng.fromSeed(11)).x;
  const floor = slicedWasserstein(ring.sample(n, Rng.fromSeed(12)).x, ref);
  const swd = (steps: number) =>
    slicedWasserstein(
      ddimSample(mixtureEpsModel(ring, schedule), { schedule, steps, n, dim: 2, seed: 1 }).samples,
      ref,
    );
  const good = swd(50);
  assert.ok(good < 2 * floor, `SWD(DDIM-50) ${good} vs floor ${floor}`);
  assert.ok(swd(5) > 4 * floor, 'five DDIM steps should be visibly off');
});

test('NFE counts: DDIM S, CFG 2S (S at w = 1), Euler N, Heun 2N − 1; samplers are seeded', () => {
  const labelled = new GaussianMixture({ means: [[0], [1]], stds: [0.2, 0.2], classes: [0, 1] });
  const cond = mixtureConditionalEpsModel(labelled, schedule);
  const labels = new Int32Array(3).fill(1);
  const base = { schedule, steps: 7, n: 3, dim: 1 };
  assert.equal(ddimSample(mixtureEpsModel(labelled, schedule), base).nfe, 7);
  assert.equal(ddimSample(classifierFreeGuidance(cond, labels, 3), base).nfe, 14);
  assert.equal(ddimSample(classifierFreeGuidance(cond, labels, 1), base).nfe, 7);
  let calls = 0;
  const counting = {
    nfePerCall: 1,
    denoise: (x: F64, s: number) => (calls++, mixtureDenoiser(labelled).denoise(x, s)),
  };
  assert.equal(edmSample(counting, { steps: 9, solver: 'euler', n: 2, dim: 1 }).nfe, 9);
  assert.equal(calls, 9);
  calls = 0;
  assert.equal(edmSample(counting, { steps: 9, n: 2, dim: 1 }).nfe, 17);
  assert.equal(calls, 17);
  const a = ddimSample(mixtureEpsModel(labelled, schedule), { ...base, eta: 0.5, seed: 3 }).samples;
  const b = ddimSample(mixtureEpsModel(labelled, schedule), { ...base, eta: 0.5, seed: 3 }).samples;
  const c = ddimSample(mixtureEpsModel(labelled, schedule), { ...base, eta: 0.5, seed: 4 }).samples;
  assert.deepEqual([...a.data], [...b.data]);
  assert.notDeepEqual([...a.data], [...c.data]);
  const churn = (seed: number) =>
    edmSample(mixtureDenoiser(labelled), { steps: 6, sChurn: 10, n: 2, dim: 1, seed }).samples;
  assert.deepEqual([...churn(1).data], [...churn(1).data]);
});

test('CFG: ε_u + w(ε_c − ε_u), w = 0 is unconditional, w = 1 conditional; guided exact scores sharpen the class', () => {
  const u = col([1, 2]);
  const c = col([3, -2]);
  assert.deepEqual([...guidanceCombine(u, c, 2.5).data], [1 + 2.5 * 2, 2 + 2.5 * -4]);
  assert.deepEqual([...guidanceCombine(u, c, 0).data], [...u.data]);
  assert.deepEqual([...guidanceCombine(u, c, 1).data], [...c.data]);
  const labelled = new GaussianMixture({ means: [[-0.3], [0.3]], stds: [0.25, 0.25], classes: [0, 1] });
  const cond = mixtureConditionalEpsModel(labelled, schedule);
  const labels = new Int32Array(2000).fill(1);
  const frac = (w: number) => {
    const { samples } = ddimSample(classifierFreeGuidance(cond, labels, w), {
      schedule,
      steps: 30,
      n: 2000,
      dim: 1,
      seed: 2,
    });
    const post = labelled.classPosterior(samples);
    let k = 0;
    for (let i = 0; i < 2000; i++) if (post[2 * i + 1] > 0.9) k++;
    return k / 2000;
  };
  const f1 = frac(1);
  const f3 = frac(3);
  assert.ok(f3 > f1 + 0.1, `precision w=1 ${f1}, w=3 ${f3}`);
});

test('bad sampler input: steps, η, w, solver, and a model that returns NaN', () => {
  const m = mixtureEpsModel(gauss, schedule);
  assert.throws(() => ddimSample(m, { schedule, steps: 0, n: 2, dim: 2 }), UnsupportedOptionError);
  assert.throws(() => ddimSample(m, { schedule, steps: 10, eta: -1, n: 2, dim: 2 }), UnsupportedOptionError);
  assert.throws(() => ddimSample(m, { schedule, steps: 10 }), UnsupportedOptionError);
  assert.throws(() => guidanceCombine(col([1]), col([1]), -0.5), UnsupportedOptionError);
  assert.throws(() => guidanceCombine(col([1]), col([1]), NaN), UnsupportedOptionError);
  assert.throws(
    () => edmSample(mixtureDenoiser(gauss), { steps: 5, solver: 'rk4' as 'heun', n: 2, dim: 2 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => edmSample(mixtureDenoiser(gauss), { steps: 5, sigmaMin: -1, n: 2, dim: 2 }),
    UnsupportedOptionError,
  );
  const nan: EpsModel = {
    nfePerCall: 1,
    predict: (x) => new Tensor(new Float64Array(x.size).fill(NaN), x.shape, 'float64'),
  };
  assert.throws(() => ddimSample(nan, { schedule, steps: 3, n: 2, dim: 2 }), NonFiniteInputError);
  assert.throws(
    () =>
      ddimSample(m, {
        schedule,
        steps: 3,
        noise: new Tensor(Float64Array.from([NaN, 0]), [1, 2], 'float64'),
      }),
    NonFiniteInputError,
  );
});
