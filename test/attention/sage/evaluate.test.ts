import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVAL_SHAPES,
  type EvalRow,
  type SageEvaluation,
  evaluateSage,
} from '../../../src/attention/sage/evaluate.js';

/** Small enough for a test (about 1 s a seed), large enough for whole 128 × 64 tiles. */
const TINY = { heads: 1, tokens: 128, longTokens: 256 };

const progress: string[] = [];
const quick = evaluateSage({ quick: true, seed: 3, shapes: TINY, onProgress: (m) => progress.push(m) });

function row(e: SageEvaluation, family: EvalRow['family'], input: string, config: string): EvalRow {
  const found = e.rows.find((r) => r.family === family && r.input === input && r.config === config);
  assert.ok(found, `no row ${family} / ${input} / ${config}`);
  return found;
}

const finding = (e: SageEvaluation, family: string, input: string) => {
  const found = e.findings.find((f) => f.family === family && f.input === input);
  assert.ok(found, `no finding ${family} on ${input}`);
  return found;
};

test('quick mode: one seed, the requested shapes, every preset on every input, progress per distinct run', () => {
  assert.equal(quick.mode, 'quick');
  assert.deepEqual(quick.seeds, [3]);
  assert.equal(quick.backend, 'cpu');
  assert.deepEqual(quick.shapes, { ...EVAL_SHAPES.quick, ...TINY });
  assert.deepEqual(
    quick.inputs.map((i) => [i.id, i.shape]),
    [
      ['gaussian', [1, 1, 128, 64]],
      ['k-bias', [1, 1, 128, 64]],
      ['qk-outliers', [1, 1, 128, 64]],
      ['v-bias', [1, 1, 128, 64]],
      ['long', [1, 1, 256, 64]],
    ],
  );
  const presets = quick.rows.filter((r) => r.family === 'preset');
  assert.deepEqual(
    presets.map((r) => `${r.input} ${r.config}`),
    quick.inputs.flatMap((i) => ['sage1', 'sage2', 'sage2++', 'sage3'].map((p) => `${i.id} ${p}`)),
  );
  // finite inputs never give NaN, and the presets never overflow
  for (const r of presets) assert.equal(r.nanCount + r.infCount, 0, `${r.input} ${r.config}`);
  for (const r of quick.rows) assert.equal(r.nanCount, 0, `${r.input} ${r.config}`);
  // a run shared by a preset and an ablation (sage3 = two-level NVFP4 P) is computed once
  const distinct = new Set(quick.rows.map((r) => `${r.input} ${JSON.stringify(r.options)}`));
  assert.equal(progress.length, distinct.size);
  assert.match(progress[0], /^\[1\/\d+\] seed 3 gaussian: sage1$/);
  assert.match(
    progress.at(-1) as string,
    new RegExp(`^\\[${distinct.size}/${distinct.size}\\] seed 3 long: `),
  );
  for (const r of quick.rows) {
    assert.deepEqual(r.relL1.perSeed.length, 1);
    assert.equal(r.relL1.std, null);
  }
});

test('preset accuracy: sage1 > 0.999 on Gaussian, INT8/FP8 presets ≫ NVFP4, K bias harmless after smoothing', () => {
  const cos = (input: string, preset: string) => row(quick, 'preset', input, preset).cosine?.mean as number;
  const l1 = (input: string, preset: string) => row(quick, 'preset', input, preset).relL1.mean;
  assert.ok(cos('gaussian', 'sage1') > 0.999, `sage1 ${cos('gaussian', 'sage1')}`);
  assert.ok(cos('long', 'sage1') > 0.999);
  for (const p of ['sage2', 'sage2++']) assert.ok(cos('gaussian', p) > 0.998, `${p} ${cos('gaussian', p)}`);
  // NVFP4's 9.5% element error against INT8's ~0.5%: sage3 is several times less accurate than sage2
  assert.ok(l1('gaussian', 'sage3') > 3 * l1('gaussian', 'sage2'));
  assert.ok(cos('gaussian', 'sage3') > 0.95);
  // smoothK subtracts the token mean, bias included: k-bias measures as Gaussian up to float32 rounding
  for (const p of ['sage1', 'sage2', 'sage2++', 'sage3']) {
    assert.ok(
      Math.abs(l1('k-bias', p) / l1('gaussian', p) - 1) < 0.05,
      `${p}: ${l1('k-bias', p)} vs ${l1('gaussian', p)}`,
    );
  }
  // metrics are those of the metrics module: rmse ≥ 0, relL1 > 0 for a quantized kernel
  for (const r of quick.rows.filter((x) => x.infCount === 0)) {
    assert.ok(r.relL1.mean > 0 && r.rmse.mean > 0 && (r.cosine?.mean as number) <= 1);
  }
});

