import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import type { F64 } from '../../src/autograd/var.js';
import { GaussianMixture } from '../../src/diffusion/gaussian-mixture.js';

const pts = (rows: number[][]): F64 =>
  new Tensor(Float64Array.from(rows.flat()), [rows.length, rows[0].length], 'float64');

const mix = new GaussianMixture({
  means: [
    [1, 0],
    [-0.5, 0.8],
    [0.2, -1.1],
  ],
  stds: [0.2, 0.35, 0.15],
  weights: [1, 2, 1],
  classes: [0, 1, 1],
});

test('one component: the denoiser is the Gaussian posterior mean μ + α·s²/(α²s² + σ²)·(x − αμ)', () => {
  const g = new GaussianMixture({ means: [[0.3, -0.7]], stds: [0.5] });
  const x = pts([[1.2, 0.4]]);
  for (const [alpha, sigma] of [
    [1, 0.7],
    [0.6, 0.8],
  ]) {
    const c = (alpha * 0.25) / (alpha * alpha * 0.25 + sigma * sigma);
    const D = g.denoise(x, { alpha, sigma });
    assert.ok(Math.abs(D.data[0] - (0.3 + c * (1.2 - alpha * 0.3))) < 1e-15);
    assert.ok(Math.abs(D.data[1] - (-0.7 + c * (0.4 + alpha * 0.7))) < 1e-15);
    const tr = g.denoiserJacobianTrace(x, { alpha, sigma });
    assert.ok(Math.abs(tr[0] - 2 * c) < 1e-15);
  }
});

test('posteriors sum to 1; the denoiser is E[x₀ | x_t] by Monte Carlo; far points give no NaN', () => {
  const x = pts([
    [0.1, 0.2],
    [1e3, -1e3],
  ]);
  const r = mix.componentPosterior(x, { alpha: 0.8, sigma: 0.6 });
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(r[i * 3] + r[i * 3 + 1] + r[i * 3 + 2] - 1) < 1e-14);
  assert.ok([...mix.denoise(x, { alpha: 0.8, sigma: 0.6 }).data].every(Number.isFinite));
  // Monte Carlo E[x₀ | x_t ≈ x*]: weight clean samples by the likelihood N(x*; αx₀, σ²).
  const rng = Rng.fromSeed(9);
  const { x: x0 } = mix.sample(200000, rng);
  const target = [0.3, -0.1];
  const alpha = 0.9;
  const sigma = 0.5;
  let wsum = 0;
  const acc = [0, 0];
  for (let i = 0; i < 200000; i++) {
    const a = x0.data[2 * i];
    const b = x0.data[2 * i + 1];
    const w = Math.exp(-((target[0] - alpha * a) ** 2 + (target[1] - alpha * b) ** 2) / (2 * sigma * sigma));
    wsum += w;
    acc[0] += w * a;
    acc[1] += w * b;
  }
  const D = mix.denoise(pts([target]), { alpha, sigma });
  assert.ok(Math.abs(D.data[0] - acc[0] / wsum) < 0.01, `${D.data[0]} vs ${acc[0] / wsum}`);
  assert.ok(Math.abs(D.data[1] - acc[1] / wsum) < 0.01, `${D.data[1]} vs ${acc[1] / wsum}`);
});

test('score = ∇ log p_t by finite differences, and the Jacobian trace = tr ∇D by finite differences', () => {
  const alpha = 0.7;
  const sigma = 0.5;
  // p_t is itself a mixture: means α·μ_k, stds √(α²s_k² + σ²).
  const noisy = new GaussianMixture({
    means: [0, 1, 2].map((k) => [alpha * mix.means[2 * k], alpha * mix.means[2 * k + 1]]),
    stds: [...mix.stds].map((s) => Math.sqrt(alpha * alpha * s * s + sigma * sigma)),
    weights: [...mix.weights],
  });
  const h = 1e-5;
  for (const p of [
    [0.4, 0.1],
    [-0.6, 0.9],
    [0.1, -0.9],
  ]) {
    const score = mix.score(pts([p]), { alpha, sigma });
    let trace = 0;
    for (let j = 0; j < 2; j++) {
      const up = [...p];
      const dn = [...p];
      up[j] += h;
      dn[j] -= h;
      const fd = (noisy.logDensity(pts([up]))[0] - noisy.logDensity(pts([dn]))[0]) / (2 * h);
      assert.ok(
        Math.abs(score.data[j] - fd) < 1e-6 * (1 + Math.abs(fd)),
        `score ${j}: ${score.data[j]} vs ${fd}`,
      );
      trace +=
        (mix.denoise(pts([up]), { alpha, sigma }).data[j] -
          mix.denoise(pts([dn]), { alpha, sigma }).data[j]) /
        (2 * h);
    }
    const tr = mix.denoiserJacobianTrace(pts([p]), { alpha, sigma })[0];
    assert.ok(Math.abs(tr - trace) < 1e-7, `trace ${tr} vs ${trace}`);
  }
});

test('classes: p(c | x₀) sums to 1, forClass renormalises, sampling follows the weights', () => {
  assert.deepEqual([...mix.classWeights()], [0.25, 0.75]);
  const sub = mix.forClass(1);
  assert.equal(sub.size, 2);
  assert.ok(Math.abs(sub.weights[0] - 2 / 3) < 1e-15);
  const post = mix.classPosterior(pts([[1, 0]]));
  assert.ok(Math.abs(post[0] + post[1] - 1) < 1e-15 && post[0] > 0.99);
  const s = mix.sample(20000, Rng.fromSeed(3));
  const frac = s.components.reduce((a, k) => a + (k === 1 ? 1 : 0), 0) / 20000;
  assert.ok(Math.abs(frac - 0.5) < 0.02);
  assert.ok(s.classes.every((c, i) => c === (s.components[i] === 0 ? 0 : 1)));
  const m = mix.moments();
  assert.ok(Math.abs(m.mean[0] - (0.25 * 1 + 0.5 * -0.5 + 0.25 * 0.2)) < 1e-15);
});

test('bad mixtures and inputs are typed errors', () => {
  assert.throws(() => new GaussianMixture({ means: [], stds: [] }), ShapeError);
  assert.throws(() => new GaussianMixture({ means: [[0]], stds: [0] }), UnsupportedOptionError);
  assert.throws(() => new GaussianMixture({ means: [[0], [1, 2]], stds: [1, 1] }), ShapeError);
  assert.throws(
    () => new GaussianMixture({ means: [[0]], stds: [1], weights: [-1] }),
    UnsupportedOptionError,
  );
  assert.throws(() => mix.forClass(2), UnsupportedOptionError);
  assert.throws(() => mix.denoise(pts([[0, 0, 0]]), { alpha: 1, sigma: 1 }), ShapeError);
  assert.throws(() => mix.eps(pts([[0, 0]]), { alpha: 1, sigma: 0 }), UnsupportedOptionError);
});
