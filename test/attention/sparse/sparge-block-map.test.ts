import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tensor, type Tensor } from '../../../src/core/tensor.js';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { spargeBlockMap, spargeBlockStatistics } from '../../../src/attention/sparse/sparge-block-map.js';

/** A [1, 1, n, d] float64 tensor from rows. */
function rows(r: number[][]): Tensor {
  return tensor(r.flat(), [1, 1, r.length, r[0].length], 'float64');
}

const repeat = (row: number[], n: number) => Array.from({ length: n }, () => [...row]);

function mapRows(map: Tensor): number[][] {
  const [, , qb, kb] = map.shape;
  return Array.from({ length: qb }, (_, i) => Array.from(map.data.slice(i * kb, (i + 1) * kb)));
}

test('flat-topped row: exclusive TopCdf drops the block that crosses τ, inclusive keeps it', () => {
  // identical query and key tokens: every block has similarity 1, every compressed score is equal,
  // so the row's probabilities are 8 × 0.125 and the prefix sums 0.125 … 1 (exact in float32)
  const q = rows(repeat([0.3, -0.2, 0.5, 0.1], 4));
  const k = rows(repeat([0.7, 0.1, -0.4, 0.2], 32));
  const opts = { blockQ: 4, blockK: 4, smoothK: false, simThreshold: 0.5, cdfThreshold: 0.9 } as const;
  const exclusive = spargeBlockMap(q, k, opts);
  assert.deepEqual(mapRows(exclusive.map), [[1, 1, 1, 1, 1, 1, 1, 0]]);
  assert.equal(exclusive.stats.density, 7 / 8);
  const inclusive = spargeBlockMap(q, k, { ...opts, cdfRule: 'inclusive' });
  assert.deepEqual(mapRows(inclusive.map), [[1, 1, 1, 1, 1, 1, 1, 1]]);
  // τ exactly on a prefix sum: both rules keep that prefix
  for (const cdfRule of ['exclusive', 'inclusive'] as const) {
    const m = spargeBlockMap(q, k, { ...opts, cdfThreshold: 0.5, cdfRule });
    assert.deepEqual(mapRows(m.map), [[1, 1, 1, 1, 0, 0, 0, 0]], cdfRule);
  }
  assert.equal(spargeBlockStatistics(q, k, { ...opts, layout: 'HND', headDim: 4 }).simQ[0], 1);
});

test('similarity is the mean of all pairwise cosines (diagonal included), compared strictly with θ', () => {
  // K block 0 = {e0, e1}: cosines 1, 0, 0, 1 → mean exactly 0.5; block 1 = {e0, e0} → 1
  const q = rows([[1, 0.5, 0, 0]]);
  const k = rows([
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [1, 0, 0, 0],
    [1, 0, 0, 0],
  ]);
  const base = { blockQ: 1, blockK: 2, smoothK: false, topk: 0.5 } as const;
  const st = spargeBlockStatistics(q, k, { ...base, layout: 'HND', headDim: 4 });
  assert.deepEqual(Array.from(st.simK), [0.5, 1]);
  // θ = 0.5: block 0 is not similar (0.5 is not > 0.5), so it is a fix block; topk keeps ⌊0.5·2⌋ = 1
  // block (block 1, the only similar one)
  assert.deepEqual(mapRows(spargeBlockMap(q, k, { ...base, simThreshold: 0.5 }).map), [[1, 1]]);
  // θ just below: both similar; scores q·k̄/2 are 0.75/2 and 1/2, so top-1 is block 1 alone
  const below = spargeBlockMap(q, k, { ...base, simThreshold: 0.4999 });
  assert.deepEqual(mapRows(below.map), [[0, 1]]);
  assert.equal(below.stats.kSimilar, 1);
});

