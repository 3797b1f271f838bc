import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, randn, tensor } from '../../src/core/tensor.js';
import type { Rng } from '../../src/core/rng.js';
import { MalformedFileError, ShapeError } from '../../src/core/errors.js';
import { writeSafetensorsFile } from '../../src/io/safetensors-file.js';
import * as ag from '../../src/autograd/index.js';
import { adamw } from '../../src/train/adamw.js';
import { sgd } from '../../src/train/sgd.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { type TrainLoopOptions, type TrainProgress, trainLoop } from '../../src/train/train-loop.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparq-train-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh two-layer tanh classifier, as a new process would build it (same init seed, new objects). */
function freshModel() {
  const params = {
    w1: ag.param(randn([4, 8], { seed: 1, dtype: 'float64' })),
    w2: ag.param(randn([8, 3], { seed: 2, dtype: 'float64' })),
  };
  return { params, optimizer: adamw(Object.values(params), { lr: 0.05 }) };
}

/** Step i's loss on a batch drawn from that step's stream, so the data depend on i alone. */
function lossOf(params: ReturnType<typeof freshModel>['params']) {
  return (_i: number, rng: Rng): ag.Var => {
    const x = new Float64Array(6 * 4);
    rng.fillNormal(x);
    const targets = Array.from({ length: 6 }, () => Math.floor(rng.uniform() * 3));
    const h = ag.tanh(ag.matmul(ag.constant(new Tensor(x, [6, 4], 'float64')), params.w1));
    return ag.crossEntropy(ag.matmul(h, params.w2), targets);
  };
}

function run(extra: Partial<TrainLoopOptions> & { steps: number }) {
  const model = freshModel();
  const result = trainLoop({ seed: 7, step: lossOf(model.params), ...model, ...extra });
  return { ...model, result };
}

const bytes = (v: ag.Var) =>
  Buffer.from(v.value.data.buffer, v.value.data.byteOffset, v.value.data.byteLength);

test('20 steps straight equal 10 steps, checkpoint, fresh objects, resume 10 — bit for bit', () => {
  const path = join(dir, 'resume.safetensors');
  const straight = run({ steps: 20 });
  run({ steps: 10, checkpoint: { path, every: 10 } });
  const progress: TrainProgress[] = [];
  const resumed = run({
    steps: 20,
    checkpoint: { path, every: 10, resume: true },
    onProgress: (p) => progress.push(p),
  });
  assert.equal(resumed.result.startStep, 10);
  assert.deepEqual(
    progress.map((p) => p.step),
    [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
  );
  assert.equal(resumed.result.lastLoss, straight.result.lastLoss);
  assert.equal(resumed.optimizer.stepCount, 20);
  for (const name of ['w1', 'w2'] as const) {
    assert.ok(bytes(resumed.params[name]).equals(bytes(straight.params[name])), name);
  }
  assert.deepEqual(resumed.optimizer.state(), straight.optimizer.state());
  assert.ok(straight.result.lastLoss < progress[0].loss, 'the model trains');
});

test('a run interrupted mid-way resumes from its last checkpoint and ends identical; no temporary files remain', () => {
  const path = join(dir, 'interrupted.safetensors');
  const straight = run({ steps: 12 });
  const crash = (i: number) => {
    if (i === 9) throw new Error('interrupted');
  };
  const model = freshModel();
  const step = lossOf(model.params);
  assert.throws(
    () =>
      trainLoop({
        seed: 7,
        steps: 12,
        ...model,
        step: (i, rng) => (crash(i), step(i, rng)),
        checkpoint: { path, every: 4, resume: true },
      }),
    /interrupted/,
  );
  const resumed = run({ steps: 12, checkpoint: { path, every: 4, resume: true } });
  assert.equal(resumed.result.startStep, 8);
  for (const name of ['w1', 'w2'] as const)
    assert.ok(bytes(resumed.params[name]).equals(bytes(straight.params[name])));
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp')),
    [],
  );
});

test('progress reports every step and checkpoints; a NaN loss skips the update and is counted', () => {
  const p = ag.param(tensor([1, 2], [2], 'float64'));
  const opt = sgd([p], { lr: 0.1 });
  const progress: TrainProgress[] = [];
  const result = trainLoop({
    steps: 5,
    seed: 0,
    params: { p },
    optimizer: opt,
    step: (i) => ag.mul(ag.sum(ag.mul(p, p)), ag.constant(tensor([i === 2 ? NaN : 1], [], 'float64'))),
    checkpoint: { path: join(dir, 'progress.safetensors'), every: 2 },
    onProgress: (q) => progress.push(q),
  });
  assert.deepEqual(
    progress.map((q) => [q.step, q.applied, q.skippedSteps, q.checkpointed]),
    [
      [1, true, 0, false],
      [2, true, 0, true],
      [3, false, 1, false],
      [4, true, 1, true],
      [5, true, 1, true],
    ],
  );
  assert.equal(result.skippedSteps, 1);
  assert.equal(opt.stepCount, 4);
  const expected = [1, 2];
  for (let k = 0; k < 4; k++) for (let j = 0; j < 2; j++) expected[j] -= 0.1 * (2 * expected[j]); // ∇Σθ² = 2θ
  assert.deepEqual([...p.value.data], expected);
});

test('checkpoint file round trip: params, optimizer state, counters and metadata', () => {
  const path = join(dir, 'roundtrip.safetensors');
  const a = run({ steps: 3 });
  saveCheckpoint(path, { ...a, step: 3, metadata: { note: 'hello' } });
  const b = freshModel();
  const loaded = loadCheckpoint(path, b);
  assert.deepEqual(loaded, { step: 3, metadata: { note: 'hello' } });
  assert.deepEqual(b.optimizer.state(), a.optimizer.state());
  for (const name of ['w1', 'w2'] as const) assert.ok(bytes(b.params[name]).equals(bytes(a.params[name])));
});

test('a checkpoint that does not fit the model is a typed error and changes nothing', () => {
  const path = join(dir, 'mismatch.safetensors');
  const a = run({ steps: 1 });
  saveCheckpoint(path, { ...a, step: 1 });
  const wrongShape = ag.param(randn([4, 9], { seed: 1, dtype: 'float64' }));
  const w2 = ag.param(randn([8, 3], { seed: 2, dtype: 'float64' }));
  const before = Buffer.from(bytes(w2));
  assert.throws(
    () =>
      loadCheckpoint(path, { params: { w1: wrongShape, w2 }, optimizer: adamw([wrongShape, w2], { lr: 1 }) }),
    ShapeError,
  );
  assert.ok(bytes(w2).equals(before));
  const fresh = freshModel();
  assert.throws(
    () => loadCheckpoint(path, { params: { w1: fresh.params.w1 }, optimizer: fresh.optimizer }),
    ShapeError,
  );
  const foreign = join(dir, 'foreign.safetensors');
  writeSafetensorsFile(foreign, { w: randn([2]) });
  assert.throws(() => loadCheckpoint(foreign, fresh), MalformedFileError);
});
