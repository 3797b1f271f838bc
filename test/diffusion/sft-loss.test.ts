import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { mdmSftLoss } from '../../src/diffusion/sft-loss.js';
import { exactElbos } from '../../src/diffusion/elbo-exact.js';
import { maskWithProbability } from '../../src/diffusion/mdlm-masking.js';
import { PairwisePredictor, meanSe } from './mdlm-helpers.js';

const V = 3;
const model = new PairwisePredictor(V, 6, 31);
const layout = { promptLength: 2, maskToken: V };
const batch = [
  Int32Array.from([0, 1, 2, 2, 0, 1]),
  Int32Array.from([1, 1, 0, 2]),
  Int32Array.from([2, 0, 1, 1, 1]),
];

test('SFT loss = (1/B) Σ_b Σ_masked CE / (p_b · R_b) with p_b = (1 − ε)t_b + ε, prompt never masked', () => {
  // Same-length batch: replay the documented stream by hand and recompute from raw logits.
  const seqs = [Int32Array.from([0, 1, 2, 2, 0, 1]), Int32Array.from([2, 0, 1, 1, 1, 0])];
  const loss = mdmSftLoss(model, seqs, layout, Rng.fromSeed(4)).item();
  const rng = Rng.fromSeed(4);
  let want = 0;
  for (const s of seqs) {
    const p = (1 - 1e-3) * rng.uniform() + 1e-3;
    const m = maskWithProbability(s, p, layout, rng);
    assert.ok(m.masked[0] === 0 && m.masked[1] === 0);
    const logits = model.logits(m.tokens, 1, 6).value.data;
    for (let i = 0; i < 6; i++) {
      if (m.masked[i] === 0) continue;
      let z = 0;
      for (let j = 0; j < V; j++) z += Math.exp(logits[i * V + j]);
      want += -(logits[i * V + s[i]] - Math.log(z)) / (p * 4 * 2);
    }
  }
  assert.ok(Math.abs(loss - want) < 1e-12, `${loss} vs ${want}`);
});

test('SFT loss: R·E[loss] ≈ −ELBO for one sequence (up to the ε floor), and it has a gradient', () => {
  const seq = Int32Array.from([0, 1, 2, 2, 0, 1]);
  const rng = Rng.fromSeed(5);
  const values = Array.from(
    { length: 4000 },
    (_, k) => 4 * mdmSftLoss(model, [seq], layout, rng.split(k)).item(),
  );
  const { mean, se } = meanSe(values);
  const elbo = exactElbos(model, [seq], layout).value.data[0];
  assert.ok(Math.abs(mean + elbo) < 5 * se + 0.01 * Math.abs(elbo), `${mean} ± ${se} vs ${-elbo}`);
  const loss = mdmSftLoss(model, [seq], { ...layout, eps: 0.5 }, Rng.fromSeed(1));
  ag.backward(loss);
  assert.ok(model.table.grad !== null);
  model.table.zeroGrad();
});

test('SFT loss: bad input is typed', () => {
  const rng = Rng.fromSeed(0);
  assert.throws(() => mdmSftLoss(model, [], layout, rng), ShapeError);
  assert.throws(
    () => mdmSftLoss(model, [Int32Array.from([0, 1])], layout, rng),
    ShapeError,
    'empty response',
  );
  assert.throws(() => mdmSftLoss(model, batch, layout, rng), ShapeError, 'mixed lengths');
  assert.throws(() => mdmSftLoss(model, [batch[0]], { ...layout, eps: 0 }, rng), UnsupportedOptionError);
});
