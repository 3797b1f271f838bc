import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tensor, type Tensor } from '../../../src/core/tensor.js';
import { MalformedFileError, NonFiniteInputError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import { blockSparseAttention } from '../../../src/attention/sparse/block-sparse.js';
import { layoutFromBlockMap } from '../../../src/attention/sparse/layout-builders.js';
import { spargeAttention } from '../../../src/attention/sparse/sparge-attention.js';
import { spargeBlockMap } from '../../../src/attention/sparse/sparge-block-map.js';
import { calibrateSparge } from '../../../src/attention/sparse/sparge-calibrate.js';
import {
  SPARGE_PARAMS_FORMAT,
  type SpargeParams,
  spargeParamsFromJson,
  spargeParamsToJson,
} from '../../../src/attention/sparse/sparge-params.js';
import {
  applyTokenOrder,
  hilbertOrder3d,
  restoreTokenOrder,
} from '../../../src/attention/sparse/token-orders.js';
import { gaussianQkv } from '../cases.js';
import { assertMatchesOracle, maskedOracle } from './sparse-cases.js';

/**
 * A block-diagonal head: tokens of each 16-token block share a direction c·e_block (plus noise), so
 * each query attends almost only to its own block (≈ 98.7 % of the mass at c = 5, D = 16).
 */
function blockDiagonal(n: number, d: number, c: number, seed: number) {
  const noise = randn([3, n, d], { seed, dtype: 'float64' }).data;
  const make = (which: number, signal: boolean) => {
    const x = new Float64Array(n * d);
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < d; j++) x[t * d + j] = 0.3 * noise[(which * n + t) * d + j];
      if (signal) x[t * d + (Math.floor(t / 16) % d)] += c;
    }
    return tensor(x, [1, 1, n, d], 'float64');
  };
  return { q: make(0, true), k: make(1, true), v: make(2, false) };
}

test('spargeAttention = spargeBlockMap → layoutFromBlockMap → blockSparseAttention (topk API defaults)', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 300, headDim: 16 }, 3);
  const got = spargeAttention(q, k, v, { returnLse: true, returnStats: true });
  const map = spargeBlockMap(q, k);
  assert.deepEqual(got.blockMap.data, map.map.data);
  assert.deepEqual(got.blockMap.shape, [1, 2, 3, 5], 'blocks of 128 × 64 by default');
  const layout = layoutFromBlockMap(map.map, { nq: 300, nk: 300, blockQ: 128, blockK: 64 });
  const direct = blockSparseAttention(q, k, v, layout, { pvThreshold: 50, returnLse: true });
  assert.deepEqual(got.out.data, direct.out.data);
  assert.deepEqual(got.lse?.data, direct.lse.data);
  // pvthreshd 50 never skips here: the result is the masked oracle's
  assertMatchesOracle(
    { out: got.out, lse: got.lse as Tensor },
    maskedOracle(q, k, v, layout, {}, { batch: 1, heads: 2 }),
    'sparge',
  );
  assert.equal(got.stats.kernel.pvSkipped, 0);
  assert.ok(got.stats.map.density < 1 && got.stats.map.density > 0);
});

test('a block-diagonal head: the map keeps the diagonal, the error is small; θ = 1 is dense attention', () => {
  const { q, k, v } = blockDiagonal(128, 16, 5, 1);
  const opts = { blockQ: 16, blockK: 16, cdfThreshold: 0.9, cdfRule: 'inclusive' } as const;
  const got = spargeAttention(q, k, v, { ...opts, returnStats: true });
  for (let i = 0; i < 8; i++) assert.equal(got.blockMap.data[i * 8 + i], 1, `diagonal block ${i}`);
  assert.ok(got.stats.map.density <= 0.25, `density ${got.stats.map.density}`);
  const ref = attentionReference(q, k, v);
  assert.ok(metrics.relL1(got.out, ref) < 0.05, `relative L1 ${metrics.relL1(got.out, ref)}`);
  const dense = spargeAttention(q, k, v, { ...opts, simThreshold: 1 });
  assert.ok(metrics.relL1(dense, ref) < 1e-6);
});

