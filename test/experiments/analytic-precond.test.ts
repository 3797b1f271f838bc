import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import {
  type AnalyticPrecondSeedResult,
  analyticPrecondExperiment,
} from '../../src/experiments/analytic-precond.js';
import { findExperiment } from '../../src/experiments/registry.js';

const tiny = {
  gridSize: 10,
  gapGridSize: 10,
  gapSamples: 32,
  profileSamples: 128,
  hidden: 16,
  embedDim: 8,
  layers: 2,
  batch: 64,
  prefitSteps: 30,
  steps: 40,
  evalEvery: 20,
  evalSamples: 64,
  projections: 10,
};

test('analytic-precond: registered, deterministic, finite; the analytic coefficients shrink the teacher gap', async () => {
  assert.equal(findExperiment('analytic-precond'), analyticPrecondExperiment);
  const a = await runExperiment(analyticPrecondExperiment, { mode: 'quick', seeds: 1, configOverride: tiny });
  const b = await runExperiment(analyticPrecondExperiment, { mode: 'quick', seeds: 1, configOverride: tiny });
  assert.deepEqual(reproducibleRecord(a), reproducibleRecord(b));
  const r = a.runs[0].result as AnalyticPrecondSeedResult;
  assert.deepEqual(Object.keys(r.curves), ['ctm', 'analytic', 'l only']);
  for (const c of Object.values(r.curves)) {
    assert.deepEqual(
      c.map((p) => p.step),
      [0, 20, 40],
    );
    for (const p of c) assert.ok([p.swd1, p.swd2, p.mmd1, p.mmd2].every(Number.isFinite));
  }
  // Both arms start from the same pre-fitted weights and the same data stream, so CTM's steps to its
  // own final quality are at most the budget, and the threshold is its last point.
  assert.equal(r.threshold, r.curves.ctm[2].swd2);
  assert.ok((r.stepsToThreshold.ctm as number) <= 40);
  // Teacher-initialised gaps (no training involved): the forward analytic jump is far closer to the
  // ODE than CTM's at intermediate jumps; the backward form coincides with CTM on jumps to t_min.
  const g = r.intermediateGap;
  assert.ok(g['init l + s (fwd)'] < 0.6 * g['init ctm'], JSON.stringify(g));
  assert.ok(g['init l only'] < g['init ctm']);
  assert.ok(Math.abs(r.longJumpGap['l + s'] / r.longJumpGap.ctm - 1) < 0.1, JSON.stringify(r.longJumpGap));
  // The forward form's huge out = γ/s_t amplifies the pre-fitted student's residual error.
  assert.ok(g['prefit l + s (fwd)'] > 3 * g['init l + s (fwd)']);
  assert.equal(a.summary.findings.length, 2);
  assert.equal(a.summary.plots.length, 4);
});
