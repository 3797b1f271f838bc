/**
 * The ELBO estimators against exact values on a predictor small enough to enumerate (V = 3, a
 * 1-token prompt, R = 4): the exact bound equals the order-averaged any-order log-likelihood; the
 * t-form, the l-form, the stratified l-form and a nested allocation are unbiased for it; the bound
 * is below the exact log-likelihood, tight for a context-free predictor; and the exact law-of-total-
 * variance parts predict the measured variance of every allocation (Lemma 5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import {
  elboEstimates,
  elboSampleTerms,
  sampleElboDraws,
  weightedMaskedSums,
} from '../../src/diffusion/elbo.js';
import {
  anyOrderLogLikelihood,
  exactElbos,
  exactMaskSums,
  lFormVarianceComponents,
} from '../../src/diffusion/elbo-exact.js';
import { PairwisePredictor, allSequences, makeMaskCountSensitive, meanSe } from './mdlm-helpers.js';

const V = 3;
const model = new PairwisePredictor(V, 5, 42);
const layout = { promptLength: 1, maskToken: model.maskToken };
const seq = Int32Array.from([2, 0, 1, 1, 2]);
const exact = exactElbos(model, [seq], layout).value.data[0];

function logSoftmaxAt(logits: ArrayLike<number>, offset: number, target: number): number {
  let z = 0;
  for (let j = 0; j < V; j++) z += Math.exp(logits[offset + j]);
  return logits[offset + target] - Math.log(z);
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, k) => [...p.slice(0, k), n - 1, ...p.slice(k)]),
  );
}

test('exact ELBO = average over unmasking orders of the any-order log-likelihood', () => {
  const orders = permutations(4);
  let total = 0;
  for (const order of orders) {
    const x = Int32Array.from(seq);
    for (let i = 1; i < 5; i++) x[i] = model.maskToken;
    for (const pos of order) {
      const logits = model.logits(x, 1, 5).value.data;
      total += logSoftmaxAt(logits, (1 + pos) * V, seq[1 + pos]);
      x[1 + pos] = seq[1 + pos];
    }
  }
  const orderAverage = total / orders.length;
  assert.ok(Math.abs(orderAverage - exact) < 1e-10, `${orderAverage} vs ${exact}`);
});

function assertUnbiased(name: string, values: ArrayLike<number>): void {
  const { mean, se } = meanSe(values);
  assert.ok(Math.abs(mean - exact) < 5 * se, `${name}: MC mean ${mean} ± ${se} vs exact ${exact}`);
  assert.ok(se < 0.05 * Math.abs(exact), `${name}: too few samples to test (se ${se})`);
}

test('t-form and l-form single-sample estimators are unbiased for the exact ELBO', () => {
  for (const form of ['time', 'count'] as const) {
    const draws = sampleElboDraws(
      seq,
      { ...layout, form, timesteps: 20000 },
      Rng.fromSeed(form === 'time' ? 5 : 6),
    );
    assertUnbiased(form, ag.noGrad(() => elboSampleTerms(model, [draws])).value.data);
  }
});

test('stratified and nested (n_t = 2, n_yt = 3) estimates are unbiased too', () => {
  const rng = Rng.fromSeed(8);
  for (const opts of [
    { form: 'count' as const, timesteps: 4, stratified: true },
    { form: 'time' as const, timesteps: 4, stratified: true },
    { form: 'count' as const, timesteps: 2, masksPerTimestep: 3 },
  ]) {
    const draws = Array.from({ length: 3000 }, (_, k) =>
      sampleElboDraws(seq, { ...layout, ...opts }, rng.split(k)),
    );
    assertUnbiased(JSON.stringify(opts), ag.noGrad(() => elboEstimates(model, draws)).value.data);
  }
});

test('ELBO ≤ exact log-likelihood for every response, and the likelihoods sum to 1', () => {
  let total = 0;
  const sequences = allSequences(V, 4).map((r) => Int32Array.from([2, ...r]));
  const elbos = exactElbos(model, sequences, layout).value.data;
  sequences.forEach((s, k) => {
    const ll = anyOrderLogLikelihood(model, s, layout);
    assert.ok(elbos[k] <= ll + 1e-12, `response ${k}: ELBO ${elbos[k]} > log π ${ll}`);
    total += Math.exp(ll);
  });
  assert.ok(Math.abs(total - 1) < 1e-10, `Σ π(y) = ${total}`);
  const gap = anyOrderLogLikelihood(model, seq, layout) - exact;
  assert.ok(gap > 1e-3, `a context-dependent predictor should have a visible Jensen gap; got ${gap}`);
});

test('the bound is tight for a predictor that ignores the context', () => {
  const flat = new PairwisePredictor(V, 5, 43);
  const t = flat.table.value.data as Float64Array;
  // Keep only the per-position bias rows (i, i, MASK); zero every context row.
  for (let i = 0; i < 5; i++) {
    for (let k = 0; k < 5; k++) {
      for (let x = 0; x <= V; x++) {
        if (k === i && x === V) continue;
        t.fill(0, ((i * 5 + k) * (V + 1) + x) * V, ((i * 5 + k) * (V + 1) + x + 1) * V);
      }
    }
  }
  const elbo = exactElbos(flat, [seq], layout).value.data[0];
  assert.ok(Math.abs(elbo - anyOrderLogLikelihood(flat, seq, layout)) < 1e-12);
});

test('Lemma 5: V[B̂] = V_t/n_t + V_yt/(n_t·n_yt) with the exact parts, for every allocation at n = 4', () => {
  assert.ok(Math.abs(lFormVarianceComponents(exactMaskSums(model, seq, layout), 4).mean - exact) < 1e-10);
  const sensitive = makeMaskCountSensitive(new PairwisePredictor(V, 5, 44, 0.3), 1);
  const parts = lFormVarianceComponents(exactMaskSums(sensitive, seq, layout), 4);
  assert.ok(
    parts.vt > parts.vyt,
    `V_t ${parts.vt} too small against V_yt ${parts.vyt} to tell allocations apart`,
  );
  const rng = Rng.fromSeed(9);
  for (const [nt, nyt] of [
    [1, 4],
    [2, 2],
    [4, 1],
  ]) {
    const draws = Array.from({ length: 1500 }, (_, k) =>
      sampleElboDraws(seq, { ...layout, timesteps: nt, masksPerTimestep: nyt }, rng.split(nt * 10000 + k)),
    );
    const measured = meanSe(ag.noGrad(() => elboEstimates(sensitive, draws)).value.data).variance;
    const predicted = parts.vt / nt + parts.vyt / (nt * nyt);
    assert.ok(
      Math.abs(measured / predicted - 1) < 0.15,
      `(${nt},${nyt}): measured ${measured}, predicted ${predicted}`,
    );
  }
});

test('draw structure: n_t·n_yt samples, weights 1/t and R/l, stratified l covers 1..R once when n_t = R', () => {
  const rng = Rng.fromSeed(10);
  const nested = sampleElboDraws(seq, { ...layout, timesteps: 3, masksPerTimestep: 2 }, rng);
  assert.equal(nested.samples.length, 6);
  assert.deepEqual(
    nested.samples.map((s) => s.timestepIndex),
    [0, 0, 1, 1, 2, 2],
  );
  for (const s of nested.samples) {
    assert.equal(s.count, s.timestep);
    assert.equal(s.weight, 4 / s.timestep);
  }
  const timeForm = sampleElboDraws(seq, { ...layout, form: 'time', timesteps: 50 }, rng);
  for (const s of timeForm.samples) {
    assert.ok(s.timestep > 0 && s.timestep <= 1);
    assert.equal(s.weight, 1 / s.timestep);
  }
  for (let k = 0; k < 20; k++) {
    const strat = sampleElboDraws(seq, { ...layout, timesteps: 4, stratified: true }, rng.split(k));
    assert.deepEqual(strat.samples.map((s) => s.timestep).sort(), [1, 2, 3, 4]);
  }
});

test('estimates are deterministic in the seed', () => {
  const a = elboEstimates(model, [sampleElboDraws(seq, { ...layout, timesteps: 8 }, Rng.fromSeed(3))]);
  const b = elboEstimates(model, [sampleElboDraws(seq, { ...layout, timesteps: 8 }, Rng.fromSeed(3))]);
  assert.equal(a.value.data[0], b.value.data[0]);
});

test('hard input: all-masked response with no prompt is finite; a draw that masks nothing scores 0', () => {
  const noPrompt = { maskToken: model.maskToken };
  const all = sampleElboDraws(Int32Array.from([0, 1, 2, 0]), { ...noPrompt, timesteps: 1 }, Rng.fromSeed(1));
  const full = { ...all, samples: [{ ...all.samples[0] }] };
  const terms = elboEstimates(model, [full]).value.data;
  assert.ok(Number.isFinite(terms[0]));
  const x = Int32Array.from([0, 1, 2, 0]);
  const allMasked = exactElbos(model, [x], noPrompt).value.data[0];
  assert.ok(Number.isFinite(allMasked));
  const none = weightedMaskedSums(
    model,
    [{ masked: { tokens: x, masked: new Uint8Array(4), count: 0 }, target: x, weight: 1e9, group: 0 }],
    1,
  );
  assert.equal(none.value.data[0], 0);
});

test('bad input: vocabulary mismatches, empty responses, bad allocations, too-long enumerations', () => {
  const rng = Rng.fromSeed(0);
  const outOfVocab = Int32Array.from([2, 0, 7, 1, 2]);
  assert.throws(
    () => elboEstimates(model, [sampleElboDraws(outOfVocab, { ...layout, timesteps: 2 }, rng)]),
    ShapeError,
  );
  const narrow = {
    ...model,
    vocabSize: 5,
    maskToken: 5,
    logits: model.logits.bind(model),
    parameters: () => [],
  };
  assert.throws(() => exactElbos(narrow, [Int32Array.from([0, 4, 1])], { maskToken: 5 }), ShapeError);
  assert.throws(() => sampleElboDraws(Int32Array.from([2]), layout, rng), ShapeError);
  assert.throws(() => sampleElboDraws(seq, { ...layout, timesteps: 0 }, rng), UnsupportedOptionError);
  assert.throws(
    () => sampleElboDraws(seq, { ...layout, masksPerTimestep: 1.5 }, rng),
    UnsupportedOptionError,
  );
  assert.throws(() => sampleElboDraws(seq, { ...layout, form: 'x' as never }, rng), UnsupportedOptionError);
  assert.throws(() => exactElbos(model, [seq], layout, { maxResponseLength: 3 }), UnsupportedOptionError);
});
