import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { findExperiment } from '../../src/experiments/registry.js';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import {
  type Int8GluSeedResult,
  extraActivationBits,
  kurtosis,
  outlierStats,
} from '../../src/experiments/int8-glu.js';

const TINY = {
  steps: 6,
  batch: 4,
  seqLen: 16,
  dim: 32,
  heads: 2,
  layers: 1,
  swigluHidden: 32,
  curveEvery: 3,
  valWindows: 4,
  statWindows: 16,
  fallbackRate: 0.5,
  arms: { swiglu: ['fp32', 'int8-block', 'int8-fallback'], gelu: ['fp32'] },
};

test('outlier statistics and the matched-bits accounting', () => {
  assert.equal(kurtosis([1, -1, 1, -1]), 1);
  const g = new Float64Array(20000);
  Rng.fromSeed(3).fillNormal(g);
  assert.ok(Math.abs(kurtosis(g) - 3) < 0.15, `Gaussian kurtosis ${kurtosis(g)}`);
  // 64×64 of ones with one element 10: blocks absmax [10, 1, 1, 1]
  const x = new Float64Array(64 * 64).fill(1);
  x[0] = 10;
  const s = outlierStats(x, 64, 64);
  assert.equal(s.maxOverMedianBlock, 10);
  assert.equal(s.blocksAbove4xMedian, 0.25);
  assert.ok(Math.abs(s.absmaxOverRms - 10 / Math.sqrt((4095 + 100) / 4096)) < 1e-12);
  assert.equal(extraActivationBits('int8-block-16', 0), 32 / 256 - 32 / 1024);
  assert.equal(extraActivationBits('int8-block-8', 0), 32 / 64 - 32 / 1024);
  assert.equal(extraActivationBits('int8-fallback', 1 / 16), (8 + 32 / 1024) / 16);
  assert.equal(extraActivationBits('int8-block', 0), 0);
});

test('int8-glu on a tiny config: deterministic, finite, paired arms, fallback and smaller blocks cut the GEMM error', async () => {
  const e = findExperiment('int8-glu');
  assert.ok(e && e.defaultSeeds >= 3 && e.preregistered.includes('70 %'));
  const opts = { mode: 'quick' as const, seeds: 2, configOverride: TINY };
  const a = await runExperiment(e, opts);
  const b = await runExperiment(e, { ...opts, seeds: 1 });
  assert.deepEqual(reproducibleRecord(b).runs[0], reproducibleRecord(a).runs[0]);
  const r = a.runs[0].result as Int8GluSeedResult;
  const sw = r.models.swiglu!;
  for (const arm of ['fp32', 'int8-block', 'int8-fallback'] as const) {
    const res = sw.arms[arm]!;
    assert.equal(res.curve.length, 2);
    assert.ok(res.valLoss > 0 && res.valLoss < 10 && Number.isFinite(res.valLossFp32));
  }
  assert.equal(sw.arms.fp32!.valLossFp32, sw.arms.fp32!.valLoss);
  assert.notEqual(sw.arms['int8-block']!.valLossFp32, sw.arms['int8-block']!.valLoss);
  assert.ok(sw.arms['int8-fallback']!.fallbackRate > 0 && sw.arms['int8-fallback']!.fallbackRate <= 0.5);
  // same init and batches: the first training-loss point differs between arms only by quantization
  assert.ok(Math.abs(sw.arms['int8-block']!.curve[0].loss - sw.arms.fp32!.curve[0].loss) < 0.05);
  assert.ok(sw.gemmError['int8-block'] > 0);
  assert.ok(sw.gemmError['fallback top-1/8'] < sw.gemmError['int8-block']);
  assert.ok(sw.gemmError['int8-block-8'] < sw.gemmError['int8-block']);
  assert.equal(sw.gemmFallbackRate['fallback top-1/8'], 1 / 8);
  assert.equal(sw.outliers.length, 1);
  assert.ok(sw.outliers[0].maxOverMedianBlock >= 1 && sw.outliers[0].kurtosis > 0);
  assert.ok(r.models.gelu!.arms.fp32 && !r.models.gelu!.arms['int8-block']);
  for (const m of a.summary.metrics)
    assert.ok(Number.isFinite(m.mean) || m.mean === undefined, `${m.metric} ${m.arm}`);
  assert.equal(a.summary.findings.length, 4);
  assert.ok(
    a.summary.plots.some((p) => p.id === 'gap-closed') && a.summary.plots.some((p) => p.id === 'loss-swiglu'),
  );
});
