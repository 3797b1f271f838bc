import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, randn } from '../../src/core/tensor.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import * as ag from '../../src/autograd/index.js';
import {
  type LinearOptions,
  type Matrix,
  type FallbackStats,
  linear,
  quantizeInt8Blocks,
  dequantizeInt8Blocks,
  quantizeInt8Fallback,
  selectFallbackBlocks,
  roundE2M1,
  quantizeMxfp4,
  dequantizeMxfp4,
  WeightEma,
  quantizeMxfp4Ema,
} from '../../src/nn/index.js';

const tensorOf = (data: Float64Array, shape: number[]) => new Tensor(data, shape, 'float64');
const normal = (shape: number[], seed: number) => randn(shape, { seed, dtype: 'float64' });
const mat = (t: { data: ArrayLike<number> } | Float64Array, rows: number, cols: number): Matrix => ({
  data: Float64Array.from(t instanceof Float64Array ? t : t.data),
  rows,
  cols,
});

/** Test-side reference: A·Bᵀ of row-major float64 matrices. */
function matmulNT(a: Matrix, b: Matrix): Float64Array {
  const out = new Float64Array(a.rows * b.rows);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < b.rows; j++)
      for (let k = 0; k < a.cols; k++) out[i * b.rows + j] += a.data[i * a.cols + k] * b.data[j * b.cols + k];
  return out;
}
const transpose = (a: Matrix): Matrix => {
  const data = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) data[j * a.rows + i] = a.data[i * a.cols + j];
  return { data, rows: a.cols, cols: a.rows };
};
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** Test-side Jetfire quantizer: per-B×B-block absmax/127, Math.round (random data has no ties). */
function refInt8Deq(a: Matrix, block = 32): Float64Array {
  const out = new Float64Array(a.data.length);
  for (let bi = 0; bi < a.rows; bi += block)
    for (let bj = 0; bj < a.cols; bj += block) {
      let m = 0;
      for (let i = bi; i < Math.min(a.rows, bi + block); i++)
        for (let j = bj; j < Math.min(a.cols, bj + block); j++)
          m = Math.max(m, Math.abs(a.data[i * a.cols + j]));
      const s = m / 127;
      for (let i = bi; i < Math.min(a.rows, bi + block); i++)
        for (let j = bj; j < Math.min(a.cols, bj + block); j++)
          out[i * a.cols + j] = s === 0 ? 0 : Math.round(a.data[i * a.cols + j] / s) * s;
    }
  return out;
}

/** Test-side MXFP4 (1×32 along rows, nearest): grid search over E2M1 values, truncation-free or OCP scale. */
function refMxfp4Deq(a: Matrix, rule: 'truncation-free' | 'ocp'): Float64Array {
  const grid = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++)
    for (let g = 0; g < a.cols; g += 32) {
      const idx = Array.from({ length: Math.min(32, a.cols - g) }, (_, t) => i * a.cols + g + t);
      const m = Math.max(...idx.map((e) => Math.abs(a.data[e])));
      const e = rule === 'truncation-free' ? Math.ceil(Math.log2(m / 6)) : Math.floor(Math.log2(m)) - 2;
      for (const k of idx) {
        const v = Math.abs(a.data[k]) / 2 ** e;
        const q = grid.reduce((best, x) => (Math.abs(x - v) < Math.abs(best - v) ? x : best));
        out[k] = Math.sign(a.data[k]) * q * 2 ** e;
      }
    }
  return out;
}

const xT = normal([2, 20, 48], 1); // 40 tokens × 48 features: partial 32-blocks on both axes
const wT = normal([24, 48], 2);
const bT = normal([24], 3);
const gT = normal([2, 20, 24], 4);
const X = mat(xT, 40, 48);
const W = mat(wT, 24, 48);

function run(opts: LinearOptions, withBias = true) {
  const x = ag.param(xT);
  const w = ag.param(wT);
  const b = ag.param(bT);
  const y = linear(x, w, withBias ? b : undefined, opts);
  ag.backward(y, gT);
  return { y: y.value.data, dx: x.grad!.data, dw: w.grad!.data, db: b.grad?.data };
}

test('fp32: gradients of x, w and b match float64 central differences', () => {
  const r = ag.gradCheck(
    (x, w, b) => linear(x, w, b, { mode: 'fp32' }),
    [normal([2, 3, 5], 10), normal([4, 5], 11), normal([4], 12)],
  );
  assert.ok(r.ok, `max error ${r.maxError} at ${JSON.stringify(r.worst)}`);
});

