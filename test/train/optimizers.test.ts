import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/core/tensor.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { sgd } from '../../src/train/sgd.js';
import { adamw } from '../../src/train/adamw.js';
import type { Optimizer } from '../../src/train/optimizer.js';

const vec = (xs: number[]) => tensor(xs, [xs.length], 'float64');

/** Sets each parameter's gradient by hand (the optimizers read only `.grad`). */
function setGrads(params: ag.Var[], grads: number[][]): void {
  params.forEach((p, i) => {
    p.grad = vec(grads[i]);
  });
}

/** Runs `grads.length` steps of `opt` on one parameter starting at `theta0`; returns the values after each. */
function run(make: (ps: ag.Var[]) => Optimizer, theta0: number[], grads: number[][]): number[][] {
  const p = ag.param(vec(theta0));
  const opt = make([p]);
  return grads.map((g) => {
    setGrads([p], [g]);
    assert.equal(opt.step(), true);
    return [...p.value.data];
  });
}

const theta0 = [1.5, -0.25, 2];
const grads = [
  [0.3, -1.2, 0.05],
  [-0.7, 0.4, 1.1],
  [0.2, 0.9, -0.6],
];

test('SGD without momentum: θ ← θ − η(g + λθ)', () => {
  const lr = 0.1;
  const wd = 0.05;
  const got = run((ps) => sgd(ps, { lr, weightDecay: wd }), theta0, grads);
  const theta = [...theta0];
  grads.forEach((g, t) => {
    for (let i = 0; i < 3; i++) theta[i] -= lr * (g[i] + wd * theta[i]);
    assert.deepEqual(got[t], theta, `step ${t + 1}`);
  });
});

for (const nesterov of [false, true]) {
  test(`SGD with ${nesterov ? 'Nesterov' : 'heavy-ball'} momentum matches PyTorch's recurrence`, () => {
    const lr = 0.05;
    const mu = 0.9;
    const got = run((ps) => sgd(ps, { lr, momentum: mu, nesterov }), theta0, grads);
    const theta = [...theta0];
    const buf = [0, 0, 0];
    grads.forEach((g, t) => {
      for (let i = 0; i < 3; i++) {
        buf[i] = t === 0 ? g[i] : mu * buf[i] + g[i];
        theta[i] -= lr * (nesterov ? g[i] + mu * buf[i] : buf[i]);
      }
      assert.deepEqual(got[t], theta, `step ${t + 1}`);
    });
  });
}

test('AdamW matches torch.optim.AdamW (decay first, bias-corrected moments) for 3 steps', () => {
  const lr = 0.01;
  const [b1, b2] = [0.8, 0.95];
  const eps = 1e-6;
  const wd = 0.1;
  const got = run((ps) => adamw(ps, { lr, betas: [b1, b2], eps, weightDecay: wd }), theta0, grads);
  const theta = [...theta0];
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < 3; i++) {
      theta[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      // torch.optim.AdamW's single-tensor path: bias corrections folded into step size and denominator.
      const stepSize = lr / (1 - b1 ** t);
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** t) + eps;
      theta[i] -= stepSize * (m[i] / denom);
      // The textbook form m̂ / (√v̂ + ε) agrees up to rounding.
      const textbook = lr * (m[i] / (1 - b1 ** t) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps));
      assert.ok(Math.abs(stepSize * (m[i] / denom) - textbook) <= 1e-15);
    }
    assert.deepEqual(got[k], theta, `step ${t}`);
  });
  // Adam's first step moves each weight by ≈ lr·sign(g) (after decay): a changed update fails this.
  assert.ok(Math.abs(got[0][1] - (theta0[1] * (1 - lr * wd) + lr)) < 1e-7);
});