test('pooling divides a partial block by its true count; K smoothing removes the token mean', () => {
  const q = rows([[2, 0, 0, 0]]);
  const k = rows([
    [1, 0, 0, 0],
    [3, 0, 0, 0],
    [5, 0, 0, 0],
    [7, 0, 0, 0],
    [10, 0, 0, 0],
  ]);
  // blocks of 4: means 4 and 10 (one token, not 10/4); scores q̄·k̄/√4
  const raw = spargeBlockStatistics(q, k, {
    blockQ: 1,
    blockK: 4,
    smoothK: false,
    layout: 'HND',
    headDim: 4,
  });
  assert.deepEqual(Array.from(raw.scores), [4, 10]);
  // smoothed: k̄ = 26/5, block means 4 − 5.2 and 10 − 5.2
  const sm = spargeBlockStatistics(q, k, { blockQ: 1, blockK: 4, smoothK: true, layout: 'HND', headDim: 4 });
  assert.ok(Math.abs(sm.scores[0] - (4 - 5.2)) < 1e-12 && Math.abs(sm.scores[1] - (10 - 5.2)) < 1e-12);
});

test('block-causal mask, fix blocks for non-similar Q and K blocks, attention sink', () => {
  // Q blocks of 8, K blocks of 4 over 16 tokens: row i keeps j < 2(i + 1)
  const q = randn([1, 1, 16, 8], { seed: 1, dtype: 'float64' });
  const k = randn([1, 1, 16, 8], { seed: 2, dtype: 'float64' });
  const causal = spargeBlockMap(q, k, { blockQ: 8, blockK: 4, causal: true, simThreshold: -1, topk: 1 });
  assert.deepEqual(mapRows(causal.map), [
    [1, 1, 0, 0],
    [1, 1, 1, 1],
  ]);
  assert.equal(causal.stats.density, 1, 'density counts only causally allowed blocks');
  // θ = 1: no block is similar, so every block is a fix block (dense), whatever topk says
  const dense = spargeBlockMap(q, k, { blockQ: 8, blockK: 4, simThreshold: 1, topk: 0 });
  assert.deepEqual(mapRows(dense.map), [
    [1, 1, 1, 1],
    [1, 1, 1, 1],
  ]);
  assert.equal(dense.stats.qSimilar, 0);
  // one non-similar K block (alternating signs: its mean pairwise cosine is ≈ 0) is a whole fixed column
  const kRows = Array.from({ length: 16 }, (_, t) => [
    t < 4 ? 1 : 0,
    t >= 4 && t < 8 ? (t % 2 === 0 ? 1 : -1) : 0,
    t >= 8 ? 1 : 0,
    0.01 * t,
  ]);
  const qRows = Array.from({ length: 16 }, () => [1, 0, 0, 0]);
  const fix = spargeBlockMap(rows(qRows), rows(kRows), {
    blockQ: 8,
    blockK: 4,
    smoothK: false,
    simThreshold: 0.5,
    topk: 0.25,
  });
  // topk keeps ⌊0.25·4⌋ = 1 block per row (block 0, the largest score); block 1 is a fix column
  assert.deepEqual(mapRows(fix.map), [
    [1, 1, 0, 0],
    [1, 1, 0, 0],
  ]);
  const sink = spargeBlockMap(rows(qRows), rows(kRows), {
    blockQ: 8,
    blockK: 4,
    smoothK: false,
    simThreshold: 0.5,
    topk: 0.25,
    attentionSink: true,
  });
  assert.equal(sink.map.data[0], 1);
});

test('TopK keeps ⌊topk·#Kblocks⌋ per row by score, ties to the lower index; at least one block', () => {
  const q = rows([[1, 0]]);
  const k = rows([
    [1, 0],
    [3, 0],
    [2, 0],
    [3, 0],
    [0, 0],
  ]);
  const opts = { blockQ: 1, blockK: 1, smoothK: false, simThreshold: -1 } as const;
  assert.deepEqual(mapRows(spargeBlockMap(q, k, { ...opts, topk: 0.4 }).map), [[0, 1, 0, 1, 0]]);
  assert.deepEqual(mapRows(spargeBlockMap(q, k, { ...opts, topk: 0.6 }).map), [[0, 1, 1, 1, 0]]);
  assert.deepEqual(mapRows(spargeBlockMap(q, k, { ...opts, topk: 0.1 }).map), [[0, 1, 0, 0, 0]]);
  assert.deepEqual(mapRows(spargeBlockMap(q, k, { ...opts, cdfThreshold: 0 }).map), [[0, 1, 0, 0, 0]]);
});

