import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';
import { VpSchedule } from '../../src/diffusion/vp.js';
import { ConditionalMlp } from '../../src/diffusion/conditional-mlp.js';
import { type GftNetwork, gftBetaForGuidance, gftEpsModel, gftLoss } from '../../src/diffusion/gft.js';
import { dropLabels, epsilonLoss, noiseBatch } from '../../src/diffusion/epsilon-loss.js';
import { gftInterpolateLogits, gftLogitLoss } from '../../src/diffusion/gft-logits.js';

const schedule = new VpSchedule();
const C = 3;
const x0 = (() => {
  const x = new Float64Array(64 * 2);
  Rng.fromSeed(1).fillNormal(x);
  return new Tensor(x, [64, 2], 'float64');
})();
const labels = Int32Array.from({ length: 64 }, (_, i) => i % C);

function gftNet(seed = 2) {
  const net = new ConditionalMlp({
    inputDim: 2,
    hidden: 12,
    layers: 2,
    embedDim: 8,
    numClasses: C,
    scalars: [{ name: 't' }, { name: 'beta', scale: 1000 }],
    seed,
  });
  const fn: GftNetwork = (x, t, l, beta) => net.forward(x, { t, beta }, l);
  return { net, fn };
}

const grads = (ps: ag.Var[]) => ps.flatMap((p) => [...(p.grad?.data ?? new Float64Array(p.value.size))]);

test('GFT loss = mean‖β·ε_s(x_t|c,β) + (1 − β)·sg[ε_u(x_t|∅,1)] − ε‖², dropped rows fed β = 1 and ∅', () => {
  const { net, fn } = gftNet();
  const calls: { labels: number[]; beta: number[] }[] = [];
  const spy: GftNetwork = (x, t, l, b) => (calls.push({ labels: [...l], beta: [...b] }), fn(x, t, l, b));
  const rng = Rng.fromSeed(5);
  const { loss, beta, dropped } = gftLoss(spy, x0, labels, rng, { schedule, numClasses: C });
  // Re-derive every draw from the documented streams and recompute the loss by hand.
  const { xt, eps, t } = noiseBatch(x0, schedule, rng);
  const drop = dropLabels(labels, C, 0.1, rng);
  assert.deepEqual([...dropped], [...drop.dropped]);
  assert.ok(dropped.some((v) => v === 1) && dropped.some((v) => v === 0));
  const betaRng = rng.split(3);
  assert.deepEqual(
    [...beta],
    Array.from({ length: 64 }, () => betaRng.uniform()),
  );
  assert.deepEqual(calls[0].labels, [...drop.labels]);
  assert.deepEqual(
    calls[0].beta,
    [...beta].map((b, i) => (dropped[i] ? 1 : b)),
  );
  assert.deepEqual(calls[1].labels, new Array(64).fill(C));
  assert.deepEqual(calls[1].beta, new Array(64).fill(1));
  const epsS = ag.noGrad(() => fn(ag.constant(xt), t, drop.labels, Float64Array.from(calls[0].beta))).value;
  const epsU = ag.noGrad(() =>
    fn(ag.constant(xt), t, new Int32Array(64).fill(C), new Float64Array(64).fill(1)),
  ).value;
  let want = 0;
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 2; j++) {
      const k = i * 2 + j;
      want += (beta[i] * epsS.data[k] + (1 - beta[i]) * epsU.data[k] - eps.data[k]) ** 2;
    }
  }
  assert.ok(Math.abs(loss.item() - want / 128) < 1e-14);
  void net;
});