test('K smoothing rescues INT4 QK on the K-bias input', () => {
  const on = row(quick, 'smooth-k', 'k-bias', 'sage2, INT4 per-thread QK, smoothK on');
  const off = row(quick, 'smooth-k', 'k-bias', 'sage2, INT4 per-thread QK, smoothK off');
  assert.deepEqual(off.options, {
    preset: 'sage2',
    qk: { kind: 'int4', granularity: 'per-thread' },
    smoothK: false,
  });
  assert.ok((on.cosine?.mean as number) > (off.cosine?.mean as number));
  assert.ok(off.relL1.mean > 2 * on.relL1.mean, `${off.relL1.mean} vs ${on.relL1.mean}`);
  const f = finding(quick, 'smooth-k', 'k-bias');
  assert.equal(f.holds, true);
  assert.deepEqual(
    f.evidence.map((e) => e.relL1),
    [on.relL1.mean, off.relL1.mean],
  );
});

test('fp16 accumulation: unlimited overflows to ±inf and never NaN; the 2.25 limit is finite and matches fp32', () => {
  const unlimited = row(
    quick,
    'fp16-accumulation',
    'v-bias',
    'sage2, fp32+fp16, vScaleMax 448 (no range limit)',
  );
  const limited = row(quick, 'fp16-accumulation', 'v-bias', 'sage2, fp32+fp16, vScaleMax 2.25 (SA2++ limit)');
  const fp32 = row(quick, 'fp16-accumulation', 'v-bias', 'sage2, fp32, vScaleMax 2.25');
  assert.ok(unlimited.infCount > 0);
  assert.equal(unlimited.nanCount, 0);
  assert.equal(unlimited.relL1.mean, Infinity);
  assert.equal(unlimited.cosine, null, 'the cosine of an output with ±inf is undefined');
  assert.equal(limited.infCount + limited.nanCount, 0);
  assert.ok(Number.isFinite(limited.relL1.mean) && limited.relL1.mean < 0.01);
  assert.ok(
    Math.abs(limited.relL1.mean / fp32.relL1.mean - 1) < 0.1,
    `${limited.relL1.mean} vs ${fp32.relL1.mean}`,
  );
  assert.equal(finding(quick, 'fp16-accumulation', 'v-bias').holds, true);
});

test('V smoothing helps the V-bias input; the other ablations give sane, finite numbers', () => {
  const off = row(quick, 'smooth-v', 'v-bias', 'sage2');
  const on = row(quick, 'smooth-v', 'v-bias', 'sage2, smoothV on');
  assert.ok(off.relL1.mean > 2 * on.relL1.mean, `${off.relL1.mean} vs ${on.relL1.mean}`);
  // the preset row and the ablation baseline are one run
  assert.deepEqual(off.relL1, row(quick, 'preset', 'v-bias', 'sage2').relL1);
  for (const family of ['int4-granularity', 'p-format', 'nvfp4-p-scaling'] as const) {
    for (const r of quick.rows.filter((x) => x.family === family)) {
      assert.ok(r.infCount === 0 && r.relL1.mean < 0.6, `${family} ${r.input} ${r.config}: ${r.relL1.mean}`);
    }
  }
  // INT4 per-token uses the tightest scales of the three granularities on any input
  for (const input of ['gaussian', 'qk-outliers']) {
    const l1 = (g: string) => row(quick, 'int4-granularity', input, `sage2, INT4 ${g} QK`).relL1.mean;
    assert.ok(l1('per-token') < l1('per-thread') && l1('per-thread') < l1('per-block'), input);
  }
  // two-level NVFP4 P is the sage3 preset; direct changes only P's scaling
  const twoLevel = row(quick, 'nvfp4-p-scaling', 'gaussian', 'sage3, two-level NVFP4 P');
  assert.deepEqual(twoLevel.relL1, row(quick, 'preset', 'gaussian', 'sage3').relL1);
  const direct = row(quick, 'nvfp4-p-scaling', 'gaussian', 'sage3, direct NVFP4 P');
  assert.notEqual(direct.relL1.mean, twoLevel.relL1.mean);
});

