import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/core/tensor.js';
import { NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { dpoELoss, dpoEScores } from '../../src/diffusion/dpo.js';

const vec = (xs: number[]) => tensor(xs, [xs.length], 'float64');
const refW = Float64Array.from([-3, -2, -5]);
const refL = Float64Array.from([-4, -1, -5]);

test('DPO-E: ŝ = β[(θ_w − ref_w) − (θ_l − ref_l)], loss = mean softplus(−ŝ)', () => {
  const pw = ag.param(vec([-2.5, -2.2, -4]));
  const pl = ag.param(vec([-4.5, -0.5, -6]));
  const r = dpoELoss(
    { policyWinner: pw, policyLoser: pl, referenceWinner: refW, referenceLoser: refL },
    { beta: 0.5 },
  );
  const s = [0.5 * (0.5 - -0.5), 0.5 * (-0.2 - 0.5), 0.5 * (1 - -1)];
  s.forEach((v, i) => assert.ok(Math.abs(r.scores[i] - v) < 1e-12));
  const want = s.reduce((a, v) => a + Math.log(1 + Math.exp(-v)), 0) / 3;
  assert.ok(Math.abs(r.loss.item() - want) < 1e-12);
  assert.equal(r.skippedPairs, 0);
  ag.backward(r.loss);
  // ∂loss/∂θ_w,i = −β σ(−s_i)/P and ∂loss/∂θ_l,i = +β σ(−s_i)/P.
  s.forEach((v, i) => {
    const g = -0.5 / (1 + Math.exp(v)) / 3;
    assert.ok(Math.abs((pw.grad?.data[i] ?? NaN) - g) < 1e-12);
    assert.ok(Math.abs((pl.grad?.data[i] ?? NaN) + g) < 1e-12);
  });
});

test('DPO-E: gradient check through the scores', () => {
  const r = ag.gradCheck(
    (pw, pl) =>
      dpoELoss({ policyWinner: pw, policyLoser: pl, referenceWinner: refW, referenceLoser: refL }).loss,
    [vec([-2.5, -2.2, -4]), vec([-4.5, -0.5, -6])],
  );
  assert.ok(r.ok, `max error ${r.maxError}`);
});

test('DPO-E: scores of ±1000 give a finite loss and gradient', () => {
  const pw = ag.param(vec([5000, -5000]));
  const pl = ag.param(vec([0, 0]));
  const r = dpoELoss({
    policyWinner: pw,
    policyLoser: pl,
    referenceWinner: vec([0, 0]).data as Float64Array,
    referenceLoser: new Float64Array(2),
  });
  assert.ok(Math.abs(r.loss.item() - 500) < 1e-9, `${r.loss.item()}`);
  ag.backward(r.loss);
  assert.ok(Array.from(pw.grad?.data ?? []).every(Number.isFinite));
});

test('DPO-E: non-finite scores are an error by default, skipped and counted on request', () => {
  const inputs = {
    policyWinner: ag.param(vec([-1, Number.NaN, -2])),
    policyLoser: ag.param(vec([-2, -1, Number.POSITIVE_INFINITY])),
    referenceWinner: refW,
    referenceLoser: refL,
  };
  assert.throws(() => dpoELoss(inputs), NonFiniteInputError);
  const r = dpoELoss(inputs, { nonFinite: 'skip' });
  assert.equal(r.skippedPairs, 2);
  const s0 = 0.2 * (-1 - -3 - (-2 - -4));
  assert.ok(Math.abs(r.loss.item() - Math.log(1 + Math.exp(-s0))) < 1e-12);
  ag.backward(r.loss);
  assert.ok(inputs.policyWinner.grad?.data[1] === 0, 'a skipped pair received a gradient');
  assert.ok(inputs.policyLoser.grad?.data[2] === 0, 'a skipped pair received a gradient');
  const none = dpoELoss({ ...inputs, policyWinner: ag.param(vec([NaN, NaN, NaN])) }, { nonFinite: 'skip' });
  assert.equal(none.skippedPairs, 3);
  assert.equal(none.loss.item(), 0);
});

test('DPO-E: bad β, policies and shapes are typed errors', () => {
  const pw = ag.param(vec([0, 0, 0]));
  const base = { policyWinner: pw, policyLoser: pw, referenceWinner: refW, referenceLoser: refL };
  for (const beta of [0, -1, Number.NaN, Infinity])
    assert.throws(() => dpoELoss(base, { beta }), UnsupportedOptionError);
  assert.throws(() => dpoELoss(base, { nonFinite: 'ignore' as never }), UnsupportedOptionError);
  assert.throws(() => dpoEScores({ ...base, referenceLoser: new Float64Array(2) }, 0.2), ShapeError);
});
