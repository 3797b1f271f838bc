import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';
import { adamw } from '../../src/train/adamw.js';
import { rampingAdamW, updatePeriods } from '../../src/train/q-ramping.js';

const vec = (xs: number[]) => tensor(xs, [xs.length], 'float64');

test('updatePeriods: min(⌊(dist_Q/k1)/(dist_W + ε)⌋·k2 + 1, N_max)', () => {
  const distW = Float64Array.of(0.1, 0.1, 0.01, 0, 1);
  const distQ = Float64Array.of(0, 1.5, 0.5, 0, 40);
  // R_w = 0, 15, 50, —, 40 → ⌊R_w/16⌋ = 0, 0, 3, 0, 2
  assert.deepEqual([...updatePeriods(distW, distQ)], [1, 1, 16, 1, 11]);
  assert.deepEqual([...updatePeriods(distW, distQ, { nMax: 12 })], [1, 1, 12, 1, 11]);
  assert.deepEqual([...updatePeriods(distW, distQ, { k1: 8, k2: 4 })], [1, 5, 25, 1, 17]); // 5/(1 + ε) floors to 4
  assert.throws(() => updatePeriods(distW, Float64Array.of(1)), RangeError);
});

test('with every period 1 Q-Ramping AdamW is AdamW', () => {
  const grads = [
    [0.3, -1.2],
    [-0.7, 0.4],
    [0.2, 0.9],
  ];
  const opts = { lr: 0.01, weightDecay: 0.05 };
  const a = ag.param(vec([1.5, -0.25]));
  const b = ag.param(vec([1.5, -0.25]));
  const oa = adamw([a], opts);
  const ob = rampingAdamW([b], opts);
  for (const g of grads) {
    a.grad = vec(g);
    b.grad = vec(g);
    oa.step();
    ob.step();
    assert.deepEqual([...b.value.data], [...a.value.data]);
  }
});

test('period 2: accumulate, then one step on the mean gradient with lr × 2', () => {
  const p = ag.param(vec([1, 1]));
  const opt = rampingAdamW([p], { lr: 0.1, betas: [0.5, 0.5], eps: 0, weightDecay: 0.1 });
  opt.setUpdatePeriods(0, Float64Array.of(2, 1));
  p.grad = vec([1, 1]);
  opt.step();
  // element 0 only decays; element 1 takes a plain AdamW step: m̂/√v̂ = 1
  assert.equal(p.value.data[0], 0.99);
  assert.equal(p.value.data[1], 0.99 - 0.1);
  p.grad = vec([3, 1]);
  opt.step();
  // element 0, t = 2: g = 2, m = 1, v = 2, step (0.1·2/0.75)·1/(√2/√0.75)
  const want0 = 0.99 * 0.99 - (0.2 / 0.75) * (1 / (Math.sqrt(2) / Math.sqrt(0.75)));
  assert.ok(Math.abs(p.value.data[0] - want0) < 1e-15, `${p.value.data[0]} vs ${want0}`);
  const s = opt.state();
  assert.deepEqual([...s.tensors['grad_acc.0'].data], [0, 0]);
  assert.deepEqual([...s.tensors['step_acc.0'].data], [0, 0]);
  assert.deepEqual([...s.tensors['update_period.0'].data], [2, 1]);
});

test('periods round-trip through state and bad periods are rejected', () => {
  const p = ag.param(vec([1, 2, 3]));
  const opt = rampingAdamW([p], { lr: 0.1 });
  assert.throws(() => opt.setUpdatePeriods(0, Float64Array.of(1, 2)), RangeError);
  assert.throws(() => opt.setUpdatePeriods(0, Float64Array.of(1, 0, 2)));
  assert.throws(() => opt.setUpdatePeriods(1, Float64Array.of(1, 1, 1)), RangeError);
  opt.setUpdatePeriods(0, Float64Array.of(1, 3, 6));
  const q = ag.param(vec([1, 2, 3]));
  const other = rampingAdamW([q], { lr: 0.1 });
  other.loadState(opt.state());
  assert.deepEqual([...other.state().tensors['update_period.0'].data], [1, 3, 6]);
});

test('a period shrunk below the accumulated count waits for the next multiple (step_acc % period)', () => {
  const p = ag.param(vec([0]));
  const opt = rampingAdamW([p], { lr: 0.1, betas: [0, 0], eps: 0, weightDecay: 0 });
  opt.setUpdatePeriods(0, Float64Array.of(5));
  for (let i = 0; i < 3; i++) {
    p.grad = vec([1]);
    opt.step();
  }
  assert.equal(p.value.data[0], 0);
  opt.setUpdatePeriods(0, Float64Array.of(3)); // count is 3; the next counts are 4, 5, 6
  p.grad = vec([1]);
  opt.step();
  p.grad = vec([1]);
  opt.step();
  assert.equal(p.value.data[0], 0, 'counts 4 and 5 are not multiples of 3');
  p.grad = vec([4]);
  opt.step();
  // count 6: g = (1·5 + 4)/6 = 1.5, β = 0 so m̂/√v̂ = 1; step lr·6 = 0.6
  assert.ok(Math.abs(p.value.data[0] + 0.6) < 1e-15, `${p.value.data[0]}`);
  assert.deepEqual([...opt.state().tensors['step_acc.0'].data], [0]);
});
