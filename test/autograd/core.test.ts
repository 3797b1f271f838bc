import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tensor } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';

const scalar = (x: number) => tensor([x], [], 'float64');

test('a Var used twice accumulates both gradients; leaves accumulate across backward calls', () => {
  const x = ag.param(scalar(3));
  const y = ag.mul(x, x); // dy/dx = 2x
  ag.backward(y);
  assert.equal(x.grad?.data[0], 6);
  ag.backward(ag.add(x, x));
  assert.equal(x.grad?.data[0], 8);
  x.zeroGrad();
  assert.equal(x.grad, null);
});

test('noGrad records nothing; detach cuts the graph; constants get no gradient', () => {
  const w = ag.param(scalar(2));
  const c = ag.constant(scalar(5));
  const y = ag.noGrad(() => ag.mul(w, c));
  assert.equal(y.node, null);
  assert.equal(y.requiresGrad, false);
  assert.equal(ag.isGradEnabled(), true);
  const z = ag.add(ag.mul(w, c), ag.mul(w.detach(), w));
  ag.backward(z);
  assert.equal(w.grad?.data[0], 5 + 2, 'the detached factor is a constant');
  assert.equal(c.grad, null);
});

test('float32 inputs are widened to float64 values', () => {
  const x = ag.param(randn([2]));
  assert.equal(x.value.dtype, 'float64');
});

test('the gradient checker catches a wrong backward', () => {
  ag.registerOp<undefined>('wrong_square', 'cpu', {
    forward: ([x]) => ({
      out: tensor(
        x.data.map((v) => v * v),
        x.shape,
        'float64',
      ),
    }),
    backward: (g, { inputs: [x] }) => [
      tensor(
        x.data.map((v, i) => v * g.data[i]),
        x.shape,
        'float64',
      ),
    ],
  });
  const r = ag.gradCheck(
    (x) => ag.applyOp('wrong_square', [x], undefined),
    [randn([3], { dtype: 'float64' })],
  );
  assert.equal(r.ok, false);
});

test('an op registered for another backend runs under withBackend without changing the tape', () => {
  let calls = 0;
  const cpu = ag.lookupOp('mul');
  ag.registerOp<undefined>('mul', 'test-backend', {
    forward(inputs, attrs) {
      calls++;
      return cpu.forward(inputs, attrs);
    },
    backward: (g, ctx) => cpu.backward(g, ctx),
  });
  assert.deepEqual(ag.opBackends('mul'), ['cpu', 'test-backend']);
  const a = ag.param(tensor([1, 2], [2], 'float64'));
  const loss = ag.withBackend('test-backend', () => ag.sum(ag.mul(a, a)));
  ag.backward(loss);
  assert.equal(calls, 1, 'mul ran on test-backend; sum fell back to cpu');
  assert.deepEqual(Array.from(a.grad?.data ?? []), [2, 4]);
});

test('end to end: SGD on linear regression cuts the loss by a large factor', () => {
  const n = 32;
  const x = ag.constant(randn([n, 3], { seed: 1, dtype: 'float64' }));
  const trueW = ag.constant(tensor([1.5, -2, 0.5], [3, 1], 'float64'));
  const y = ag.noGrad(() => ag.add(ag.matmul(x, trueW), 0.3));
  const w = ag.param(tensor(new Float64Array(3), [3, 1], 'float64'));
  const b = ag.param(scalar(0));
  const lossOf = () =>
    ag.mean(ag.mul(ag.sub(ag.add(ag.matmul(x, w), b), y), ag.sub(ag.add(ag.matmul(x, w), b), y)));
  const first = lossOf().item();
  for (let step = 0; step < 100; step++) {
    w.zeroGrad();
    b.zeroGrad();
    ag.backward(lossOf());
    for (const p of [w, b]) {
      const g = p.grad?.data ?? [];
      for (let i = 0; i < p.value.size; i++) p.value.data[i] -= 0.1 * g[i];
    }
  }
  const last = lossOf().item();
  assert.ok(last < first * 1e-6, `loss ${first} → ${last}`);
});
