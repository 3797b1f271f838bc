/**
 * Pins every numeric step of SageBwd (sageattention.md §8): the op's forward output and gradients must
 * equal an independent dense re-derivation (dense-sage-bwd.ts) to 1e-10, so a change of block size,
 * scale formula, rounding, dP format or smooth-K term fails here; plus the saved block scales, the
 * rounding at exact ties and the FP16 product on hand-made inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, randn } from '../../../src/core/tensor.js';
import { backward, param } from '../../../src/autograd/index.js';
import {
  type SageBwdOptions,
  sageAttentionTrainable,
} from '../../../src/autograd/sage-attention-trainable.js';
import { resolveSageBwdOptions } from '../../../src/attention/backward/options.js';
import { sageBwdForward } from '../../../src/attention/backward/sage-bwd-forward.js';
import { halfDot, toHalf } from '../../../src/attention/backward/fp16-product.js';
import { type DenseOptions, denseSageBwd } from './dense-sage-bwd.js';

interface Problem {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  g: Float64Array;
  dims: { bh: number; nq: number; nk: number; d: number; dv: number };
}

function problem(nq: number, nk: number, d: number, dv: number, seed: number, kBias = 0): Problem {
  const bh = 2;
  const k = randn([bh * nk * d], { seed: seed + 1, dtype: 'float64' }).data as Float64Array;
  for (let i = 0; i < k.length; i++) k[i] += kBias * (1 + (i % d));
  return {
    q: randn([bh * nq * d], { seed, dtype: 'float64' }).data as Float64Array,
    k,
    v: randn([bh * nk * dv], { seed: seed + 2, dtype: 'float64' }).data as Float64Array,
    g: randn([bh * nq * dv], { seed: seed + 3, dtype: 'float64' }).data as Float64Array,
    dims: { bh, nq, nk, d, dv },
  };
}

/** The op through autograd: O and the three gradients of Σ g∘O. */
function runOp(p: Problem, opts: SageBwdOptions) {
  const { bh, nq, nk, d, dv } = p.dims;
  const q = param(new Tensor(p.q, [1, bh, nq, d], 'float64'));
  const k = param(new Tensor(p.k, [1, bh, nk, d], 'float64'));
  const v = param(new Tensor(p.v, [1, bh, nk, dv], 'float64'));
  const o = sageAttentionTrainable(q, k, v, opts);
  backward(o, new Tensor(p.g, [1, bh, nq, dv], 'float64'));
  return {
    o: o.value.data as Float64Array,
    dq: q.grad?.data as Float64Array,
    dk: k.grad?.data as Float64Array,
    dv: v.grad?.data as Float64Array,
  };
}

/** max |a − b| / max |b|. */
function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return diff / mag;
}

function dense(p: Problem, o: Partial<DenseOptions> & { blockQ: number; blockK: number }) {
  return denseSageBwd(p.q, p.k, p.v, p.g, p.dims, {
    sigma: 1 / Math.sqrt(p.dims.d),
    causal: false,
    rounding: 'nearest-even',
    smoothK: true,
    correction: true,
    dP: 'fp16',
    dS: 'int8',
    ...o,
  });
}

const CASES: { name: string; p: Problem; opts: SageBwdOptions; dense: Partial<DenseOptions> }[] = [
  {
    name: 'odd lengths, partial blocks, Dv ≠ D',
    p: problem(20, 13, 8, 6, 10, 0.5),
    opts: { blockQ: 8, blockK: 8 },
    dense: {},
  },
  {
    name: 'causal, two key blocks per query block',
    p: problem(24, 24, 16, 16, 20),
    opts: { blockQ: 16, blockK: 8, causal: true },
    dense: { causal: true },
  },
  {
    name: 'causal with Nq > Nk (rows that see no key), D = 40 (a partial MMA step)',
    p: problem(12, 7, 40, 40, 30),
    opts: { blockQ: 8, blockK: 8, causal: true },
    dense: { causal: true },
  },
  {
    name: 'smooth-K term off, K with a channel bias',
    p: problem(16, 16, 8, 8, 40, 2),
    opts: { blockQ: 8, blockK: 8, smoothKCorrection: false },
    dense: { correction: false },
  },
  {
    name: 'no K smoothing, dP in float64',
    p: problem(16, 16, 8, 8, 50),
    opts: { blockQ: 8, blockK: 8, smoothK: false, dP: 'float64' },
    dense: { smoothK: false, dP: 'float64' },
  },
  {
    name: 'ablations: dP INT8 (SA3 Table 1c), dS unquantized (SB26)',
    p: problem(20, 18, 8, 8, 60, 1),
    opts: { blockQ: 8, blockK: 8, dP: 'int8', dS: 'float64' },
    dense: { dP: 'int8', dS: 'float64' },
  },
];

for (const c of CASES) {
  test(`SageBwd INT8 equals the dense re-derivation of Alg. 2–3: ${c.name}`, () => {
    const got = runOp(c.p, c.opts);
    const want = dense(c.p, { blockQ: c.opts.blockQ as number, blockK: c.opts.blockK as number, ...c.dense });
    for (const key of ['o', 'dq', 'dk', 'dv'] as const) {
      for (const x of got[key]) assert.ok(Number.isFinite(x), `${key} has a non-finite value`);
      const err = maxRelDiff(got[key], want[key]);
      assert.ok(err < 1e-10, `${key}: max relative difference ${err}`);
    }
  });
}