test('causal SpargeAttn masks the map by blocks and the diagonal blocks by tokens', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 64, headDim: 8 }, 4);
  const got = spargeAttention(q, k, v, {
    blockQ: 16,
    blockK: 8,
    causal: true,
    topk: 1,
    returnLse: true,
    returnStats: true,
  });
  // topk 1 with every block similar keeps every causally allowed block: exactly causal attention
  const ref = attentionReference(q, k, v, { causal: true, returnLse: true });
  assertMatchesOracle({ out: got.out, lse: got.lse as Tensor }, ref, 'causal');
  assert.equal(got.stats.map.density, 1);
});

test('token orders: SpargeAttn on Hilbert-ordered tokens, O back in the stored order', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 2 + 4 * 4 * 4, headDim: 8 }, 5);
  const order = hilbertOrder3d(4, 4, 4);
  const opts = { blockQ: 16, blockK: 8, prefix: 2 } as const;
  const got = spargeAttention(q, k, v, { ...opts, tokenOrder: order });
  const [qo, ko, vo] = [q, k, v].map((t) => applyTokenOrder(t, order, { prefix: 2 }));
  const manual = restoreTokenOrder(spargeAttention(qo, ko, vo, { blockQ: 16, blockK: 8 }), order, {
    prefix: 2,
  });
  assert.deepEqual(got.data, manual.data);
});

test('calibration finds a sparse configuration for a block-diagonal head and marks a noise head dense', () => {
  const n = 128;
  const d = 16;
  const sparse = blockDiagonal(n, d, 5, 2);
  const noise = {
    q: randn([1, 1, n, d], { seed: 8, dtype: 'float64' }),
    k: randn([1, 1, n, d], { seed: 9, dtype: 'float64' }),
    v: randn([1, 1, n, d], { seed: 10, dtype: 'float64' }),
  };
  // head 0 block-diagonal, head 1 noise with small logits (nearly uniform attention)
  const stack = (a: Tensor, b: Tensor, scale = 1) =>
    tensor(Float64Array.from([...a.data, ...Array.from(b.data, (x) => x * scale)]), [1, 2, n, d], 'float64');
  const sample = {
    q: stack(sparse.q, noise.q, 0.1),
    k: stack(sparse.k, noise.k, 0.1),
    v: stack(sparse.v, noise.v),
  };
  // 16 key blocks: for the noise head the τ search ends just below 1, where the exclusive rule drops
  // one block per row (sparsity 1/16 < 0.1), so its θ sweep stops at once and it is marked dense
  const opts = { blockQ: 16, blockK: 8, l1: 0.05, l2: 0.06 } as const;
  const cal = calibrateSparge([sample], opts);
  const p = cal.params;
  assert.equal(p.heads, 2);
  assert.deepEqual(p.sparse, [true, false]);
  assert.ok(p.sparsity[0] > 0.5, `head 0 sparsity ${p.sparsity[0]}`);
  assert.equal(p.cdfThreshold[1], 1);
  assert.equal(p.simThreshold[1], 1);
  assert.ok(cal.points[1].length === 1, 'the noise head stops the θ sweep at its first point');
  // the calibrated parameters meet the target on the calibration data
  const out = spargeAttention(sample.q, sample.k, sample.v, { params: p, returnStats: true });
  const ref = attentionReference(sample.q, sample.k, sample.v);
  const headErr = (h: number) =>
    metrics.relL1(
      out.out.data.slice(h * n * d, (h + 1) * n * d) as Float32Array,
      ref.data.slice(h * n * d, (h + 1) * n * d) as Float64Array,
    );
  assert.ok(headErr(0) < opts.l2, `head 0 relative L1 ${headErr(0)}`);
  assert.ok(headErr(1) < 1e-6, 'the dense head is exact');
  assert.ok(out.stats.map.headDensity[0] < 0.5);
  assert.equal(out.stats.map.headDensity[1], 1);
  // a second call aggregates: points accumulate and the dense head is not tuned again
  const again = calibrateSparge([sample, sample], opts);
  assert.equal(again.points[0].length, 2 * cal.points[0].length);
  assert.equal(again.points[1].length, 1);
  // JSON round trip
  assert.deepEqual(spargeParamsFromJson(spargeParamsToJson(p)), p);
});