test('int8 blocks: known scales and codes (round half to even)', () => {
  const q = quantizeInt8Blocks(
    { data: Float64Array.from([1, -2, 0.5, 4, 0, 3, 0, 0, 0]), rows: 3, cols: 3 },
    { rounding: 'nearest-even', block: 2 },
  );
  assert.deepEqual(Array.from(q.scales), [4 / 127, 3 / 127, 0, 0]);
  // 1·127/4 = 31.75 → 32; −2·127/4 = −63.5 → −64; 0.5·127/3 = 21.17 → 21.
  assert.deepEqual(Array.from(q.codes), [32, -64, 21, 127, 0, 127, 0, 0, 0]);
});

test('int8 stochastic rounding: codes are the floor or ceiling, deterministic per rng', () => {
  const x = mat(normal([8, 8], 5), 8, 8);
  const s = quantizeInt8Blocks(x, { rounding: 'nearest-even' }).scales[0];
  const a = quantizeInt8Blocks(x, { rounding: 'stochastic', rng: Rng.fromSeed(7) });
  const b = quantizeInt8Blocks(x, { rounding: 'stochastic', rng: Rng.fromSeed(7) });
  assert.deepEqual(a.codes, b.codes);
  a.codes.forEach((c, i) => assert.ok(Math.abs(c - x.data[i] / s) < 1));
});

test('E2M1 rounding: nearest with ties to the even code, clipping at 6', () => {
  const cases = [
    [0.25, 0],
    [0.75, 1],
    [1.25, 1],
    [1.75, 2],
    [2.5, 2],
    [3.5, 4],
    [5, 4],
    [5.2, 6],
    [7, 6],
    [-2.4, -2],
    [-0.3, -0.5],
  ];
  for (const [v, want] of cases) assert.equal(roundE2M1(v, 'nearest-even'), want, `roundE2M1(${v})`);
  assert.equal(roundE2M1(2.25, 'stochastic', 0), 3); // bits 0 < 0.25·2^32: rounds up
  assert.equal(roundE2M1(2.25, 'stochastic', 0x40000000), 2); // bits = 0.25·2^32: rounds down
});

test('MXFP4 groups: known E8M0 exponents and elements, truncation-free vs OCP', () => {
  // One 1×32 group with amax 31: truncation-free e = ⌈log2(31/6)⌉ = 3; OCP e = ⌊log2 31⌋ − 2 = 2.
  const row = new Float64Array(32);
  row[0] = 31;
  row[1] = -1;
  row[2] = 9;
  const x = { data: row, rows: 1, cols: 32 };
  const tf = quantizeMxfp4(x, { along: 'row', rounding: 'nearest-even' });
  assert.deepEqual(Array.from(tf.exponents), [3]);
  assert.deepEqual(Array.from(tf.elements.slice(0, 3)), [4, -0, 1]); // 3.875 → 4, −0.125 → −0, 1.125 → 1
  const ocp = quantizeMxfp4(x, { along: 'row', rounding: 'nearest-even', scaleRule: 'ocp' });
  assert.deepEqual(Array.from(ocp.exponents), [2]);
  assert.deepEqual(Array.from(ocp.elements.slice(0, 3)), [6, -0, 2]); // 7.75 clips to 6, 2.25 → 2
  assert.deepEqual(Array.from(dequantizeMxfp4(ocp).data.slice(0, 3)), [24, -0, 8]);
  // 32×1 groups run down columns: a 40×2 matrix has groups (rows 0–31, rows 32–39) per column.
  const col = quantizeMxfp4(
    { data: Float64Array.from({ length: 80 }, (_, i) => (i === 2 * 33 + 1 ? 12 : 1)), rows: 40, cols: 2 },
    { along: 'column', rounding: 'nearest-even' },
  );
  assert.deepEqual(Array.from(col.exponents), [-2, -2, -2, 1]);
});

test('int8-block forward equals deq(Xq)·deq(Wq)ᵀ + b computed independently', () => {
  const { y } = run({ mode: 'int8-block' });
  const want = matmulNT(mat(refInt8Deq(X), 40, 48), mat(refInt8Deq(W), 24, 48));
  want.forEach((v, i) => assert.ok(Math.abs(y[i] - v - bT.data[i % 24]) < 1e-12));
});

