import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import { type Gft2dSeedResult, classPrecision, gft2d, gftRingMixture } from '../../src/experiments/gft-2d.js';
import { findExperiment } from '../../src/experiments/registry.js';
import { Tensor } from '../../src/core/tensor.js';

const tiny = {
  steps: 40,
  batch: 64,
  hidden: 16,
  embedDim: 8,
  layers: 2,
  samplesPerClass: 30,
  samplingSteps: 25,
  guidanceScales: [1, 3],
  projections: 10,
};

test('gft-2d: registered, deterministic for a seed, metrics finite and in range, NFE halved', async () => {
  assert.equal(findExperiment('gft-2d'), gft2d);
  const a = await runExperiment(gft2d, { mode: 'quick', seeds: 1, configOverride: tiny });
  const b = await runExperiment(gft2d, { mode: 'quick', seeds: 1, configOverride: tiny });
  assert.deepEqual(reproducibleRecord(a), reproducibleRecord(b));
  const r = a.runs[0].result as Gft2dSeedResult;
  for (const arm of ['ideal', 'cfg-a', 'cfg-b', 'gft']) {
    for (const p of r.curves[arm]) {
      assert.ok(p.precision >= 0 && p.precision <= 1 && Number.isFinite(p.swdToData) && p.swdToData > 0, arm);
    }
  }
  // One forward per step for GFT; CFG needs two except at w = 1 (where it is the conditional model).
  assert.deepEqual(
    r.curves.gft.map((p) => p.nfe),
    [25, 25],
  );
  assert.deepEqual(
    r.curves['cfg-a'].map((p) => p.nfe),
    [25, 50],
  );
  // The exact-score CFG sampler sharpens with w: the mechanism the trained arms are compared against.
  assert.ok(r.curves.ideal[1].precision > r.curves.ideal[0].precision + 0.2);
  assert.ok(r.swdCfgFloor.every((v) => v > 0) && r.swdGftVsCfg.every(Number.isFinite));
  assert.equal(a.summary.findings.length, 1);
  assert.equal(a.summary.plots.length, 4);
  assert.ok(['holds', 'does-not-hold'].includes(a.summary.findings[0].verdict.outcome));
});

test('gft-2d precision: samples on a class-c mode count, samples between classes or off the ring do not', () => {
  const config = gft2d.config('quick');
  const mix = gftRingMixture(config);
  // Component 0 (class 0) sits at angle 0 on the ring of radius 0.8; component 1 (class 1) at 30°.
  const batch = (pts: number[][]) => new Tensor(Float64Array.from(pts.flat()), [pts.length, 2], 'float64');
  const onMode = [[0.8, 0]];
  const between = [[0.8 * Math.cos(Math.PI / 12), 0.8 * Math.sin(Math.PI / 12)]];
  const off = [[0.8 + 0.5, 0]];
  assert.equal(classPrecision(mix, batch(onMode), 0), 1);
  assert.equal(classPrecision(mix, batch(onMode), 1), 0);
  assert.equal(classPrecision(mix, batch(between), 0), 0);
  assert.equal(classPrecision(mix, batch(off), 0), 0);
});