test('malformed parameter JSON is a MalformedFileError naming the field', () => {
  const good: SpargeParams = {
    format: SPARGE_PARAMS_FORMAT,
    version: 1,
    heads: 2,
    blockQ: 128,
    blockK: 64,
    simThreshold: [0.5, 1],
    cdfThreshold: [0.9, 1],
    pvThreshold: [10, 20],
    sparse: [true, false],
    sparsity: [0.4, 0],
    l1: 0.07,
    l2: 0.08,
  };
  const text = spargeParamsToJson(good);
  assert.deepEqual(spargeParamsFromJson(text), good);
  const broken = (patch: object) => JSON.stringify({ ...good, ...patch });
  assert.throws(() => spargeParamsFromJson('{ not json'), MalformedFileError);
  assert.throws(() => spargeParamsFromJson('[1, 2]'), MalformedFileError);
  assert.throws(() => spargeParamsFromJson(broken({ format: 'other' })), MalformedFileError);
  assert.throws(() => spargeParamsFromJson(broken({ version: 2 })), MalformedFileError);
  assert.throws(() => spargeParamsFromJson(broken({ cdfThreshold: [0.9] })), /cdfThreshold/);
  assert.throws(() => spargeParamsFromJson(broken({ pvThreshold: [10, 70] })), /pvThreshold\[1\]/);
  assert.throws(() => spargeParamsFromJson(broken({ simThreshold: [0.5, 'x'] })), /simThreshold\[1\]/);
  assert.throws(() => spargeParamsFromJson(broken({ sparse: [true, 1] })), /sparse/);
  assert.throws(() => spargeParamsFromJson(broken({ heads: 0 })), /heads/);
  assert.throws(() => spargeParamsFromJson(broken({ extra: 1 })), /extra/);
  // params that do not fit the call
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 3, tokensQ: 16, headDim: 8 }, 1);
  assert.throws(() => spargeAttention(q, k, v, { params: good }), UnsupportedOptionError);
  const { q: q2, k: k2, v: v2 } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 16, headDim: 8 }, 1);
  assert.throws(() => spargeAttention(q2, k2, v2, { params: good, blockQ: 64 }), UnsupportedOptionError);
  assert.throws(() => spargeAttention(q2, k2, v2, { params: good, pvThreshold: 3 }), UnsupportedOptionError);
  assert.throws(() => spargeAttention(q2, k2, v2, { params: { ...good, l1: -1 } }), MalformedFileError);
});

test('hard input: shorter than a block, identical tokens, NaN (documented policy), bad options', () => {
  const short = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 5, headDim: 8 }, 6);
  const out = spargeAttention(short.q, short.k, short.v);
  assert.ok(metrics.relL1(out, attentionReference(short.q, short.k, short.v)) < 1e-6, 'one block: dense');
  const same = tensor(new Float64Array(200 * 8).fill(0.25), [1, 1, 200, 8], 'float64');
  const v = randn([1, 1, 200, 8], { seed: 2, dtype: 'float64' });
  const s = spargeAttention(same, same, v);
  assert.ok(s.data.every(Number.isFinite), 'identical tokens give finite output');
  // NaN in one key: with K smoothing the head's k̄ is NaN, every block is a fix block, and every row
  // reads the NaN key — NaN exactly where dense attention is NaN
  const { q, k, v: vv } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 200, headDim: 8 }, 7);
  const kd = Float32Array.from(k.data);
  kd[17 * 8] = NaN;
  const kn = tensor(kd, k.shape, 'float32');
  const nan = spargeAttention(q, kn, vv, { returnStats: true });
  assert.equal(nan.stats.map.density, 1);
  assert.ok(nan.out.data.every(Number.isNaN));
  assert.throws(() => spargeAttention(q, kn, vv, { nanPolicy: 'error' }), NonFiniteInputError);
  assert.throws(() => spargeAttention(q, k, vv, { topk: 0.5, cdfThreshold: 0.5 }), UnsupportedOptionError);
  assert.throws(() => spargeAttention(q, k, vv, { pvThreshold: [1, 2] }), UnsupportedOptionError);
  assert.throws(() => spargeAttention(q, k, vv, { bogus: 1 } as never), UnsupportedOptionError);
});
