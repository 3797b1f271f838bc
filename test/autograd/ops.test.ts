import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Shape, randn, rand, tensor } from '../../src/core/tensor.js';
import { ShapeError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import type { Var } from '../../src/autograd/index.js';

let seed = 100;
const normal = (shape: Shape) => randn(shape, { seed: seed++, dtype: 'float64' });
const positive = (shape: Shape) => rand(shape, { seed: seed++, dtype: 'float64', low: 0.5, high: 2 });

function check(name: string, fn: (...xs: Var[]) => Var, inputs: ReturnType<typeof normal>[]): void {
  test(`${name}: analytic gradient matches float64 central differences`, () => {
    const r = ag.gradCheck(fn, inputs);
    assert.ok(r.ok, `${name}: max error ${r.maxError} at ${JSON.stringify(r.worst)}`);
  });
}

check('add (same shape)', ag.add, [normal([2, 3]), normal([2, 3])]);
check('add (broadcast [2,1,3] + [4,1])', ag.add, [normal([2, 1, 3]), normal([4, 1])]);
check('sub (broadcast [3] - [2,3])', ag.sub, [normal([3]), normal([2, 3])]);
check('mul (broadcast [2,3] * [2,1])', ag.mul, [normal([2, 3]), normal([2, 1])]);
check('mul by a number', (x) => ag.mul(x, 2.5), [normal([3])]);
check('div (broadcast, positive denominator)', ag.div, [normal([2, 3]), positive([3])]);
check('neg', ag.neg, [normal([4])]);
check('exp', ag.exp, [normal([2, 3])]);
check('log', ag.log, [positive([2, 3])]);
check('tanh', ag.tanh, [normal([2, 3])]);
check('relu (inputs away from 0)', ag.relu, [tensor([-1.5, -0.3, 0.2, 0.7, 2], [5], 'float64')]);
check('silu', ag.silu, [normal([2, 4])]);
check('gelu (erf, default)', (x) => ag.gelu(x), [normal([3, 4])]);
check('gelu (tanh)', (x) => ag.gelu(x, { approximate: 'tanh' }), [normal([3, 4])]);
check('matmul [3,4]·[4,2]', ag.matmul, [normal([3, 4]), normal([4, 2])]);
check('matmul batched, broadcast [2,1,3,4]·[3,4,2]', ag.matmul, [normal([2, 1, 3, 4]), normal([3, 4, 2])]);
check('sum all', (x) => ag.sum(x), [normal([2, 3])]);
check('sum axis -1 keepdim', (x) => ag.sum(x, -1, { keepdim: true }), [normal([2, 3, 2])]);
check('sum axes [0, 2]', (x) => ag.sum(x, [0, 2]), [normal([2, 3, 2])]);
check('mean axis 1', (x) => ag.mean(x, 1), [normal([2, 3, 2])]);
const reshapeWeights = ag.constant(normal([3, 2]));
check('reshape', (x) => ag.mul(ag.reshape(x, [3, -1]), reshapeWeights), [normal([2, 3])]);
check('transpose (default last two)', (x) => ag.transpose(x), [normal([2, 3, 4])]);
check('transpose axes 0, 2', (x) => ag.transpose(x, 0, 2), [normal([2, 3, 4])]);
check('permute', (x) => ag.permute(x, [1, 2, 0]), [normal([2, 3, 4])]);
check('softmax', ag.softmax, [normal([2, 5])]);
check('logSoftmax', ag.logSoftmax, [normal([3, 4])]);
check('crossEntropy', (x) => ag.crossEntropy(x, [1, 0, 3]), [normal([3, 4])]);
check('crossEntropy with ignoreIndex', (x) => ag.crossEntropy(x, [2, -100, 0, 1], { ignoreIndex: -100 }), [
  normal([2, 2, 3]),
]);
check('rmsNorm', (x, w) => ag.rmsNorm(x, w), [normal([3, 4]), normal([4])]);
check('layerNorm', (x, w, b) => ag.layerNorm(x, w, b), [normal([2, 2, 5]), normal([5]), normal([5])]);
check('embedding (repeated ids)', (w) => ag.embedding(w, [2, 0, 2, 3], [2, 2]), [normal([4, 3])]);
check('attention', (q, k, v) => ag.scaledDotProductAttention(q, k, v), [
  normal([2, 3, 4]),
  normal([2, 5, 4]),
  normal([2, 5, 3]),
]);
check('attention causal', (q, k, v) => ag.scaledDotProductAttention(q, k, v, { causal: true }), [
  normal([1, 4, 2]),
  normal([1, 4, 2]),
  normal([1, 4, 3]),
]);
check('composite: shared input through two paths', (x, w) => ag.tanh(ag.add(ag.matmul(x, w), x)), [
  normal([3, 3]),
  normal([3, 3]),
]);

test('forward values match direct formulas', () => {
  const x = ag.constant(tensor([1, 2, 3], [3], 'float64'));
  const s = ag.softmax(x).value.data;
  const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
  assert.ok(Math.abs(s[2] - Math.exp(3) / z) < 1e-15);
  assert.ok(Math.abs(ag.crossEntropy(x, [2]).item() - (Math.log(z) - 3)) < 1e-14);
  const eye = ag.constant(tensor([1, 0, 0, 1], [2, 2], 'float64'));
  const m = ag.constant(tensor([1, 2, 3, 4], [2, 2], 'float64'));
  assert.deepEqual(Array.from(ag.matmul(m, eye).value.data), [1, 2, 3, 4]);
  assert.ok(Math.abs(ag.erf(1) - 0.8427007929497149) < 1e-15);
  // Causal attention: the first query sees only the first key, so its output is the first value row.
  const q = ag.constant(normal([1, 3, 2]));
  const v = ag.constant(normal([1, 3, 2]));
  const o = ag.scaledDotProductAttention(q, q, v, { causal: true }).value.data;
  assert.deepEqual([o[0], o[1]], [v.value.data[0], v.value.data[1]]);
});

test('shape mismatches throw ShapeError', () => {
  const a = ag.param(normal([2, 3]));
  assert.throws(() => ag.add(a, ag.param(normal([4]))), ShapeError);
  assert.throws(() => ag.matmul(a, ag.param(normal([2, 3]))), ShapeError);
  assert.throws(() => ag.matmul(ag.param(normal([3])), a), ShapeError);
  assert.throws(() => ag.sum(a, 2), ShapeError);
  assert.throws(() => ag.reshape(a, [4, 2]), ShapeError);
  assert.throws(() => ag.permute(a, [0, 0]), ShapeError);
  assert.throws(() => ag.rmsNorm(a, ag.param(normal([2]))), ShapeError);
  assert.throws(() => ag.crossEntropy(a, [0]), ShapeError);
  assert.throws(() => ag.crossEntropy(a, [0, 3]), ShapeError);
  assert.throws(() => ag.embedding(a, [2]), ShapeError);
  assert.throws(() => ag.backward(a), ShapeError);
});