test('the dense comparison is sensitive to each step it pins (so the tests above can fail)', () => {
  const p = problem(20, 13, 8, 6, 10, 0.5);
  const got = runOp(p, { blockQ: 8, blockK: 8 });
  const variants: [string, Partial<DenseOptions> & { blockQ: number; blockK: number }][] = [
    ['key block 16', { blockQ: 8, blockK: 16 }],
    ['query block 16', { blockQ: 16, blockK: 8 }],
    ['dP in float64', { blockQ: 8, blockK: 8, dP: 'float64' }],
    ['no smooth-K term', { blockQ: 8, blockK: 8, correction: false }],
    ['no smoothing', { blockQ: 8, blockK: 8, smoothK: false }],
    ['dP INT8', { blockQ: 8, blockK: 8, dP: 'int8' }],
    ['dS unquantized', { blockQ: 8, blockK: 8, dS: 'float64' }],
  ];
  for (const [name, o] of variants) {
    const want = dense(p, o);
    const err = Math.max(
      maxRelDiff(got.dq, want.dq),
      maxRelDiff(got.dk, want.dk),
      maxRelDiff(got.dv, want.dv),
    );
    assert.ok(err > 1e-6, `${name}: gradients differ by only ${err}`);
  }
});

test('saved Q, K, V scales: one per block of blockQ / blockK tokens, max|x|/127 of the valid tokens only', () => {
  const bh = 1;
  const nq = 20;
  const nk = 11;
  const d = 4;
  const q = new Float64Array(nq * d).fill(0.25);
  q[3] = -6.35; // block 0 (tokens 0–7)
  q[9 * d] = 2.54; // block 1 (tokens 8–15)
  q[19 * d + 1] = 1.27; // block 2: tokens 16–19 only
  const k = new Float64Array(nk * d);
  k[10 * d] = 12.7; // K block 1 is tokens 8–10
  const v = new Float64Array(nk * d);
  v[2] = -3.81;
  const opts = resolveSageBwdOptions({ blockQ: 8, blockK: 8, smoothK: false }, d);
  const { saved } = sageBwdForward(q, k, v, { bh, nq, nk, d, dv: d }, opts);
  const f = Math.fround;
  assert.deepEqual(Array.from(saved.q.scales), [f(6.35 / 127), f(2.54 / 127), f(1.27 / 127)].map(f));
  // K block 0 is all zero: codes 0 and the CUDA guard's scale 1e-7/127 (sageattention.md §3.2)
  assert.deepEqual(Array.from(saved.k.scales), [f(f(1e-7) / 127), f(12.7 / 127)]);
  assert.deepEqual(Array.from(saved.v.scales), [f(3.81 / 127), f(f(1e-7) / 127)]);
  assert.equal(saved.q.values[3], -127);
  assert.equal(saved.q.values[0], Math.round(f(0.25 / f(6.35 / 127))));
  assert.equal(saved.k.values[10 * d], 127);
});

test('rounding reaches the Q/K/V quantizers: exact ties round to even, or away with half-away', () => {
  // values (m + 0.5)/2 with a 63.5 in every block: δ = 0.5 exactly, so x/δ = m + 0.5 is a tie
  // (q and k are scaled by 2^-6, which keeps the ties and keeps the softmax from saturating)
  const nq = 16;
  const nk = 16;
  const d = 8;
  const grid = (n: number, seed: number) => {
    const r = randn([n * d], { seed, dtype: 'float64' }).data;
    const x = new Float64Array(n * d);
    for (let i = 0; i < x.length; i++) x[i] = (Math.round(r[i] * 4) + 0.5) / 2;
    for (let t = 0; t < n; t += 8) x[t * d] = 63.5;
    return x;
  };
  const p: Problem = {
    q: grid(2 * nq, 1).map((x) => x / 64),
    k: grid(2 * nk, 2).map((x) => x / 64),
    v: grid(2 * nk, 3),
    g: randn([2 * nq * d], { seed: 4, dtype: 'float64' }).data as Float64Array,
    dims: { bh: 2, nq, nk, d, dv: d },
  };
  const base = { blockQ: 8, blockK: 8, smoothK: false } as const;
  const even = runOp(p, { ...base, rounding: 'nearest-even' });
  const away = runOp(p, { ...base, rounding: 'half-away' });
  for (const [got, rounding] of [
    [even, 'nearest-even'],
    [away, 'half-away'],
  ] as const) {
    const want = dense(p, { blockQ: 8, blockK: 8, smoothK: false, rounding });
    for (const key of ['o', 'dq', 'dk', 'dv'] as const) {
      assert.ok(maxRelDiff(got[key], want[key]) < 1e-10, `${rounding} ${key}`);
    }
  }
  assert.ok(maxRelDiff(even.o, away.o) > 1e-4, 'ties present, so the two roundings must differ');
});

test('FP16 dP: operands rounded to half (ties to even, clamped at ±65504), fp32 accumulation per 16', () => {
  const h = toHalf(new Float64Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, -1e9, 2 ** -25, NaN]));
  assert.deepEqual(Array.from(h.subarray(0, 5)), [1, 1 + 2 ** -9, 65504, -65504, 0]);
  assert.ok(Number.isNaN(h[5]));
  // 16 products summing to 1, then 16 summing to 2^-30: fp32 absorbs the second step
  const a = new Float64Array(32).fill(1);
  const b = new Float64Array(32);
  b.fill(1 / 16, 0, 16);
  b.fill(2 ** -34, 16, 32);
  assert.equal(halfDot(a, 0, b, 0, 32), 1);
  // within one step the sum is float64: fifteen quarter-ulps of 1 add up before the one fp32 rounding
  // (rounding each product into fp32 would drop every one of them)
  const c = new Float64Array(16).fill(2 ** -25);
  c[0] = 1;
  assert.equal(halfDot(new Float64Array(16).fill(1), 0, c, 0, 16), 1 + 2 ** -21);
  // a partial last step (n = 20) is still summed
  assert.equal(halfDot(new Float64Array(20).fill(1), 0, new Float64Array(20).fill(0.5), 0, 20), 10);
});
