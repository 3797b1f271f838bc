import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { convertLayout } from '../../../src/core/layout.js';
import { randn } from '../../../src/core/tensor.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { layoutDensity } from '../../../src/attention/sparse/block-layout.js';
import { isDenseWarmup } from '../../../src/attention/sparse/dense-warmup.js';
import { gatherTokens, scatterTokens } from '../../../src/attention/sparse/permute.js';
import { svgAttention } from '../../../src/attention/sparse/svg.js';
import {
  svgBandLayout,
  svgBandWidth,
  svgPermutation,
  temporalKernelIndex,
  temporalOriginalIndex,
} from '../../../src/attention/sparse/svg-layout.js';
import { planSvg, svgMask } from '../../../src/attention/sparse/svg-plan.js';
import { videoWorkload } from '../../../src/attention/sparse/video-workload.js';

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('band width from density: the reference examples (Wan 720p 2.81 frames, Hunyuan 720p ≈ 4.35)', () => {
  // sparsity_to_width(0.25, 0, 21, 3600): w = N·(1 − √(1 − s)) with N = 75 600
  const wan = svgBandWidth(0.25, { prefixTokens: 0, frames: 21, tokensPerFrame: 3600 });
  assert.ok(Math.abs(wan.widthFrames - 2.8135) < 1e-4, `Wan mul ${wan.widthFrames}`);
  assert.ok(Math.abs(wan.width - 75600 * (1 - Math.sqrt(0.75))) < 1e-9);
  // Hunyuan: 256 text tokens take 2·256/N of the budget first
  const hy = svgBandWidth(0.25, { prefixTokens: 256, frames: 33, tokensPerFrame: 3600 });
  const n = 256 + 33 * 3600;
  assert.ok(Math.abs(hy.width - n * (1 - Math.sqrt(1 - (0.25 - 512 / n)))) < 1e-9);
  assert.ok(Math.abs(hy.widthFrames - 4.35) < 0.005, `Hunyuan mul ${hy.widthFrames}`);
  // a budget the prefix already spends leaves only the diagonal; density 1 is the whole matrix
  assert.equal(svgBandWidth(0.01, { prefixTokens: 100, frames: 2, tokensPerFrame: 100 }).width, 0);
  assert.equal(svgBandWidth(1, { prefixTokens: 0, frames: 2, tokensPerFrame: 100 }).width, 200);
  assert.throws(
    () => svgBandWidth(0, { prefixTokens: 0, frames: 2, tokensPerFrame: 4 }),
    UnsupportedOptionError,
  );
});

test('layout transform: P + f·L + p ↔ P + p·F + f, round trip, prefix tokens fixed', () => {
  const g = { prefixTokens: 2, frames: 3, tokensPerFrame: 4 };
  // frame 1, position 2 → token-major position 2·3 + 1
  assert.equal(temporalKernelIndex(2 + 1 * 4 + 2, g), 2 + 2 * 3 + 1);
  assert.equal(temporalKernelIndex(1, g), 1);
  for (let o = 0; o < 14; o++) assert.equal(temporalOriginalIndex(temporalKernelIndex(o, g), g), o);
  const x = randn([1, 2, 14, 3], { seed: 1 });
  const perm = svgPermutation(['spatial', 'temporal'], g);
  assert.deepEqual(
    Array.from(perm.subarray(0, 14)),
    Array.from({ length: 14 }, (_, i) => i),
  );
  const moved = gatherTokens(x, perm);
  // head 1, kernel position 2 + 2·3 + 1 holds original token 2 + 1·4 + 2
  const at = (t: typeof x, h: number, n: number) =>
    Array.from(t.data.subarray((h * 14 + n) * 3, (h * 14 + n + 1) * 3));
  assert.deepEqual(at(moved, 1, 9), at(x, 1, 8));
  assert.deepEqual(scatterTokens(moved, perm).data, x.data);
});

test('band layout: prefix rows and columns dense, tiles meeting |r − c| ≤ w, optional sink', () => {
  const g = { prefixTokens: 0, frames: 4, tokensPerFrame: 16 };
  const l = svgBandLayout(g, { width: 10, firstFrameSink: false, blockQ: 16, blockK: 16 });
  // 4 tiles per axis; gap between tiles i and i ± 1 is 1 ≤ 10, between i and i ± 2 it is 17 > 10
  assert.deepEqual(Array.from(l.rowOffsets), [0, 2, 5, 8, 10]);
  assert.deepEqual(Array.from(l.columns), [0, 1, 0, 1, 2, 1, 2, 3, 2, 3]);
  const sink = svgBandLayout(g, { width: 10, firstFrameSink: true, blockQ: 16, blockK: 16 });
  assert.deepEqual(Array.from(sink.columns), [0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 2, 3]);
  const text = svgBandLayout(
    { ...g, prefixTokens: 16 },
    { width: 0, firstFrameSink: false, blockQ: 16, blockK: 16 },
  );
  // row 0 (text) is dense; other rows keep column 0 (text) and their diagonal
  assert.deepEqual(Array.from(text.rowOffsets), [0, 5, 7, 9, 11, 13]);
  assert.ok(Math.abs(layoutDensity(l) - (10 * 256) / (64 * 64)) < 1e-12);
});

