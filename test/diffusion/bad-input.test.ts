/**
 * The diffusion layer's policy for non-finite values, in one place: a non-finite *input* — a data
 * batch, an initial noise, or a network / teacher output that a sampler or ODE solver would feed back
 * — is a NonFiniteInputError naming where it came from; a non-finite *loss* (a network that diverged
 * or produced NaN for one batch) flows into non-finite gradients, and the optimizer skips that step
 * and counts it (train/optimizer.ts), so training continues from the last good weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonFiniteInputError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';
import { adamw } from '../../src/train/adamw.js';
import { trainLoop } from '../../src/train/train-loop.js';
import { VpSchedule } from '../../src/diffusion/vp.js';
import { ConditionalMlp } from '../../src/diffusion/conditional-mlp.js';
import { type GftNetwork, gftLoss } from '../../src/diffusion/gft.js';
import { epsilonLoss } from '../../src/diffusion/epsilon-loss.js';
import { GaussianMixture } from '../../src/diffusion/gaussian-mixture.js';
import { type EdmTeacher, mixtureTeacher, solveTeacherOde } from '../../src/diffusion/teacher.js';
import { edmSample } from '../../src/diffusion/edm-sampler.js';
import { ddimSample } from '../../src/diffusion/ddim.js';
import { mixtureEpsModel } from '../../src/diffusion/models.js';

const schedule = new VpSchedule();
const mix = new GaussianMixture({
  means: [
    [0.5, 0],
    [-0.5, 0],
  ],
  stds: [0.2, 0.2],
  classes: [0, 1],
});

function net() {
  const m = new ConditionalMlp({
    inputDim: 2,
    hidden: 8,
    layers: 2,
    embedDim: 4,
    numClasses: 2,
    scalars: [{ name: 't' }, { name: 'beta', scale: 1000 }],
    seed: 1,
  });
  return m;
}

test('NaN in a training batch is a NonFiniteInputError (GFT and CFG losses)', () => {
  const m = net();
  const fn: GftNetwork = (x, t, l, b) => m.forward(x, { t, beta: b }, l);
  const bad = new Tensor(Float64Array.from([0.1, NaN, 0.3, 0.4]), [2, 2], 'float64');
  const labels = Int32Array.from([0, 1]);
  assert.throws(
    () => gftLoss(fn, bad, labels, Rng.fromSeed(1), { schedule, numClasses: 2 }),
    NonFiniteInputError,
  );
  assert.throws(
    () =>
      epsilonLoss((x, t, l) => fn(x, t, l, new Float64Array(2).fill(1)), bad, labels, Rng.fromSeed(1), {
        schedule,
        numClasses: 2,
      }),
    NonFiniteInputError,
  );
});

test('a NaN loss skips the optimizer step (counted) and training continues from the last good weights', () => {
  const m = net();
  let poison = false;
  const fn: GftNetwork = (x, t, l, b) => {
    const y = m.forward(x, { t, beta: b }, l);
    return poison ? ag.mul(y, NaN) : y;
  };
  const opt = adamw(m.parameters(), { lr: 1e-3, weightDecay: 0 });
  let before: number[] = [];
  const result = trainLoop({
    steps: 4,
    params: m.params,
    optimizer: opt,
    seed: 3,
    step: (i, rng) => {
      poison = i === 2;
      if (i === 2) before = m.parameters().flatMap((p) => [...p.value.data]);
      const batch = mix.sample(16, rng.split(10));
      return gftLoss(fn, batch.x, batch.classes, rng, { schedule, numClasses: 2 }).loss;
    },
    onProgress: (p) => {
      if (p.step === 3) {
        assert.equal(p.applied, false);
        assert.ok(Number.isNaN(p.loss));
        assert.deepEqual(
          m.parameters().flatMap((q) => [...q.value.data]),
          before,
        );
      }
    },
  });
  assert.equal(result.skippedSteps, 1);
  assert.ok(Number.isFinite(result.lastLoss));
  assert.ok(m.parameters().every((p) => p.value.data.every(Number.isFinite)));
});

test('a teacher or denoiser that returns NaN stops the ODE solver and samplers with a typed error', () => {
  const nanTeacher: EdmTeacher = {
    ...mixtureTeacher(mix),
    denoise: (x) => new Tensor(new Float64Array(x.size).fill(NaN), x.shape, 'float64'),
  };
  const x = new Tensor(Float64Array.from([1, 2]), [1, 2], 'float64');
  assert.throws(() => solveTeacherOde(nanTeacher, x, 10, 1), NonFiniteInputError);
  assert.throws(
    () => edmSample({ nfePerCall: 1, denoise: nanTeacher.denoise }, { steps: 3, n: 2, dim: 2 }),
    NonFiniteInputError,
  );
});

test('legal but hard: one DDIM step, every timestep, far-away starts, β = 0 training rows — finite, never NaN', () => {
  const m = mixtureEpsModel(mix, schedule);
  for (const steps of [1, 1000]) {
    const { samples } = ddimSample(m, { schedule, steps, n: 8, dim: 2, seed: 1 });
    assert.ok(samples.data.every(Number.isFinite), `steps ${steps}`);
  }
  const far = new Tensor(Float64Array.from([1e6, -1e6, 3e5, 0]), [2, 2], 'float64');
  assert.ok(ddimSample(m, { schedule, steps: 10, noise: far }).samples.data.every(Number.isFinite));
  assert.ok(
    edmSample(
      { nfePerCall: 1, denoise: mixtureTeacher(mix).denoise },
      { steps: 5, noise: far },
    ).samples.data.every(Number.isFinite),
  );
  // β ≡ 0 is legal in training (ε_c = sg[ε_u]: no gradient reaches the model) — a finite loss.
  const g = net();
  const fn: GftNetwork = (xx, t, l, b) => g.forward(xx, { t, beta: b }, l);
  const batch = mix.sample(8, Rng.fromSeed(2));
  const { loss } = gftLoss(fn, batch.x, batch.classes, Rng.fromSeed(2), {
    schedule,
    numClasses: 2,
    betaMin: 0,
    betaMax: 0,
    labelDropout: 0,
  });
  ag.backward(loss);
  assert.ok(Number.isFinite(loss.item()));
  assert.ok(g.parameters().every((p) => p.grad === null || p.grad.data.every((v) => v === 0)));
  assert.throws(
    () => gftLoss(fn, batch.x, batch.classes, Rng.fromSeed(2), { schedule, numClasses: 2, betaMax: NaN }),
    UnsupportedOptionError,
  );
});
