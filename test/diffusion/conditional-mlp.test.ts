import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';
import { ConditionalMlp } from '../../src/diffusion/conditional-mlp.js';
import { sinusoidalEmbedding } from '../../src/diffusion/sinusoidal-embedding.js';
import { copyParameters, emaUpdate } from '../../src/diffusion/parameter-ema.js';

const batch = (n: number, d: number, seed: number) => {
  const x = new Float64Array(n * d);
  Rng.fromSeed(seed).fillNormal(x);
  return new Tensor(x, [n, d], 'float64');
};

test('sinusoidal embedding: [cos(v·f_i), sin(v·f_i)] with f_i = 10000^(−i/half)', () => {
  const e = sinusoidalEmbedding([0, 3], 6);
  assert.deepEqual([...e.data.subarray(0, 6)], [1, 1, 1, 0, 0, 0]);
  const f = [1, 10000 ** (-1 / 3), 10000 ** (-2 / 3)];
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(e.data[6 + i] - Math.cos(3 * f[i])) < 1e-15);
    assert.ok(Math.abs(e.data[9 + i] - Math.sin(3 * f[i])) < 1e-15);
  }
  assert.throws(() => sinusoidalEmbedding([1], 0), UnsupportedOptionError);
});

test('ConditionalMlp: seeded init, output shape, and a zero-initialised condition has no effect at init', () => {
  const cfg = {
    inputDim: 2,
    hidden: 16,
    layers: 2,
    embedDim: 8,
    numClasses: 3,
    scalars: [{ name: 't' }, { name: 'beta', scale: 1000, init: 'zero' as const }],
    seed: 7,
  };
  const a = new ConditionalMlp(cfg);
  const b = new ConditionalMlp(cfg);
  for (const [k, v] of Object.entries(a.params))
    assert.deepEqual([...v.value.data], [...b.params[k].value.data], k);
  assert.ok(a.params['beta.proj'].value.data.every((v) => v === 0));
  const x = ag.constant(batch(5, 2, 1));
  const labels = Int32Array.from([0, 1, 2, 3, 1]);
  const t = Float64Array.from([0, 10, 500, 999, 3]);
  const y1 = ag.noGrad(() => a.forward(x, { t, beta: new Float64Array(5).fill(0.2) }, labels)).value;
  const y2 = ag.noGrad(() => a.forward(x, { t, beta: new Float64Array(5).fill(1) }, labels)).value;
  assert.deepEqual(y1.shape, [5, 2]);
  assert.deepEqual([...y1.data], [...y2.data]);
  // The class (and null) embedding does matter.
  const y3 = ag.noGrad(() =>
    a.forward(x, { t, beta: new Float64Array(5).fill(1) }, new Int32Array(5).fill(3)),
  );
  assert.notDeepEqual([...y3.value.data], [...y2.data]);
});

test('ConditionalMlp: gradients agree with finite differences (gradCheck)', () => {
  const net = new ConditionalMlp({
    inputDim: 2,
    hidden: 5,
    layers: 2,
    embedDim: 4,
    numClasses: 2,
    scalars: [{ name: 't' }],
    seed: 3,
  });
  const names = Object.keys(net.params);
  const x = ag.constant(batch(3, 2, 2));
  const r = ag.gradCheck(
    (...ps) => {
      const saved = names.map((k) => net.params[k]);
      names.forEach((k, i) => ((net.params as Record<string, ag.Var>)[k] = ps[i]));
      const out = net.forward(x, { t: [1, 2, 3] }, [0, 1, 2]);
      names.forEach((k, i) => ((net.params as Record<string, ag.Var>)[k] = saved[i]));
      return out;
    },
    names.map((k) => net.params[k].value),
  );
  assert.ok(r.ok, `max error ${r.maxError}`);
});

test('ConditionalMlp: missing or mis-sized conditions and labels are typed errors', () => {
  const net = new ConditionalMlp({ inputDim: 2, hidden: 4, numClasses: 2, scalars: [{ name: 't' }] });
  const x = ag.constant(batch(2, 2, 1));
  assert.throws(() => net.forward(x, {}, [0, 1]), ShapeError);
  assert.throws(() => net.forward(x, { t: [1] }, [0, 1]), ShapeError);
  assert.throws(() => net.forward(x, { t: [1, 2] }), ShapeError);
  assert.throws(() => net.forward(x, { t: [1, 2] }, [0, 5]), ShapeError);
  assert.throws(() => net.forward(ag.constant(batch(2, 3, 1)), { t: [1, 2] }, [0, 1]), ShapeError);
  assert.throws(
    () => new ConditionalMlp({ inputDim: 2, scalars: [{ name: 't' }, { name: 't' }] }),
    UnsupportedOptionError,
  );
  assert.throws(() => new ConditionalMlp({ inputDim: 0 }), UnsupportedOptionError);
});

test('parameter EMA: θ⁻ ← μθ⁻ + (1 − μ)θ, and copy', () => {
  const a = [ag.param(new Tensor(Float64Array.from([1, 2]), [2], 'float64'))];
  const b = [ag.param(new Tensor(Float64Array.from([3, -2]), [2], 'float64'))];
  emaUpdate(a, b, 0.75);
  assert.deepEqual([...a[0].value.data], [1.5, 1]);
  copyParameters(a, b);
  assert.deepEqual([...a[0].value.data], [3, -2]);
  assert.throws(() => emaUpdate(a, b, 1.5), UnsupportedOptionError);
  assert.throws(() => emaUpdate(a, [], 0.5), ShapeError);
});