for (const mode of ['mxfp4', 'mxfp4-ocp'] as const) {
  test(`${mode} forward equals deq(Q1(X))·deq(Q2(W))ᵀ + b computed independently`, () => {
    const rule = mode === 'mxfp4' ? 'truncation-free' : 'ocp';
    const { y } = run({ mode });
    const want = matmulNT(mat(refMxfp4Deq(X, rule), 40, 48), mat(refMxfp4Deq(W, rule), 24, 48));
    want.forEach((v, i) => assert.ok(Math.abs(y[i] - v - bT.data[i % 24]) < 1e-12));
  });
}

/**
 * The stochastic backward's expectation is the straight-through gradient of the quantized forward:
 * ∂X = ∂Y·deq(Wq), ∂W = ∂Yᵀ·deq(Xq), ∂b = Σ_tokens ∂Y. Over n seeds each element's mean must lie
 * within 6 standard errors (per-element sample std / √n) of it.
 */
for (const mode of ['int8-block', 'mxfp4'] as const) {
  test(`${mode}: stochastic backward is unbiased and deterministic per seed and step`, () => {
    const xq = mode === 'mxfp4' ? refMxfp4Deq(X, 'truncation-free') : refInt8Deq(X);
    const wq = mode === 'mxfp4' ? refMxfp4Deq(W, 'truncation-free') : refInt8Deq(W);
    const G = mat(gT, 40, 24);
    const wantDx = matmulNT(G, transpose(mat(wq, 24, 48)));
    const wantDw = matmulNT(transpose(G), transpose(mat(xq, 40, 48)));
    const wantDb = Float64Array.from({ length: 24 }, (_, j) => {
      let s = 0;
      for (let i = 0; i < 40; i++) s += G.data[i * 24 + j];
      return s;
    });
    const n = 150;
    const stats = [wantDx, wantDw, wantDb].map((w) => ({
      want: w,
      sum: new Float64Array(w.length),
      sq: new Float64Array(w.length),
    }));
    for (let seed = 0; seed < n; seed++) {
      const r = run({ mode, seed, step: 3 });
      [r.dx, r.dw, r.db!].forEach((got, k) =>
        got.forEach((v, i) => {
          stats[k].sum[i] += v;
          stats[k].sq[i] += v * v;
        }),
      );
    }
    for (const [k, { want, sum, sq }] of stats.entries()) {
      want.forEach((w, i) => {
        const mean = sum[i] / n;
        const sd = Math.sqrt(Math.max(0, sq[i] / n - mean * mean));
        assert.ok(
          Math.abs(mean - w) <= (6 * sd) / Math.sqrt(n) + 1e-9,
          `grad ${k}[${i}]: mean ${mean} vs ${w}, sd ${sd}`,
        );
      });
    }
    const a = run({ mode, seed: 5, step: 1 });
    const b = run({ mode, seed: 5, step: 1 });
    const c = run({ mode, seed: 5, step: 2 });
    assert.deepEqual(a.dx, b.dx);
    assert.deepEqual(a.dw, b.dw);
    assert.notDeepEqual(a.dx, c.dx);
  });
}

test('fallback criteria: absolute threshold, k·median and top-r budget', () => {
  const absmax = Float64Array.from([1, 2, 50, 3, 8, 2]);
  assert.deepEqual(
    Array.from(selectFallbackBlocks(absmax, { kind: 'absolute', threshold: 5 })),
    [0, 0, 1, 0, 1, 0],
  );
  // median of [1, 2, 2, 3, 8, 50] = 2.5; 3·2.5 = 7.5
  assert.deepEqual(Array.from(selectFallbackBlocks(absmax, { kind: 'median', k: 3 })), [0, 0, 1, 0, 1, 0]);
  assert.deepEqual(
    Array.from(selectFallbackBlocks(absmax, { kind: 'budget', rate: 0.34 })),
    [0, 0, 1, 0, 1, 0],
  );
});

