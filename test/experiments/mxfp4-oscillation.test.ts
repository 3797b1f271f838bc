import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findExperiment } from '../../src/experiments/registry.js';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import type { Mxfp4OscillationSeedResult } from '../../src/experiments/mxfp4-oscillation.js';
import { gradientBias } from '../../src/experiments/mxfp4-gradient-bias.js';
import { teacherTask } from '../../src/experiments/teacher-task.js';

const TINY = {
  steps: 40,
  batch: 32,
  widths: [16, 32, 32, 32, 4],
  classes: 4,
  trainSize: 256,
  testSize: 64,
  calibrations: 2,
  biasDraws: 8,
};

test('the teacher task is seeded, labels are in range and the noise share is as asked', () => {
  const o = { inputs: 8, hidden: 16, classes: 5, train: 4000, test: 100, labelNoise: 0.2, sharpness: 4 };
  const a = teacherTask(o, 1);
  assert.deepEqual(teacherTask(o, 1).trainY, a.trainY);
  assert.notDeepEqual(teacherTask(o, 2).trainX, a.trainX);
  assert.ok(a.trainY.every((y) => y >= 0 && y < 5) && a.testY.every((y) => y >= 0 && y < 5));
  const clean = teacherTask({ ...o, labelNoise: 0 }, 1);
  let changed = 0;
  for (let i = 0; i < 4000; i++) if (clean.trainY[i] !== a.trainY[i]) changed++;
  // a flipped label keeps its class with probability 1/5: expected share 0.2 · 0.8 = 0.16
  assert.ok(Math.abs(changed / 4000 - 0.16) < 0.025, `changed share ${changed / 4000}`);
});

test('backward unbiasedness check: TetraJet z ≈ 1, OCP clipping and the Microscaling design are biased', () => {
  const o = { tokens: 64, inFeatures: 64, outFeatures: 64, draws: 60, seed: 3 };
  const tj = gradientBias('tetrajet', o);
  const ocp = gradientBias('mxfp4-ocp', o);
  const ms = gradientBias('microscaling', o);
  for (const z of [tj.zRmsX, tj.zRmsW]) assert.ok(z > 0.8 && z < 1.2, `TetraJet z-RMS ${z}`);
  for (const z of [ocp.zRmsX, ocp.zRmsW]) assert.ok(z > 1.5, `OCP z-RMS ${z}`);
  assert.ok(Math.abs(tj.relBiasX / tj.noiseFloorX - 1) < 0.2, 'an unbiased mean deviates by its noise floor');
  assert.ok(Number.isNaN(ms.zRmsX) && ms.noiseFloorX === 0);
  assert.ok(ms.relBiasX > 5 * tj.noiseFloorX && ms.relBiasW > 5 * tj.noiseFloorW);
});

test('mxfp4-oscillation on a tiny config: deterministic, finite, windows tracked, Q-Ramping calibrated', async () => {
  const e = findExperiment('mxfp4-oscillation');
  assert.ok(e && e.defaultSeeds >= 3 && e.preregistered.includes('0.7×'));
  const a = await runExperiment(e, { mode: 'quick', seeds: 1, configOverride: TINY });
  const b = await runExperiment(e, { mode: 'quick', seeds: 1, configOverride: TINY });
  assert.deepEqual(reproducibleRecord(b), reproducibleRecord(a));
  const r = a.runs[0].result as Mxfp4OscillationSeedResult;
  for (const arm of ['fp32', 'microscaling', 'tetrajet', 'tetrajet+q-ema', 'tetrajet+q-ramping'] as const) {
    const res = r.arms[arm]!;
    assert.equal(res.windows.length, 1, arm); // one 30-step window in 40 steps
    assert.ok(res.testAccuracy >= 0 && res.testAccuracy <= 1 && Number.isFinite(res.testLoss));
    assert.ok(res.final.rWQ >= 0 && res.final.quantConf > 0 && res.final.quantConf <= 1);
  }
  // fp32 and TetraJet see the same batches from the same weights but train differently
  assert.notEqual(r.arms.tetrajet!.testLoss, r.arms.fp32!.testLoss);
  assert.deepEqual(
    r.arms['tetrajet+q-ramping']!.calibrations!.map((c) => c.step),
    [0, 20],
  );
  assert.equal(r.arms.tetrajet!.calibrations, undefined);
  assert.equal(a.summary.findings.length, 5);
  for (const m of a.summary.metrics) assert.ok(Number.isFinite(m.mean), `${m.metric} ${m.arm}`);
});
