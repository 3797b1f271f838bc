import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findExperiment } from '../../src/experiments/registry.js';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import type { SageBwdSeedResult } from '../../src/experiments/sagebwd-eval.js';

const TINY = { lengths: [16, 40], ablationLength: 40, heads: 1, headDim: 16 };

test("sagebwd is a registered evaluation ('sparq eval sagebwd') with ≥ 3 default seeds", () => {
  const e = findExperiment('sagebwd');
  assert.ok(e);
  assert.equal(e.kind, 'evaluation');
  assert.deepEqual(e.methods, ['SageBwd']);
  assert.ok(e.defaultSeeds >= 3);
  assert.deepEqual(e.config('quick'), {
    lengths: [128, 512, 1024],
    ablationLength: 512,
    heads: 2,
    headDim: 64,
  });
});

test('sagebwd on a tiny config: deterministic, every cell measured, findings judged, metrics in range', async () => {
  const e = findExperiment('sagebwd');
  assert.ok(e);
  const run = () => runExperiment(e, { mode: 'quick', seeds: 2, configOverride: TINY });
  const a = await run();
  const b = await run();
  assert.deepEqual(reproducibleRecord(a), reproducibleRecord(b));
  const cells = (a.runs[0].result as SageBwdSeedResult).cells;
  // 3 inputs × (2 lengths × 2 masks + 4 ablations at N 40)
  assert.equal(cells.length, 3 * (4 + 4));
  for (const c of cells) {
    for (const t of ['o', 'dq', 'dk', 'dv'] as const) {
      assert.ok(c.relL1[t] > 1e-4 && c.relL1[t] < 0.5, `${c.arm} ${c.input} ${t}: rel L1 ${c.relL1[t]}`);
      assert.ok(c.cosine[t] > 0.9 && c.cosine[t] <= 1);
    }
    assert.equal(c.nonFinite, 0);
  }
  // the ablation mechanisms are visible even at this size: unquantized dS and K smoothing matter
  const dq = (arm: string, input: string) =>
    cells.find((c) => c.arm === arm && c.input === input && c.n === 40 && !c.causal)?.relL1.dq as number;
  assert.ok(dq('float64 dS', 'gaussian') < dq('sagebwd', 'gaussian'));
  assert.ok(dq('no K smoothing', 'k-bias') > dq('sagebwd', 'k-bias'));
  assert.equal(a.summary.findings.length, 8);
  for (const f of a.summary.findings)
    assert.ok(['holds', 'does-not-hold', 'inconclusive'].includes(f.verdict.outcome));
  assert.equal(a.summary.plots.length, 2);
  assert.equal(a.summary.headlines[0].method, 'SageBwd');
  assert.ok(a.summary.metrics.every((m) => Number.isFinite(m.mean) && m.n === 2));
});
