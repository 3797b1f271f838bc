import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findExperiment } from '../../src/experiments/registry.js';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import type { SageBwdFinetuneSeedResult } from '../../src/experiments/sagebwd-finetune.js';

const TINY = {
  dim: 16,
  heads: 2,
  layers: 1,
  hidden: 32,
  context: 16,
  batch: 4,
  pretrainSteps: 20,
  finetuneSteps: 12,
  finetuneLr: 3e-3,
  evalEvery: 4,
  evalWindows: 8,
};

test("sagebwd-finetune is a registered experiment ('sparq run sagebwd-finetune') with ≥ 3 seeds", () => {
  const e = findExperiment('sagebwd-finetune');
  assert.ok(e);
  assert.equal(e.kind, 'experiment');
  assert.ok(e.defaultSeeds >= 3);
  assert.ok(e.preregistered.includes('1 %'));
});

test('sagebwd-finetune on a tiny config: deterministic per seed, both arms fine-tune from one checkpoint, SageBwd loss decreases', async () => {
  const e = findExperiment('sagebwd-finetune');
  assert.ok(e);
  const run = (configOverride: Record<string, unknown>) =>
    runExperiment(e, { mode: 'quick', seeds: 1, seed: 3, configOverride });
  const a = await run(TINY);
  const b = await run(TINY);
  assert.deepEqual(reproducibleRecord(a), reproducibleRecord(b));
  const r = a.runs[0].result as SageBwdFinetuneSeedResult;
  const fp = r.finetune['full precision'];
  const sage = r.finetune.sagebwd;
  assert.ok(fp && sage);
  assert.equal(sage.validation.length, 1 + TINY.finetuneSteps / TINY.evalEvery);
  assert.equal(sage.train.length, TINY.finetuneSteps);
  // the arms start from the same weights: their step-0 losses differ only by SageBwd's forward error
  assert.ok(Math.abs(sage.validation[0] - fp.validation[0]) < 0.01);
  // SageBwd's INT8 gradients are not the float64 ones, so the curves separate, but it still learns
  assert.notDeepEqual(sage.train, fp.train);
  assert.ok(sage.validation.at(-1)! < sage.validation[0] - 0.05, `validation ${sage.validation.join(', ')}`);
  const first = sage.train.slice(0, 3).reduce((s, x) => s + x) / 3;
  const last = sage.train.slice(-3).reduce((s, x) => s + x) / 3;
  assert.ok(last < first, `train loss ${first} → ${last}`);
  assert.equal(a.summary.findings.length, 1);
  assert.deepEqual(
    a.summary.plots.map((p) => p.id),
    ['finetune-validation-loss', 'finetune-gap'],
  );
  // another seed gives another run
  const c = await run({ ...TINY, pretrainSteps: 20 });
  assert.deepEqual(reproducibleRecord(c).runs, reproducibleRecord(a).runs);
  const d = await runExperiment(e, { mode: 'quick', seeds: 1, seed: 4, configOverride: TINY });
  assert.notDeepEqual((d.runs[0].result as SageBwdFinetuneSeedResult).pretrainTrain, r.pretrainTrain);
});