test('GFT stop-gradient: the gradient is that of β·ε_s alone; the sg-free ablation differs', () => {
  const { net, fn } = gftNet();
  const params = net.parameters();
  const { loss } = gftLoss(fn, x0, labels, Rng.fromSeed(6), { schedule, numClasses: C });
  ag.backward(loss);
  const gSg = grads(params);
  params.forEach((p) => p.zeroGrad());
  // Same loss with ε_u an explicit constant: identical gradient.
  const rng = Rng.fromSeed(6);
  const { xt, eps, t } = noiseBatch(x0, schedule, rng);
  const drop = dropLabels(labels, C, 0.1, rng);
  const br = rng.split(3);
  const beta = Float64Array.from({ length: 64 }, () => br.uniform());
  const epsU = ag.noGrad(() =>
    fn(ag.constant(xt), t, new Int32Array(64).fill(C), new Float64Array(64).fill(1)),
  ).value;
  const epsS = fn(
    ag.constant(xt),
    t,
    drop.labels,
    Float64Array.from(beta, (b, i) => (drop.dropped[i] ? 1 : b)),
  );
  const bCol = ag.constant(new Tensor(beta, [64, 1], 'float64'));
  const mixed = ag.add(
    ag.mul(bCol, epsS),
    ag.mul(ag.sub(ag.constant(new Tensor(Float64Array.of(1), [], 'float64')), bCol), ag.constant(epsU)),
  );
  const d = ag.sub(mixed, ag.constant(eps));
  ag.backward(ag.mean(ag.mul(d, d)));
  const gManual = grads(params);
  gSg.forEach((g, i) => assert.ok(Math.abs(g - gManual[i]) < 1e-12 * (1 + Math.abs(g)), `param elem ${i}`));
  params.forEach((p) => p.zeroGrad());
  ag.backward(
    gftLoss(fn, x0, labels, Rng.fromSeed(6), { schedule, numClasses: C, stopGradient: false }).loss,
  );
  const gFree = grads(params);
  const diff = gFree.reduce((m, g, i) => Math.max(m, Math.abs(g - gSg[i])), 0);
  assert.ok(diff > 1e-6, 'gradients into ε_u must change the update');
});

test('GFT and CFG losses share t, ε and dropout draws for one seed; CFG loss is the plain ε-MSE', () => {
  const { fn } = gftNet();
  const epsNet = (x: ag.Var, t: Float64Array, l: Int32Array) =>
    fn(x, t, l, new Float64Array(l.length).fill(1));
  const rng = Rng.fromSeed(8);
  const loss = epsilonLoss(epsNet, x0, labels, rng, { schedule, numClasses: C });
  const { xt, eps, t } = noiseBatch(x0, schedule, rng);
  const drop = dropLabels(labels, C, 0.1, rng);
  const pred = ag.noGrad(() => epsNet(ag.constant(xt), t, drop.labels)).value;
  let want = 0;
  for (let k = 0; k < 128; k++) want += (pred.data[k] - eps.data[k]) ** 2;
  assert.ok(Math.abs(loss.item() - want / 128) < 1e-14);
  // β = 1 everywhere makes GFT's loss the CFG loss (the interpolation is then ε_s itself).
  const g = gftLoss(fn, x0, labels, Rng.fromSeed(8), { schedule, numClasses: C, betaMin: 1, betaMax: 1 });
  assert.ok(Math.abs(g.loss.item() - loss.item()) < 1e-14);
});

test('fine-tuning: a zero-initialised β projection on copied CFG weights reproduces the CFG model for every β', () => {
  const cfg = new ConditionalMlp({
    inputDim: 2,
    hidden: 12,
    layers: 2,
    embedDim: 8,
    numClasses: C,
    scalars: [{ name: 't' }],
    seed: 4,
  });
  const gft = new ConditionalMlp({
    inputDim: 2,
    hidden: 12,
    layers: 2,
    embedDim: 8,
    numClasses: C,
    scalars: [{ name: 't' }, { name: 'beta', scale: 1000, init: 'zero' }],
    seed: 9,
  });
  for (const [k, v] of Object.entries(cfg.params))
    (gft.params[k].value.data as Float64Array).set(v.value.data);
  const x = ag.constant(x0);
  const t = Float64Array.from({ length: 64 }, (_, i) => (i * 15) % 1000);
  const want = ag.noGrad(() => cfg.forward(x, { t }, labels)).value.data;
  for (const b of [0.1, 0.5, 1]) {
    const got = ag.noGrad(() => gft.forward(x, { t, beta: new Float64Array(64).fill(b) }, labels)).value.data;
    assert.deepEqual([...got], [...want]);
  }
});

test('GFT sampling: β = 1/w, one NFE per step, β and w validated', () => {
  assert.equal(gftBetaForGuidance(4), 0.25);
  assert.throws(() => gftBetaForGuidance(0.5), UnsupportedOptionError);
  assert.throws(() => gftBetaForGuidance(NaN), UnsupportedOptionError);
  const { fn } = gftNet();
  const m = gftEpsModel(fn, Int32Array.from([0, 1]), 0.5);
  assert.equal(m.nfePerCall, 1);
  assert.deepEqual(m.predict(new Tensor(new Float64Array(4), [2, 2], 'float64'), 10).shape, [2, 2]);
  assert.throws(() => gftEpsModel(fn, Int32Array.from([0]), 0), UnsupportedOptionError);
  assert.throws(() => gftEpsModel(fn, Int32Array.from([0]), 1.5), UnsupportedOptionError);
  for (const bad of [
    { betaMin: -0.1 },
    { betaMax: 2 },
    { betaMin: 0.6, betaMax: 0.4 },
    { labelDropout: 1.5 },
  ]) {
    assert.throws(
      () => gftLoss(fn, x0, labels, Rng.fromSeed(1), { schedule, numClasses: C, ...bad }),
      UnsupportedOptionError,
    );
  }
  assert.throws(
    () => gftLoss(fn, x0, labels.subarray(0, 3), Rng.fromSeed(1), { schedule, numClasses: C }),
    ShapeError,
  );
});

