import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { defineExperiment } from '../../src/experiments/experiment.js';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import { formatMeanStd, meanStd, metricRow } from '../../src/experiments/stats.js';
import { EXPERIMENTS, findExperiment } from '../../src/experiments/registry.js';
import { METHODS } from '../../src/experiments/experiment.js';

/** A toy experiment: the mean of `samples` uniform draws; the claim "the mean is near 0.5". */
const toy = defineExperiment<
  { samples: number; tolerance: number },
  { mean: number; timing: { ms: number } }
>({
  name: 'toy',
  title: 'toy',
  kind: 'experiment',
  methods: ['GFT'],
  claim: 'the mean of uniform draws is 0.5',
  preregistered: '|mean − 0.5| < tolerance',
  defaultSeeds: 3,
  config: (mode) => ({ samples: mode === 'quick' ? 100 : 10_000, tolerance: 0.1 }),
  runSeed(config, seed, ctx) {
    const rng = Rng.fromSeed(seed);
    let sum = 0;
    for (let i = 0; i < config.samples; i++) {
      sum += rng.uniform();
      if (i % 50 === 0) ctx.progress(i, config.samples);
    }
    return { mean: sum / config.samples, timing: { ms: Math.random() } };
  },
  summarize(config, runs) {
    const row = metricRow(
      'mean',
      'uniform',
      runs.map((r) => r.result.mean),
    );
    const holds = Math.abs(row.mean - 0.5) < config.tolerance;
    return {
      metrics: [row],
      findings: [
        {
          claim: 'mean ≈ 0.5',
          verdict: { outcome: holds ? 'holds' : 'does-not-hold', detail: `${row.mean}` },
        },
      ],
      plots: [],
      headlines: [{ method: 'GFT', accuracy: `mean ${row.mean.toFixed(3)}` }],
    };
  },
});

describe('experiment runner', () => {
  test('runs the seeds in order, aggregates, and reports progress from 0 to 1', async () => {
    const fractions: number[] = [];
    const record = await runExperiment(toy, { mode: 'quick', seed: 5, onProgress: (f) => fractions.push(f) });
    assert.deepEqual(record.seeds, [5, 6, 7]);
    assert.deepEqual(
      record.runs.map((r) => r.seed),
      [5, 6, 7],
    );
    assert.deepEqual(record.config, { samples: 100, tolerance: 0.1 });
    const means = record.runs.map((r) => (r.result as { mean: number }).mean);
    assert.equal(record.summary.metrics[0].mean, (means[0] + means[1] + means[2]) / 3);
    assert.equal(record.summary.metrics[0].n, 3);
    assert.equal(fractions[0], 0);
    assert.equal(fractions.at(-1), 1);
    for (let i = 1; i < fractions.length; i++)
      assert.ok(fractions[i] >= fractions[i - 1], 'progress is monotone');
    assert.equal(record.timing.perSeedSeconds.length, 3);
  });

  test('the same seeds give the same record once timings are removed; other seeds do not', async () => {
    const a = reproducibleRecord(await runExperiment(toy, { mode: 'quick', seed: 1 }));
    const b = reproducibleRecord(await runExperiment(toy, { mode: 'quick', seed: 1 }));
    const c = reproducibleRecord(await runExperiment(toy, { mode: 'quick', seed: 2 }));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.equal(JSON.stringify(a).includes('"timing"'), false);
  });

  test('config overrides replace fields; unknown fields and bad seeds are errors', async () => {
    const r = await runExperiment(toy, { mode: 'full', seeds: 1, configOverride: { samples: 10 } });
    assert.deepEqual(r.config, { samples: 10, tolerance: 0.1 });
    await assert.rejects(
      runExperiment(toy, { mode: 'quick', configOverride: { sample: 10 } }),
      /no config field 'sample'/,
    );
    await assert.rejects(runExperiment(toy, { mode: 'quick', seed: -1 }), /seed must be a non-negative/);
    await assert.rejects(runExperiment(toy, { mode: 'quick', seeds: 0 }), /seeds must be a positive integer/);
  });
});

describe('statistics', () => {
  test('mean and sample standard deviation', () => {
    assert.deepEqual(meanStd([2, 4, 4, 4, 5, 5, 7, 9]), { mean: 5, std: Math.sqrt(32 / 7), n: 8 });
    assert.deepEqual(meanStd([3]), { mean: 3, std: null, n: 1 });
    assert.throws(() => meanStd([]), RangeError);
    assert.ok(Number.isNaN(meanStd([1, NaN]).mean));
  });

  test('formatting shows as many digits as the std needs', () => {
    assert.equal(formatMeanStd({ mean: 0.9999954, std: 4.6e-6, n: 3 }), '0.9999954 ± 4.6e-6');
    assert.equal(formatMeanStd({ mean: 0.0119, std: 2.7e-4, n: 3 }), '0.01190 ± 2.7e-4');
    assert.equal(formatMeanStd({ mean: 12.5, std: null, n: 1 }), '12.5');
    assert.equal(formatMeanStd({ mean: Infinity, std: null, n: 1 }), 'inf');
  });
});

describe('registry', () => {
  test('names are unique kebab-case, every method is one of the ten, every experiment has ≥ 3 seeds', () => {
    const names = EXPERIMENTS.map((e) => e.name);
    assert.equal(new Set(names).size, names.length);
    for (const e of EXPERIMENTS) {
      assert.match(e.name, /^[a-z0-9]+(-[a-z0-9]+)*$/);
      assert.ok(
        e.methods.length > 0 && e.methods.every((m) => (METHODS as readonly string[]).includes(m)),
        e.name,
      );
      assert.ok(e.defaultSeeds >= 3, e.name);
      assert.ok(e.claim.length > 0 && e.preregistered.length > 0, e.name);
      assert.equal(findExperiment(e.name), e);
    }
    assert.equal(findExperiment('no-such-experiment'), undefined);
    assert.equal(METHODS.length, 10);
  });
});
