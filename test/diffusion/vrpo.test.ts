import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { sampleElboDraws } from '../../src/diffusion/elbo.js';
import { exactElbos } from '../../src/diffusion/elbo-exact.js';
import {
  type PreferencePair,
  preferenceScores,
  samplePreferenceDraws,
  vrpoAllocation,
  vrpoLoss,
} from '../../src/diffusion/vrpo.js';
import { PairwisePredictor, meanSe } from './mdlm-helpers.js';

const V = 3;
const reference = new PairwisePredictor(V, 5, 21);
/** π_θ = π_ref + N(0, 0.05²) noise on every parameter. */
function perturbed(seed: number, std = 0.05): PairwisePredictor {
  const p = new PairwisePredictor(V, 5, 21);
  const noise = new Float64Array(p.table.value.size);
  Rng.fromSeed(seed).fillNormal(noise, 0, std);
  const d = p.table.value.data as Float64Array;
  for (let i = 0; i < d.length; i++) d[i] += noise[i];
  return p;
}
const policy = perturbed(99);
const layout = { promptLength: 1, maskToken: V };
const pairs: PreferencePair[] = [
  { winner: Int32Array.from([0, 1, 2, 2, 0]), loser: Int32Array.from([0, 2, 1, 0, 0]) },
  { winner: Int32Array.from([2, 0, 0, 1, 1]), loser: Int32Array.from([2, 1, 1, 1, 2]) },
];

function exactScores(beta: number): number[] {
  const e = (m: PairwisePredictor, which: 'winner' | 'loser') =>
    exactElbos(
      m,
      pairs.map((p) => p[which]),
      layout,
    ).value.data;
  const [tw, tl, rw, rl] = [
    e(policy, 'winner'),
    e(policy, 'loser'),
    e(reference, 'winner'),
    e(reference, 'loser'),
  ];
  return pairs.map((_, i) => beta * (tw[i] - rw[i] - (tl[i] - rl[i])));
}

test('vrpoAllocation: the whole budget on timesteps (Prop. 1)', () => {
  assert.deepEqual(vrpoAllocation(8), { timesteps: 8, masksPerTimestep: 1 });
  for (const n of [0, -1, 2.5]) assert.throws(() => vrpoAllocation(n), UnsupportedOptionError);
});

test('antithetic sampling shares the policy draws with π_ref; the policy draws do not depend on it', () => {
  const a = samplePreferenceDraws(pairs, { ...layout, timesteps: 3 }, Rng.fromSeed(1));
  const b = samplePreferenceDraws(pairs, { ...layout, timesteps: 3, antithetic: false }, Rng.fromSeed(1));
  a.referenceWinner.forEach((d, i) => assert.equal(d, a.policyWinner[i]));
  a.referenceLoser.forEach((d, i) => assert.equal(d, a.policyLoser[i]));
  b.referenceWinner.forEach((d, i) => assert.notDeepEqual(d.samples, b.policyWinner[i].samples));
  a.policyWinner.forEach((d, i) => assert.deepEqual(d.samples, b.policyWinner[i].samples));
  // The documented streams: pair i's y_w from split(i).split(0), y_l from split(i).split(1).
  const opts = { ...layout, timesteps: 3, masksPerTimestep: 1 };
  const w1 = sampleElboDraws(pairs[1].winner, opts, Rng.fromSeed(1).split(1).split(0));
  const l1 = sampleElboDraws(pairs[1].loser, opts, Rng.fromSeed(1).split(1).split(1));
  assert.deepEqual(a.policyWinner[1].samples, w1.samples);
  assert.deepEqual(a.policyLoser[1].samples, l1.samples);
});

test('π_θ = π_ref: antithetic ŝ is exactly 0, independent ŝ is not', () => {
  const copy = new PairwisePredictor(V, 5, 21);
  const anti = preferenceScores(copy, reference, pairs, { ...layout, timesteps: 2 }, Rng.fromSeed(2));
  assert.deepEqual(Array.from(anti), [0, 0]);
  const indep = preferenceScores(
    copy,
    reference,
    pairs,
    { ...layout, timesteps: 2, antithetic: false },
    Rng.fromSeed(2),
  );
  assert.ok(indep.some((s) => Math.abs(s) > 1e-3));
});