test('GFT logits: β·ℓ_s + (1 − β)·sg[ℓ_u]; gradient β·(softmax − onehot)/N into ℓ_s only', () => {
  const ls = ag.param(new Tensor(Float64Array.from([0.2, -1, 0.5, 1.5, 0, -0.3]), [2, 3], 'float64'));
  const lu = ag.param(new Tensor(Float64Array.from([1, 0, -1, 0.4, 0.4, 0.4]), [2, 3], 'float64'));
  const beta = new Tensor(Float64Array.from([0.25, 0.8]), [2, 1], 'float64');
  const mixed = gftInterpolateLogits(ls, lu, beta);
  for (let r = 0; r < 2; r++) {
    for (let j = 0; j < 3; j++) {
      const b = beta.data[r];
      assert.ok(
        Math.abs(
          mixed.value.data[r * 3 + j] - (b * ls.value.data[r * 3 + j] + (1 - b) * lu.value.data[r * 3 + j]),
        ) < 1e-15,
      );
    }
  }
  const loss = gftLogitLoss(ls, lu, [2, 0], beta);
  ag.backward(loss);
  assert.equal(lu.grad, null);
  const targets = [2, 0];
  for (let r = 0; r < 2; r++) {
    const row = [0, 1, 2].map((j) => mixed.value.data[r * 3 + j]);
    const z = row.reduce((a, v) => a + Math.exp(v), 0);
    for (let j = 0; j < 3; j++) {
      const want = (beta.data[r] * (Math.exp(row[j]) / z - (j === targets[r] ? 1 : 0))) / 2;
      assert.ok(Math.abs((ls.grad as ag.F64).data[r * 3 + j] - want) < 1e-15);
    }
  }
  assert.throws(() => gftInterpolateLogits(ls, lu, 1.2), UnsupportedOptionError);
  assert.throws(
    () => gftInterpolateLogits(ls, lu, new Tensor(new Float64Array(3), [3, 1], 'float64')),
    ShapeError,
  );
});

test('GFT logits at the optimum: softmax(ℓ_s) = p_u·(p_c/p_u)^{1/β} normalised — logit-space CFG with w = 1/β', () => {
  // Ten rows share one learnable ℓ_s; their targets follow p_c = (0.5, 0.3, 0.2) exactly, so the mean
  // cross-entropy is the expected one and its minimiser has softmax(β·ℓ_s + (1 − β)·ℓ_u) = p_c.
  const pc = [0.5, 0.3, 0.2];
  const targets = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2];
  const luRow = [0.3, -0.2, 0.6];
  const lu = ag.constant(
    new Tensor(
      Float64Array.from({ length: 30 }, (_, i) => luRow[i % 3]),
      [10, 3],
      'float64',
    ),
  );
  const beta = 0.4;
  const ls = ag.param(new Tensor(new Float64Array(3), [1, 3], 'float64'));
  const zeros = ag.constant(new Tensor(new Float64Array(30), [10, 3], 'float64'));
  for (let step = 0; step < 4000; step++) {
    ls.zeroGrad();
    ag.backward(gftLogitLoss(ag.add(zeros, ls), lu, targets, beta));
    const g = (ls.grad as ag.F64).data;
    for (let j = 0; j < 3; j++) (ls.value.data as Float64Array)[j] -= 5 * g[j];
  }
  const softmax = (v: number[]) => {
    const z = v.reduce((a, x) => a + Math.exp(x), 0);
    return v.map((x) => Math.exp(x) / z);
  };
  const pu = softmax(luRow);
  const cfg = pu.map((p, j) => p * (pc[j] / p) ** (1 / beta));
  const norm = cfg.reduce((a, b) => a + b, 0);
  const ps = softmax([...ls.value.data]);
  ps.forEach((p, j) => assert.ok(Math.abs(p - cfg[j] / norm) < 1e-6, `${ps} vs ${cfg.map((c) => c / norm)}`));
});
