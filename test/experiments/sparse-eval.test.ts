import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reproducibleRecord, runExperiment } from '../../src/experiments/runner.js';
import { findExperiment } from '../../src/experiments/registry.js';
import { type SparseSeedResult, sparseEval } from '../../src/experiments/sparse-eval.js';

// a 4×8×8 clip (N 256), one head of each type, small sweeps
const tiny = {
  frames: 4,
  height: 8,
  width: 8,
  svgBlock: 32,
  svgSampledRows: 16,
  svgDensity: 0.15,
  svgDensities: [0.1, 0.3],
  qClusters: 8,
  kClusters: 32,
  topPs: [0.8, 0.95],
  warmSteps: 3,
  spargeBlockQ: 32,
  spargeBlockK: 16,
  spargeThetas: [0, 0.5],
  spargeTaus: [0.9, 0.99],
  spargeCalibRows: 64,
};

test('registered as the evaluation `sparse`', () => {
  assert.equal(findExperiment('sparse'), sparseEval);
  assert.equal(sparseEval.kind, 'evaluation');
  assert.ok(sparseEval.defaultSeeds >= 3);
});

test('a tiny run: deterministic, metrics in range, kernels agree with the mask scores, positional heads found', async () => {
  const a = await runExperiment(sparseEval, { mode: 'quick', seeds: 1, configOverride: tiny });
  const b = await runExperiment(sparseEval, { mode: 'quick', seeds: 1, configOverride: tiny });
  assert.deepEqual(reproducibleRecord(a), reproducibleRecord(b));
  const r = a.runs[0].result as SparseSeedResult;
  for (const s of [...r.operating, ...r.sweeps]) {
    assert.ok(s.density > 0 && s.density <= 1, `${s.method} density ${s.density}`);
    assert.ok(s.recall >= 0 && s.recall <= 1 + 1e-12, `${s.method} recall ${s.recall}`);
    assert.ok(Number.isFinite(s.relL1) && s.relL1 >= 0);
    assert.ok(s.cosine <= 1 + 1e-12 && s.cosine > 0);
  }
  // the kernels compute what their masks say, to float32 rounding
  for (const k of r.kernelCheck) assert.ok(Math.abs(k.kernelRelL1 - k.maskRelL1) < 1e-5, JSON.stringify(k));
  assert.deepEqual(r.svgKinds.slice(0, 2), ['spatial', 'temporal']);
  // SVG's bands hold positional heads almost exactly; the semantic head is its failure case
  const at = (method: string, kind: string) =>
    r.operating.find((s) => s.method === method && s.kind === kind)!;
  assert.ok(at('SVG', 'spatial').relL1 < 0.01 && at('SVG', 'temporal').relL1 < 0.01);
  assert.ok(at('SVG', 'semantic').relL1 > 5 * at('SVG', 'temporal').relL1);
  assert.ok(at('SVG2', 'semantic').recall > at('SVG2', 'temporal').recall);
  // a larger SVG budget keeps more of the matrix and more of the mass
  const sweep = r.sweeps.filter((s) => s.method === 'SVG' && s.kind === 'semantic');
  assert.ok(sweep[1].density > sweep[0].density && sweep[1].recall >= sweep[0].recall);
  assert.equal(r.warmStart.length, 2);
  // SpargeAttn: one operating point per order and head; a random order cannot be sparser than row-major on the spatial head
  for (const m of ['Sparge row-major', 'Sparge time-major', 'Sparge Hilbert', 'Sparge random']) {
    assert.equal(r.operating.filter((x) => x.method === m).length, 3, m);
  }
  assert.ok(at('Sparge random', 'spatial').density > at('Sparge row-major', 'spatial').density);
  assert.ok(r.timing.denseMs > 0);
  const s = a.summary;
  assert.equal(s.findings.length, 8);
  assert.ok(
    s.metrics.every((m) => Number.isFinite(m.mean)),
    'finite metrics',
  );
  assert.equal(s.plots.length, 2);
  assert.deepEqual(
    s.headlines.map((h) => h.method),
    ['SpargeAttn', 'Sparse VideoGen', 'SVG2'],
  );
});