test('each verdict follows from its evidence by the stated criterion', () => {
  assert.deepEqual(
    quick.findings.map((f) => `${f.family} ${f.input}`),
    [
      'smooth-k k-bias',
      'int4-granularity gaussian',
      'int4-granularity qk-outliers',
      'p-format gaussian',
      'p-format long',
      'nvfp4-p-scaling gaussian',
      'nvfp4-p-scaling long',
      'fp16-accumulation v-bias',
      'smooth-v v-bias',
    ],
  );
  for (const f of quick.findings) {
    const l1 = f.evidence.map((e) => e.relL1);
    const expected = {
      'smooth-k': () => l1[1] >= 2 * l1[0],
      'int4-granularity': () => Math.abs(l1[0] / l1[1] - 1) <= 0.1 && l1[2] >= 2 * l1[0],
      'p-format': () => l1[1] >= 2 * l1[0],
      'nvfp4-p-scaling': () => l1[1] >= 2 * l1[0],
      'fp16-accumulation': () =>
        f.evidence.every((e) => e.nanCount === 0) &&
        (f.evidence[0].infCount > 0 || l1[0] >= 1) &&
        f.evidence[1].infCount === 0 &&
        Math.abs(l1[1] / l1[2] - 1) <= 0.1 &&
        l1[1] <= 1.1 * l1[3],
      'smooth-v': () => l1[0] >= 2 * l1[1],
    }[f.family]();
    assert.equal(f.holds, expected, `${f.family} on ${f.input}: ${f.measured}`);
    assert.ok(f.claim && f.paper && f.criterion && f.measured);
  }
});

test('full mode: three seeds with mean ± std; the same seed gives the same numbers', () => {
  const full = evaluateSage({ seed: 3, shapes: { ...TINY, tokens: 64, longTokens: 128 } });
  assert.equal(full.mode, 'full');
  assert.deepEqual(full.seeds, [3, 4, 5]);
  const r = row(full, 'preset', 'gaussian', 'sage2');
  const values = r.relL1.perSeed;
  assert.equal(values.length, 3);
  assert.equal(new Set(values).size, 3, 'each seed draws its own inputs');
  const mean = (values[0] + values[1] + values[2]) / 3;
  assert.ok(Math.abs(r.relL1.mean - mean) < 1e-15);
  const std = Math.sqrt(values.reduce((a, x) => a + (x - mean) ** 2, 0) / 2);
  assert.ok(Math.abs((r.relL1.std as number) - std) < 1e-15);
  // seed 3 of the full run is the quick run of seed 3 at the same shapes
  const again = evaluateSage({ quick: true, seed: 3, shapes: { ...TINY, tokens: 64, longTokens: 128 } });
  assert.equal(row(again, 'preset', 'gaussian', 'sage2').relL1.mean, values[0]);
  const unlimited = full.rows.find((x) => x.family === 'fp16-accumulation' && x.infCount > 0);
  assert.ok(unlimited && unlimited.relL1.std === null, 'no std of an infinite mean');
});

test('seed must be a non-negative safe integer', () => {
  for (const seed of [-1, 1.5, NaN, 2 ** 53]) {
    assert.throws(() => evaluateSage({ quick: true, seed, shapes: TINY }), RangeError, String(seed));
  }
});