test('int8-fallback: residual blocks, reported rate, forward = (deq(q1) + deq(q2))·deq(Wq)ᵀ', () => {
  const x = Float64Array.from(xT.data);
  for (let i = 0; i < 8; i++) x[i * 48 + 40] = 300; // an outlier channel in token block 0, channel block 1
  const Xo = mat(x, 40, 48);
  const fq = quantizeInt8Fallback(Xo, { kind: 'absolute', threshold: 10 });
  assert.deepEqual(Array.from(fq.fallback), [0, 1, 0, 0]);
  assert.deepEqual(Array.from(fq.residual.scales.map((v) => (v === 0 ? 0 : 1))), [0, 1, 0, 0]);
  const p = dequantizeInt8Blocks(fq.primary).data;
  const r = dequantizeInt8Blocks(fq.residual).data;
  const xd = p.map((v, i) => v + r[i]);
  let reported: FallbackStats | undefined;
  const y = linear(ag.constant(tensorOf(x, [40, 48])), ag.constant(wT), undefined, {
    mode: 'int8-fallback',
    fallback: { kind: 'absolute', threshold: 10 },
    onFallback: (st) => (reported = st),
  });
  assert.deepEqual(reported, { blocks: 4, fallbackBlocks: 1, rate: 0.25 });
  const want = matmulNT(mat(xd, 40, 48), mat(refInt8Deq(W), 24, 48));
  want.forEach((v, i) => assert.ok(Math.abs(y.value.data[i] - v) < 1e-9));
  // The outlier block's small entries keep ≈16 bits: X's error falls far below plain INT8's, and
  // the output error (then dominated by W's INT8 error) drops by more than half (measured ≈3×).
  assert.ok(relError(xd, x) < relError(p, x) / 10);
  const exact = matmulNT(Xo, W);
  const plain = linear(ag.constant(tensorOf(x, [40, 48])), ag.constant(wT), undefined, {
    mode: 'int8-block',
  });
  const errFallback = relError(y.value.data, exact);
  const errPlain = relError(plain.value.data, exact);
  assert.ok(errFallback < errPlain / 2, `fallback ${errFallback} vs int8-block ${errPlain}`);
  assert.throws(
    () => linear(ag.constant(xT), ag.constant(wT), undefined, { mode: 'int8-fallback' }),
    UnsupportedOptionError,
  );
});

test('quantized modes stay close to fp32 on Gaussian data (measured relative errors, ≥1.7× margin)', () => {
  const ref = run({ mode: 'fp32' });
  // Measured (y, ∂X, ∂W): int8 0.9–1.3 %, mxfp4 16–20 % (E2M1 keeps 1 mantissa bit).
  const bounds = { 'int8-block': 0.03, 'int8-fallback': 0.03, mxfp4: 0.35, 'mxfp4-ocp': 0.35 } as const;
  for (const [mode, bound] of Object.entries(bounds) as [keyof typeof bounds, number][]) {
    const got = run({ mode, fallback: { kind: 'budget', rate: 0.25 }, seed: 9 });
    const errs = [relError(got.y, ref.y), relError(got.dx, ref.dx), relError(got.dw, ref.dw)];
    for (const e of errs) assert.ok(e < bound, `${mode}: relative errors ${errs.join(', ')}`);
  }
});

test('mxfp4 with Q-EMA: Q2 follows the weight EMA once it is ready, round-to-nearest before', () => {
  const plain = run({ mode: 'mxfp4' }).y;
  // an EMA equal to W picks the nearest neighbour: the same forward as plain round-to-nearest
  const same = new WeightEma(W.data, 0.9, 0);
  assert.deepEqual(run({ mode: 'mxfp4', weightEma: same }).y, plain);
  // an EMA pulled far above W picks the upper neighbour wherever the two differ
  const high = new WeightEma(
    Float64Array.from(W.data, (w) => w + 3 * Math.sign(w)),
    0.9,
    0,
  );
  const yHigh = run({ mode: 'mxfp4', weightEma: high }).y;
  const want = matmulNT(
    mat(refMxfp4Deq(X, 'truncation-free'), 40, 48),
    mat(dequantizeMxfp4(quantizeMxfp4Ema(W, high.value, { along: 'row' })), 24, 48),
  );
  want.forEach((v, i) => assert.ok(Math.abs(yHigh[i] - v - bT.data[i % 24]) < 1e-12));
  assert.notDeepEqual(yHigh, plain);
  // before the warm-up ends the EMA is not used
  const warming = new WeightEma(high.value, 0.9, 5);
  assert.deepEqual(run({ mode: 'mxfp4', weightEma: warming }).y, plain);
  assert.throws(() => run({ mode: 'mxfp4', weightEma: new WeightEma(new Float64Array(3)) }), ShapeError);
});
