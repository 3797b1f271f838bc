import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import { findExperiment } from '../../src/experiments/registry.js';
import { type VrpoSeedResult, vrpoExperiment } from '../../src/experiments/vrpo.js';
import {
  ascendingReward,
  chainTask,
  expectedReward,
  responseEntropy,
  samplePreferencePairs,
  sampleSequence,
} from '../../src/experiments/vrpo-task.js';

const task = chainTask(8, 6);

test('vrpo task: exact expected reward and entropy match the sampled chain', () => {
  const rng = Rng.fromSeed(1);
  const n = 4000;
  let reward = 0;
  let nll = 0;
  for (let i = 0; i < n; i++) {
    const s = sampleSequence(task, rng.split(i));
    reward += ascendingReward(s) / n;
    for (let k = 2; k < s.length; k++) nll -= Math.log(task.transition[s[k - 1] * 8 + s[k]]) / n;
  }
  // Reward ∈ [0, 6] has sd < 1.5, so 4000 draws give se < 0.025; the NLL sd per sequence is < 3.
  assert.ok(Math.abs(reward - expectedReward(task)) < 0.1, `${reward} vs ${expectedReward(task)}`);
  assert.ok(Math.abs(nll - responseEntropy(task)) < 0.2, `${nll} vs ${responseEntropy(task)}`);
  for (let x = 0; x < 8; x++) {
    const row = task.transition.subarray(x * 8, x * 8 + 8).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(row - 1) < 1e-12);
  }
});

test('vrpo task: preference pairs share the prompt and the winner has strictly more ascents', () => {
  for (const p of samplePreferencePairs(task, 50, Rng.fromSeed(2))) {
    assert.deepEqual(Array.from(p.winner.slice(0, 2)), Array.from(p.loser.slice(0, 2)));
    assert.ok(ascendingReward(p.winner) > ascendingReward(p.loser));
  }
});

const tiny = {
  sftSteps: 30,
  trainPairs: 64,
  heldOutPairs: 8,
  dpoSteps: 4,
  dpoBatch: 4,
  dpoWarmup: 1,
  evalEvery: 2,
  rewardSamples: 8,
  auditPairs: 3,
  auditRepeats: 24,
  nestedTimesteps: 24,
  nestedMasks: 4,
};

test('vrpo experiment: registered, deterministic, metrics in range, the audit measures what Lemma 5 predicts', async () => {
  assert.equal(findExperiment('vrpo'), vrpoExperiment);
  const run = () => runExperiment(vrpoExperiment, { mode: 'quick', seeds: 1, configOverride: tiny });
  const a = await run();
  const b = await run();
  assert.deepEqual(reproducibleRecord(a), reproducibleRecord(b));
  const r = a.runs[0].result as VrpoSeedResult;
  for (const arm of r.arms) {
    assert.equal(arm.curve[0].accuracy, 0.5);
    for (const pt of arm.curve) assert.ok(pt.accuracy >= 0 && pt.accuracy <= 1);
    assert.ok(
      arm.sampleReward >= 0 && arm.sampleReward <= 6 && arm.greedyReward >= 0 && arm.greedyReward <= 6,
    );
    assert.equal(arm.skippedPairs, 0);
  }
  // Forward passes per step: 2 responses × n samples per pair + 1 SFT sequence per pair.
  const forwards = (id: string) => r.arms.find((x) => x.id === id)?.policyForwards;
  assert.equal(forwards('naive (1,1,✗)'), 4 * 4 * (2 * 1 + 1));
  assert.equal(forwards('VRPO (8,1,✓)'), 4 * 4 * (2 * 8 + 1));
  assert.ok(Number.isFinite(r.referenceNegElbo) && r.referenceNegElbo > responseEntropy(task));
  // The audit: antithetic (8,1) far below naive (1,1,✗); measured/predicted near 1 on the whole.
  const row = (nt: number, nyt: number, anti: boolean) =>
    r.audit.find((x) => x.timesteps === nt && x.masksPerTimestep === nyt && x.antithetic === anti);
  assert.ok((row(8, 1, true)?.measured ?? Infinity) * 5 < (row(1, 1, false)?.measured ?? 0));
  const logRatios = r.audit.map((x) => Math.log(x.measured / x.predicted));
  const geo = Math.exp(logRatios.reduce((s, x) => s + x, 0) / logRatios.length);
  // Loose: 24 repeats of a heavy-tailed score give skewed variance estimates (elbo.test.ts checks
  // Lemma 5 tightly against exact components).
  assert.ok(geo > 0.5 && geo < 2, `geometric mean of measured/predicted ${geo}`);
  for (const x of r.audit)
    assert.ok(Math.abs(x.predicted / x.exact - 1) < 0.6, `nested vs exact ${x.predicted} ${x.exact}`);
  assert.equal(a.summary.findings.length, 6);
  assert.ok(a.summary.plots.length === 4 && a.summary.metrics.every((m) => Number.isFinite(m.mean)));
});
