/**
 * The blocked matmul kernel (2×4 register tiles with row and column tails) against the plain triple
 * loop it replaced: forward values bit-identical (same summation order), gradients equal to the plain
 * loop's ∂A = G·Bᵀ, ∂B = Aᵀ·G within float64 rounding, on shapes that exercise full tiles, odd rows,
 * column tails and a broadcast batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Shape, randn } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';

let seed = 900;
const normal = (shape: Shape) => randn(shape, { seed: seed++, dtype: 'float64' });

/** Plain C = A·B per batch, with A's and B's batch index given for each output batch. */
function plainMatmul(
  a: Float64Array,
  b: Float64Array,
  batches: [number, number][],
  m: number,
  k: number,
  n: number,
) {
  const out = new Float64Array(batches.length * m * n);
  batches.forEach(([ta, tb], t) => {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ta * m * k + i * k + p] * b[tb * k * n + p * n + j];
        out[t * m * n + i * n + j] = s;
      }
    }
  });
  return out;
}

const cases: { name: string; a: Shape; b: Shape; batches: [number, number][] }[] = [
  { name: '[5,7]·[7,9] (odd rows, column tail)', a: [5, 7], b: [7, 9], batches: [[0, 0]] },
  { name: '[8,3]·[3,8] (full tiles only)', a: [8, 3], b: [3, 8], batches: [[0, 0]] },
  {
    name: '[2,1,5,6]·[3,6,9] (broadcast batch)',
    a: [2, 1, 5, 6],
    b: [3, 6, 9],
    batches: [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
    ],
  },
];

for (const c of cases) {
  test(`blocked matmul ${c.name}: forward bit-identical to the plain loop, gradients match`, () => {
    const A = ag.param(normal(c.a));
    const B = ag.param(normal(c.b));
    const [m, k] = c.a.slice(-2);
    const n = c.b[c.b.length - 1];
    const C = ag.matmul(A, B);
    const plain = plainMatmul(A.value.data as Float64Array, B.value.data as Float64Array, c.batches, m, k, n);
    assert.deepEqual(Array.from(C.value.data), Array.from(plain));

    const G = normal(C.shape);
    ag.backward(C, G);
    const ga = new Float64Array(A.value.size);
    const gb = new Float64Array(B.value.size);
    const g = G.data as Float64Array;
    c.batches.forEach(([ta, tb], t) => {
      for (let i = 0; i < m; i++) {
        for (let p = 0; p < k; p++) {
          for (let j = 0; j < n; j++) {
            ga[ta * m * k + i * k + p] += g[t * m * n + i * n + j] * B.value.data[tb * k * n + p * n + j];
            gb[tb * k * n + p * n + j] += A.value.data[ta * m * k + i * k + p] * g[t * m * n + i * n + j];
          }
        }
      }
    });
    const close = (x: ArrayLike<number>, y: Float64Array) =>
      Array.from(y).every((v, i) => Math.abs(x[i] - v) <= 1e-12 * (1 + Math.abs(v)));
    assert.ok(A.grad !== null && close(A.grad.data, ga), 'dA differs from G·Bᵀ');
    assert.ok(B.grad !== null && close(B.grad.data, gb), 'dB differs from Aᵀ·G');
  });
}

test('blocked matmul: gradient check on a shape with full 2×4 tiles and tails', () => {
  const r = ag.gradCheck(ag.matmul, [normal([2, 5, 6]), normal([6, 9])]);
  assert.ok(r.ok, `max error ${r.maxError}`);
});
