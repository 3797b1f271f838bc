import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/core/tensor.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { OscillationTracker, quantizeMxfp4 } from '../../src/nn/index.js';
import { adamw } from '../../src/train/adamw.js';
import { rampingAdamW, updatePeriods } from '../../src/train/q-ramping.js';
import { calibrateRamping } from '../../src/train/q-ramping-calibration.js';

/**
 * A 1×32 weight pulled toward fixed targets by Σ (w − t)²: element 0's target 6 fixes the group
 * scale at 1; element 1's target 0.75 is the E2M1 threshold between 0.5 and 1, so AdamW's
 * ±lr steps around it flip the quantized value; the others sit mid-cell and never flip.
 */
function problem() {
  const targets = new Float64Array(32).fill(1.1);
  targets[0] = 6;
  targets[1] = 0.75;
  targets[2] = 2.5 + 0.5 * 0.5; // mid-cell of [2.5, 3.5]
  const w = ag.param(
    new Tensor(
      Float64Array.from(targets, (t, i) => t + (i === 1 ? 0.003 : 0)),
      [1, 32],
      'float64',
    ),
  );
  const bias = ag.param(new Tensor(Float64Array.of(0.5), [1], 'float64'));
  const t = ag.constant(new Tensor(targets, [1, 32], 'float64'));
  const loss = () => ag.add(ag.sum(ag.mul(ag.sub(w, t), ag.sub(w, t))), ag.mul(bias, bias));
  return { w, bias, t, loss };
}

test('an element hovering on an FP4 threshold is ramped; settled ones keep period 1', () => {
  const { w, bias, loss } = problem();
  const opt = rampingAdamW([w, bias], { lr: 1e-3, weightDecay: 0 });
  const r = calibrateRamping({ optimizer: opt, weights: [0], loss, nMax: 1000 });
  const p = r.periods[0];
  assert.ok(p[1] > 1, `threshold element period ${p[1]}`);
  for (let i = 0; i < 32; i++) if (i !== 1) assert.equal(p[i], 1, `element ${i}`);
  assert.equal(r.oscillatingFraction[0], 1 / 32);
  assert.ok(r.rWQ[0] > r.rW[0]);
  assert.equal(r.rampedFraction, 1 / 32);
  assert.deepEqual([...opt.state().tensors['update_period.0'].data], [...p]);
  assert.deepEqual([...opt.state().tensors['update_period.1'].data], [1]);
  // nMax clamps
  const capped = calibrateRamping({ optimizer: opt, weights: [0], loss, nMax: 7 });
  assert.equal(capped.periods[0][1], 7);
});

test('periods equal a hand-run window of plain AdamW, and the calibration leaves no trace', () => {
  const a = problem();
  const opt = rampingAdamW([a.w, a.bias], { lr: 1e-3, weightDecay: 0.05 });
  // some history first, with periods and accumulators in the state
  opt.setUpdatePeriods(0, new Float64Array(32).fill(3));
  for (let s = 0; s < 4; s++) {
    opt.zeroGrad();
    ag.backward(a.loss());
    opt.step();
  }
  const before = opt.state();
  const valuesBefore = [Float64Array.from(a.w.value.data), Float64Array.from(a.bias.value.data)];

  // The reference: a plain AdamW from the same moments and step count, 31 steps, one tracker.
  const b = problem();
  b.w.value.data.set(valuesBefore[0]);
  b.bias.value.data.set(valuesBefore[1]);
  const plain = adamw([b.w, b.bias], { lr: 1e-3, weightDecay: 0.05 });
  plain.loadState({
    step: before.step,
    skippedSteps: before.skippedSteps,
    tensors: Object.fromEntries(Object.entries(before.tensors).filter(([k]) => k.startsWith('exp_avg'))),
  });
  const tracker = new OscillationTracker(32);
  const m = () => ({ data: b.w.value.data as Float64Array, rows: 1, cols: 32 });
  for (let s = 0; s <= 30; s++) {
    plain.zeroGrad();
    ag.backward(b.loss());
    plain.step();
    tracker.observe(m(), quantizeMxfp4(m(), { along: 'row', rounding: 'nearest-even' }));
  }
  assert.equal(tracker.transitions, 30);
  const want = updatePeriods(tracker.distW, tracker.distQ, { nMax: 50 });

  const calls: number[] = [];
  const r = calibrateRamping({
    optimizer: opt,
    weights: [0],
    loss: (i) => {
      calls.push(i);
      return a.loss();
    },
    nMax: 50,
  });
  assert.deepEqual(calls, [...Array(31).keys()]);
  assert.ok(want[1] > 1, `the reference window ramps element 1 (period ${want[1]})`);
  assert.deepEqual([...r.periods[0]], [...want]);
  assert.deepEqual(a.w.value.data, valuesBefore[0]);
  assert.deepEqual(a.bias.value.data, valuesBefore[1]);
  const after = opt.state();
  assert.equal(after.step, before.step);
  for (const [k, t] of Object.entries(before.tensors)) {
    if (k.startsWith('update_period')) continue;
    assert.deepEqual(after.tensors[k].data, t.data, `${k} restored (accumulators kept)`);
  }
});

test('recalibrating each epoch replaces the periods (TetraJet Alg. 2)', () => {
  const { w, bias, t, loss } = problem();
  const opt = rampingAdamW([w, bias], { lr: 1e-3, weightDecay: 0 });
  const first = calibrateRamping({ optimizer: opt, weights: [0], loss, nMax: 40 });
  assert.ok(first.periods[0][1] > 1);
  for (let s = 0; s < 40; s++) {
    opt.zeroGrad();
    ag.backward(loss());
    opt.step();
  }
  // the next epoch's data moves element 1's optimum mid-cell: it settles and is no longer ramped
  t.value.data[1] = 1.1;
  w.value.data[1] = 1.1;
  const second = calibrateRamping({ optimizer: opt, weights: [0], loss, nMax: 40 });
  assert.deepEqual([...second.periods[0]], new Array(32).fill(1));
  assert.deepEqual([...opt.state().tensors['update_period.0'].data], new Array(32).fill(1));
});

test('bad calibration options are typed errors', () => {
  const { w, bias, loss } = problem();
  const opt = rampingAdamW([w, bias], { lr: 1e-3 });
  assert.throws(() => calibrateRamping({ optimizer: opt, weights: [1], loss }), ShapeError);
  assert.throws(() => calibrateRamping({ optimizer: opt, weights: [2], loss }), RangeError);
  assert.throws(
    () => calibrateRamping({ optimizer: opt, weights: [0], loss, steps: 0 }),
    UnsupportedOptionError,
  );
  assert.throws(
    () => calibrateRamping({ optimizer: opt, weights: [0], loss, k2: 2.5 }),
    UnsupportedOptionError,
  );
});