test('per-head hyperparameters and GQA', () => {
  const q = randn([1, 2, 32, 8], { seed: 5, dtype: 'float64' });
  const k = randn([1, 1, 32, 8], { seed: 6, dtype: 'float64' });
  const m = spargeBlockMap(q, k, { blockQ: 8, blockK: 8, simThreshold: [-1, 1], topk: [0.25, 0.25] });
  assert.deepEqual(m.map.shape, [1, 2, 4, 4]);
  assert.equal(m.stats.headDensity[1], 1, 'θ = 1 makes head 1 dense');
  assert.equal(m.stats.headDensity[0], 0.25, 'head 0 keeps ⌊0.25·4⌋ = 1 block per row');
});

test('hard input: identical tokens, zero tokens, sequences shorter than a block — no NaN', () => {
  const q = rows(repeat([0.5, 0.5, 0.5, 0.5], 5));
  const k = rows(repeat([0.1, 0.2, 0.3, 0.4], 3));
  // smoothing makes every key exactly zero: zero tokens are similar to each other (similarity 1)
  const st = spargeBlockStatistics(q, k, {
    blockQ: 128,
    blockK: 64,
    smoothK: true,
    layout: 'HND',
    headDim: 4,
  });
  assert.deepEqual(Array.from(st.simK), [1]);
  assert.deepEqual(Array.from(st.simQ), [1]);
  assert.deepEqual(Array.from(st.scores), [0]);
  const m = spargeBlockMap(q, k);
  assert.deepEqual(m.map.shape, [1, 1, 1, 1]);
  assert.equal(m.map.data[0], 1);
  const zeros = rows(repeat([0, 0, 0, 0], 4));
  const z = spargeBlockStatistics(zeros, zeros, {
    blockQ: 2,
    blockK: 2,
    smoothK: false,
    layout: 'HND',
    headDim: 4,
  });
  assert.ok([...z.simQ, ...z.simK, ...z.scores].every((x) => !Number.isNaN(x)));
  // NaN in a key: its block (and with smoothing every block of the head) is non-similar, so computed
  const kn = randn([1, 1, 16, 4], { seed: 3, dtype: 'float64' });
  kn.data[5 * 4] = NaN;
  const qn = randn([1, 1, 16, 4], { seed: 4, dtype: 'float64' });
  const nan = spargeBlockMap(qn, kn, { blockQ: 4, blockK: 4, smoothK: false, topk: 0.25 });
  assert.ok(Array.from({ length: 4 }, (_, i) => nan.map.data[i * 4 + 1]).every((x) => x === 1));
  const nanSmooth = spargeBlockMap(qn, kn, { blockQ: 4, blockK: 4, topk: 0.25 });
  assert.ok(nanSmooth.map.data.every((x) => x === 1));
});

test('bad input is a typed error', () => {
  const q = randn([1, 2, 16, 8], { seed: 1 });
  const k = randn([1, 2, 16, 8], { seed: 2 });
  assert.throws(() => spargeBlockMap(q, randn([1, 2, 16, 4], { seed: 3 })), ShapeError);
  assert.throws(() => spargeBlockMap(q, randn([1, 3, 16, 8], { seed: 3 })), ShapeError);
  assert.throws(() => spargeBlockMap(q, tensor(new Int8Array(256), [1, 2, 16, 8], 'int8')), DTypeError);
  assert.throws(() => spargeBlockMap(q, k, { topk: 0.5, cdfThreshold: 0.9 }), UnsupportedOptionError);
  assert.throws(() => spargeBlockMap(q, k, { topk: 1.5 }), UnsupportedOptionError);
  assert.throws(() => spargeBlockMap(q, k, { cdfThreshold: [0.9] }), UnsupportedOptionError);
  assert.throws(() => spargeBlockMap(q, k, { simThreshold: NaN }), UnsupportedOptionError);
  assert.throws(
    () => spargeBlockMap(q, k, { cdfRule: 'both' as never, cdfThreshold: 0.5 }),
    UnsupportedOptionError,
  );
  assert.throws(() => spargeBlockMap(q, k, { blockQ: 0 }), UnsupportedOptionError);
  assert.throws(() => spargeBlockMap(q, k, { simthreshd1: 0.1 } as never), UnsupportedOptionError);
});