test('ŝ is unbiased with and without antithetic sampling; antithetic sampling cuts V[ŝ] near π_ref', () => {
  const beta = 0.2;
  const want = exactScores(beta);
  const variances: Record<string, number> = {};
  for (const antithetic of [true, false]) {
    const rng = Rng.fromSeed(antithetic ? 3 : 4);
    const scores = Array.from({ length: 1500 }, (_, k) =>
      preferenceScores(policy, reference, pairs, { ...layout, timesteps: 2, antithetic, beta }, rng.split(k)),
    );
    pairs.forEach((_, i) => {
      const s = meanSe(scores.map((x) => x[i]));
      assert.ok(
        Math.abs(s.mean - want[i]) < 5 * s.se,
        `antithetic ${antithetic}, pair ${i}: ${s.mean} ± ${s.se} vs ${want[i]}`,
      );
      variances[`${antithetic}-${i}`] = s.variance;
    });
  }
  pairs.forEach((_, i) =>
    assert.ok(
      variances[`true-${i}`] * 20 < variances[`false-${i}`],
      `pair ${i}: V[ŝ] antithetic ${variances[`true-${i}`]} vs independent ${variances[`false-${i}`]}`,
    ),
  );
});

test('vrpoLoss: DPO-E + 0.05·SFT, gradient into π_θ only, same draws as preferenceScores, forward counts', () => {
  const pol = perturbed(5);
  const opts = { ...layout, timesteps: 4 };
  const r = vrpoLoss(pol, reference, pairs, opts, Rng.fromSeed(6));
  const scores = preferenceScores(pol, reference, pairs, opts, Rng.fromSeed(6));
  assert.deepEqual(Array.from(r.dpo.scores), Array.from(scores));
  assert.ok(r.sftLoss !== null && r.sftLoss > 0);
  assert.ok(Math.abs(r.loss.item() - (r.dpo.loss.item() + 0.05 * (r.sftLoss ?? NaN))) < 1e-12);
  assert.equal(r.policyForwards, 2 * 2 * 4 + 2);
  assert.equal(r.referenceForwards, 2 * 2 * 4);
  ag.backward(r.loss);
  assert.ok(pol.table.grad !== null && pol.table.grad.data.some((g) => g !== 0));
  assert.equal(reference.table.grad, null);
  const noSft = vrpoLoss(pol, reference, pairs, { ...opts, sftWeight: 0 }, Rng.fromSeed(6));
  assert.equal(noSft.sftLoss, null);
  assert.equal(noSft.loss.item(), r.dpo.loss.item());
});

test('vrpoLoss: a NaN policy is a NonFiniteInputError, or every pair skipped and counted', () => {
  const bad = perturbed(7);
  (bad.table.value.data as Float64Array).fill(Number.NaN);
  assert.throws(
    () => vrpoLoss(bad, reference, pairs, { ...layout, sftWeight: 0 }, Rng.fromSeed(1)),
    NonFiniteInputError,
  );
  const r = vrpoLoss(bad, reference, pairs, { ...layout, sftWeight: 0, nonFinite: 'skip' }, Rng.fromSeed(1));
  assert.equal(r.dpo.skippedPairs, 2);
});

test('bad pairs and options are typed errors', () => {
  const rng = Rng.fromSeed(0);
  assert.throws(() => samplePreferenceDraws([], layout, rng), ShapeError);
  assert.throws(
    () =>
      samplePreferenceDraws(
        [{ winner: Int32Array.from([0, 1, 2]), loser: Int32Array.from([0, 1]) }],
        layout,
        rng,
      ),
    ShapeError,
  );
  assert.throws(
    () =>
      samplePreferenceDraws(
        [{ winner: Int32Array.from([0, 1, 2]), loser: Int32Array.from([1, 1, 2]) }],
        layout,
        rng,
      ),
    ShapeError,
  );
  assert.throws(
    () => vrpoLoss(policy, reference, pairs, { ...layout, sftWeight: -1 }, rng),
    UnsupportedOptionError,
  );
  assert.throws(
    () => preferenceScores(policy, reference, pairs, { ...layout, timesteps: 0 }, rng),
    UnsupportedOptionError,
  );
});
