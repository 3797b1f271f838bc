import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsupportedOptionError } from '../../src/core/errors.js';
import { VpSchedule, vpSdeAlphaBar, vpSdeScales } from '../../src/diffusion/vp.js';
import { EDM_SIGMA_DATA, edmLossWeight, edmPreconditioning, edmSigmaGrid } from '../../src/diffusion/edm.js';

test('VP: DDPM linear betas 1e-4 … 0.02 over 1000 steps, ᾱ the running product, α² + σ² = 1', () => {
  const s = new VpSchedule();
  assert.equal(s.timesteps, 1000);
  assert.equal(s.betas[0], 1e-4);
  assert.equal(s.betas[999], 0.02);
  assert.ok(Math.abs(s.betas[500] - (1e-4 + (500 * (0.02 - 1e-4)) / 999)) < 1e-17);
  let prod = 1;
  for (let i = 0; i <= 700; i++) prod *= 1 - s.betas[i];
  assert.equal(s.alphaBar(700), prod);
  // ᾱ_999 of the DDPM schedule is ≈ 4.04e-5 (guided-diffusion's value).
  assert.ok(Math.abs(s.alphaBar(999) - 4.0358e-5) < 1e-8, `${s.alphaBar(999)}`);
  for (const t of [0, 10, 999]) {
    assert.ok(Math.abs(s.alpha(t) ** 2 + s.sigma(t) ** 2 - 1) < 1e-15);
    assert.ok(Math.abs(s.edmSigma(t) - s.sigma(t) / s.alpha(t)) < 1e-12 * s.edmSigma(t));
    assert.ok(Math.abs(s.logSnr(t) - Math.log(s.alpha(t) ** 2 / s.sigma(t) ** 2)) < 1e-10);
  }
  assert.equal(s.alphaBar(-1), 1);
  assert.equal(s.continuousTime(999), 1);
});

test('VP SDE: the continuous ᾱ(τ) is the T → ∞ limit of the discrete schedule', () => {
  const s = new VpSchedule();
  for (const t of [0, 99, 499, 999]) {
    const tau = s.continuousTime(t);
    // log ᾱ: the discrete Σ log(1 − β_i) and −∫β differ by the O(β²) terms and the half-step offset,
    // under 1 % of log ᾱ (and under 2e-4 absolute at t = 0).
    const gap = Math.abs(Math.log(vpSdeAlphaBar(tau)) - Math.log(s.alphaBar(t)));
    assert.ok(
      gap < 0.01 * Math.abs(Math.log(s.alphaBar(t))) + 2e-4,
      `t=${t}: ${vpSdeAlphaBar(tau)} vs ${s.alphaBar(t)}`,
    );
  }
  const { alpha, sigma } = vpSdeScales(0.3);
  assert.ok(Math.abs(alpha * alpha + sigma * sigma - 1) < 1e-15);
  assert.equal(vpSdeAlphaBar(0), 1);
});

test('VP: invalid timesteps and options are UnsupportedOptionError', () => {
  const s = new VpSchedule();
  for (const t of [1000, -2, 0.5, NaN]) assert.throws(() => s.alphaBar(t), UnsupportedOptionError);
  assert.throws(() => new VpSchedule({ timesteps: 1 }), UnsupportedOptionError);
  assert.throws(() => new VpSchedule({ betaStart: 0 }), UnsupportedOptionError);
  assert.throws(() => new VpSchedule({ betaStart: 0.1, betaEnd: 0.05 }), UnsupportedOptionError);
  assert.throws(() => vpSdeAlphaBar(1.5), UnsupportedOptionError);
});

test('EDM preconditioning: Table 1 values and the unit-variance identities', () => {
  const sd = EDM_SIGMA_DATA;
  const p = edmPreconditioning(sd);
  assert.ok(Math.abs(p.cSkip - 0.5) < 1e-15);
  assert.ok(Math.abs(p.cOut - sd / Math.SQRT2) < 1e-15);
  assert.ok(Math.abs(p.cIn - 1 / (sd * Math.SQRT2)) < 1e-15);
  assert.ok(Math.abs(p.cNoise - 0.25 * Math.log(sd)) < 1e-15);
  for (const sigma of [0.002, 0.3, 5, 80]) {
    const q = edmPreconditioning(sigma);
    // Unit-variance input: c_in²·(σ² + σ_d²) = 1. Unit-variance target: (1 − c_skip)²σ_d² + c_skip²σ² = c_out².
    assert.ok(Math.abs(q.cIn ** 2 * (sigma ** 2 + sd ** 2) - 1) < 1e-12);
    assert.ok(
      Math.abs((1 - q.cSkip) ** 2 * sd ** 2 + q.cSkip ** 2 * sigma ** 2 - q.cOut ** 2) <
        1e-12 * (1 + q.cOut ** 2),
    );
    // λ(σ)·c_out² = 1: the weighted loss is the F-space MSE.
    assert.ok(Math.abs(edmLossWeight(sigma) * q.cOut ** 2 - 1) < 1e-12);
  }
  for (const bad of [0, -1, NaN, Infinity])
    assert.throws(() => edmPreconditioning(bad), UnsupportedOptionError);
});

test('EDM σ grid: σ_max … σ_min with ρ = 7 spacing, then 0', () => {
  const g = edmSigmaGrid({ steps: 18 });
  assert.equal(g.length, 19);
  assert.ok(Math.abs(g[0] - 80) < 1e-12);
  assert.ok(Math.abs(g[17] - 0.002) < 1e-15);
  assert.equal(g[18], 0);
  for (let i = 1; i < g.length; i++) assert.ok(g[i] < g[i - 1]);
  const mid = (80 ** (1 / 7) + (5 / 17) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7;
  assert.ok(Math.abs(g[5] - mid) < 1e-12);
  assert.deepEqual([...edmSigmaGrid({ steps: 1 })], [80, 0]);
  assert.throws(() => edmSigmaGrid({ steps: 0 }), UnsupportedOptionError);
  assert.throws(() => edmSigmaGrid({ steps: 4, sigmaMin: 1, sigmaMax: 0.5 }), UnsupportedOptionError);
});