test('dense warm-up: step < ⌊first_times_fp·steps⌋ or layer < ⌊first_layers_fp·layers⌋', () => {
  // defaults 0.075 and 0.025: 50 steps → steps 0, 1, 2 dense; 40 layers → layer 0 dense
  assert.equal(isDenseWarmup({ step: 2, numSteps: 50 }), true);
  assert.equal(isDenseWarmup({ step: 3, numSteps: 50 }), false);
  assert.equal(isDenseWarmup({ layer: 0, numLayers: 40 }), true);
  assert.equal(isDenseWarmup({ layer: 1, numLayers: 40 }), false);
  assert.equal(isDenseWarmup({ step: 9, numSteps: 50, firstTimesFp: 0.2 }), true);
  assert.equal(isDenseWarmup({ step: 10, numSteps: 50, firstTimesFp: 0.2 }), false);
  assert.equal(isDenseWarmup({}), false);
  assert.throws(() => isDenseWarmup({ step: 1 }), UnsupportedOptionError);
  assert.throws(() => isDenseWarmup({ step: 5, numSteps: 5 }), UnsupportedOptionError);
});

const clip = { frames: 4, height: 8, width: 8 } as const;
const tiles = { blockQ: 32, blockK: 32, density: 0.15 } as const;

test('profiling picks the spatial mask for a spatial head and the temporal mask for a temporal head', () => {
  const w = videoWorkload({ ...clip, seed: 5, heads: ['spatial', 'temporal', 'spatial', 'temporal'] });
  const few = planSvg(w.q, w.k, w.v, { ...clip, ...tiles, sampledRows: 4, seed: 1 });
  assert.deepEqual(few.headKinds, ['spatial', 'temporal', 'spatial', 'temporal']);
  for (const [h, m] of few.profile!.mse.entries()) {
    const [chosen, other] = h % 2 === 0 ? [m.spatial, m.temporal] : [m.temporal, m.spatial];
    assert.ok(chosen < 0.01 * other, `head ${h}: chosen MSE ${chosen} vs ${other}`);
  }
  // profiling a few rows finds the same masks as profiling every row (§5)
  const all = planSvg(w.q, w.k, w.v, { ...clip, ...tiles, sampledRows: 256 });
  assert.deepEqual(all.headKinds, few.headKinds);
  assert.equal(few.profile!.rows.length, 4);
  assert.ok(few.profile!.rows.every((r) => r >= 0 && r < 256));
  // the draw is seeded
  assert.deepEqual(
    planSvg(w.q, w.k, w.v, { ...clip, ...tiles, sampledRows: 4, seed: 1 }).profile!.rows,
    few.profile!.rows,
  );
});

test('svgAttention equals the float64 oracle masked by the plan (original order), with prefix, sink, NHD and LSE', () => {
  const w = videoWorkload({ ...clip, prefixTokens: 5, seed: 2 });
  const opts = { ...clip, ...tiles, prefixTokens: 5, firstFrameSink: true, sampledRows: 16 };
  const plan = planSvg(w.q, w.k, w.v, opts);
  assert.deepEqual(plan.headKinds.slice(0, 2), ['spatial', 'temporal']);
  const { out, lse } = svgAttention(w.q, w.k, w.v, { ...opts, plan, returnLse: true });
  const ref = attentionReference(w.q, w.k, w.v, { mask: svgMask(plan), returnLse: true });
  assert.ok(maxAbsDiff(out.data, ref.out.data) < 2e-5, `out ${maxAbsDiff(out.data, ref.out.data)}`);
  assert.ok(maxAbsDiff(lse.data, ref.lse.data) < 2e-4, `lse ${maxAbsDiff(lse.data, ref.lse.data)}`);
  // the temporal head really is sparse in original order and differs from a spatial band there
  assert.ok(plan.density < 0.7, `density ${plan.density}`);
  const nhd = (t: typeof w.q) => convertLayout(t, 'HND', 'NHD');
  const outNhd = svgAttention(nhd(w.q), nhd(w.k), nhd(w.v), { ...opts, plan, layout: 'NHD' });
  assert.deepEqual(outNhd.data, convertLayout(out, 'HND', 'NHD').data);
});

test('svgAttention runs dense during the warm-up and matches the unmasked oracle', () => {
  const w = videoWorkload({ ...clip, seed: 2, heads: ['temporal'] });
  const opts = { ...clip, ...tiles, step: 0, numSteps: 20, firstTimesFp: 0.2 };
  const plan = planSvg(w.q, w.k, w.v, opts);
  assert.equal(plan.dense, true);
  assert.equal(plan.density, 1);
  const out = svgAttention(w.q, w.k, w.v, opts);
  assert.ok(maxAbsDiff(out.data, attentionReference(w.q, w.k, w.v).data) < 2e-5);
});

test('bad input: wrong token count, causal, GQA, headKinds length, plan for other inputs', () => {
  const w = videoWorkload({ ...clip, seed: 2, heads: ['spatial', 'temporal'] });
  assert.throws(() => svgAttention(w.q, w.k, w.v, { ...clip, frames: 3 }), ShapeError);
  assert.throws(() => svgAttention(w.q, w.k, w.v, { ...clip, causal: true }), UnsupportedOptionError);
  assert.throws(() => svgAttention(w.q, w.k, w.v, { height: 8, width: 8 } as never), UnsupportedOptionError);
  const k1 = randn([1, 1, 256, 64], { seed: 1 });
  assert.throws(() => svgAttention(w.q, k1, k1, clip), UnsupportedOptionError);
  assert.throws(
    () => svgAttention(w.q, w.k, w.v, { ...clip, headKinds: ['spatial', 'spatial', 'temporal'] }),
    ShapeError,
  );
  const other = videoWorkload({ ...clip, seed: 2, heads: ['spatial'] });
  const plan = planSvg(other.q, other.k, other.v, clip);
  assert.throws(() => svgAttention(w.q, w.k, w.v, { ...clip, plan }), ShapeError);
});