test('AdamW weight decay is decoupled: it differs from L2 added to the gradient, and decays at zero gradient', () => {
  const lr = 0.1;
  const wd = 0.5;
  const decoupled = run((ps) => adamw(ps, { lr, weightDecay: wd }), [2], [[0], [0]]);
  assert.deepEqual(decoupled[1], [2 * (1 - lr * wd) ** 2], 'zero gradient: the weight only decays');
  // Adam with L2 in the gradient: g' = g + λθ is normalised away, so the step is ≈ lr regardless of λ.
  const p = ag.param(vec([2]));
  const adamL2 = adamw([p], { lr, weightDecay: 0 });
  p.grad = vec([wd * 2]);
  adamL2.step();
  assert.ok(Math.abs(p.value.data[0] - (2 - lr)) < 1e-7);
  assert.notEqual(p.value.data[0], decoupled[0][0]);
});

test('a NaN or Inf gradient skips the whole step and counts it; later steps proceed', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const a = ag.param(vec([1, 2]));
    const b = ag.param(vec([3]));
    const opt = adamw([a, b], { lr: 0.1 });
    setGrads([a, b], [[0.5, 0.5], [1]]);
    opt.step();
    const before = opt.state();
    const values = [[...a.value.data], [...b.value.data]];
    setGrads([a, b], [[0.5, 0.5], [bad]]);
    assert.equal(opt.step(), false);
    assert.equal(opt.skippedSteps, 1);
    assert.equal(opt.stepCount, 1);
    assert.deepEqual([[...a.value.data], [...b.value.data]], values, 'no parameter moved');
    assert.deepEqual(opt.state().tensors, before.tensors, 'no moment moved');
    setGrads([a, b], [[0.5, 0.5], [1]]);
    assert.equal(opt.step(), true);
    assert.equal(opt.stepCount, 2);
  }
});

test('state()/loadState() round trip continues bit-identically; mismatched shapes are ShapeError', () => {
  const make = (ps: ag.Var[]) => adamw(ps, { lr: 0.05 });
  const p = ag.param(vec(theta0));
  const opt = make([p]);
  setGrads([p], [grads[0]]);
  opt.step();
  const saved = opt.state();
  const savedValue = Float64Array.from(p.value.data);
  setGrads([p], [grads[1]]);
  opt.step();

  const q = ag.param(vec([...savedValue]));
  const resumed = make([q]);
  resumed.loadState(saved);
  assert.equal(resumed.stepCount, 1);
  setGrads([q], [grads[1]]);
  resumed.step();
  assert.deepEqual(q.value.data, p.value.data);

  const wrong = ag.param(vec([1, 2]));
  assert.throws(() => make([wrong]).loadState(saved), ShapeError);
  assert.throws(() => make([q, q]).loadState(saved), ShapeError, 'a missing slot');
  assert.throws(() => sgd([q], { lr: 1, momentum: 0.5 }).loadState(saved), ShapeError, 'foreign slots');
});

test('invalid options are UnsupportedOptionError; parameters without a gradient are left alone', () => {
  const p = ag.param(vec([1]));
  assert.throws(() => sgd([p], { lr: 0.1, nesterov: true }), UnsupportedOptionError);
  assert.throws(() => adamw([p], { lr: 0.1, betas: [1, 0.9] }), UnsupportedOptionError);
  assert.throws(() => sgd([p], { lr: -1 }), UnsupportedOptionError);
  const opt = sgd([p], { lr: 0.1 });
  assert.equal(opt.step(), true);
  assert.deepEqual([...p.value.data], [1]);
});

test('lr can follow a schedule between steps; a bad lr is a typed error', () => {
  const p = ag.param(tensor([1, -2], [2], 'float64'));
  const opt = sgd([p], { lr: 0.1 });
  p.grad = tensor([1, 1], [2], 'float64');
  opt.step();
  opt.lr = 0.5;
  assert.equal(opt.lr, 0.5);
  opt.step();
  assert.deepEqual([...p.value.data], [1 - 0.1 - 0.5, -2 - 0.1 - 0.5]);
  const q = ag.param(tensor([3], [1], 'float64'));
  const a = adamw([q], { lr: 0.1, weightDecay: 0.5 });
  a.lr = 0;
  q.grad = tensor([2], [1], 'float64');
  a.step();
  assert.deepEqual([...q.value.data], [3], 'lr 0: neither the Adam step nor the decoupled decay moves it');
  assert.throws(() => (a.lr = -1), UnsupportedOptionError);
  assert.throws(() => (a.lr = NaN), UnsupportedOptionError);
});
