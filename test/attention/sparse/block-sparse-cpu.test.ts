import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../../src/core/tensor.js';
import {
  DTypeError,
  NonFiniteInputError,
  ShapeError,
  UnsupportedOptionError,
} from '../../../src/core/errors.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import { sageAttention } from '../../../src/attention/sage/sage-attention.js';
import { blockSparseAttention } from '../../../src/attention/sparse/block-sparse.js';
import {
  type FixedBlockLayout,
  layoutDensity,
  layoutToMask,
} from '../../../src/attention/sparse/block-layout.js';
import {
  bandLayout,
  denseLayout,
  layoutFromBlockMap,
  layoutFromSegments,
  layoutFromTokenPredicate,
} from '../../../src/attention/sparse/layout-builders.js';
import { gaussianQkv, type CaseDims } from '../cases.js';
import {
  assertMatchesOracle,
  maskedOracle,
  randomBlockMap,
  randomFixedLayout,
  randomVariableLayout,
} from './sparse-cases.js';

interface FixedCase {
  name: string;
  dims: CaseDims;
  blockQ: number;
  blockK: number;
  density: number;
  opts?: { causal?: boolean; causalAlignment?: 'top-left' | 'bottom-right' };
  layoutHeads?: number;
}

const fixedCases: FixedCase[] = [
  {
    name: 'B2 H2 N64 D16 blocks 16×8',
    dims: { batch: 2, headsQ: 2, tokensQ: 64, headDim: 16 },
    blockQ: 16,
    blockK: 8,
    density: 0.4,
  },
  {
    name: 'partial last blocks N70×Nk53',
    dims: { batch: 1, headsQ: 2, tokensQ: 70, tokensKv: 53, headDim: 8 },
    blockQ: 16,
    blockK: 24,
    density: 0.5,
  },
  {
    name: 'N shorter than a block',
    dims: { batch: 1, headsQ: 2, tokensQ: 5, tokensKv: 7, headDim: 8 },
    blockQ: 16,
    blockK: 64,
    density: 0.9,
  },
  {
    name: 'GQA Hq4 Hkv2',
    dims: { batch: 1, headsQ: 4, headsKv: 2, tokensQ: 40, headDim: 8 },
    blockQ: 8,
    blockK: 8,
    density: 0.3,
  },
  {
    name: 'NHD layout',
    dims: { batch: 2, headsQ: 3, tokensQ: 33, headDim: 8, layout: 'NHD' },
    blockQ: 8,
    blockK: 16,
    density: 0.5,
  },
  {
    name: 'causal top-left',
    dims: { batch: 1, headsQ: 2, tokensQ: 48, headDim: 8 },
    blockQ: 16,
    blockK: 8,
    density: 0.6,
    opts: { causal: true },
  },
  {
    name: 'causal bottom-right Nq40 > Nk24',
    dims: { batch: 1, headsQ: 1, tokensQ: 40, tokensKv: 24, headDim: 8 },
    blockQ: 8,
    blockK: 8,
    density: 0.7,
    opts: { causal: true, causalAlignment: 'bottom-right' },
  },
  {
    name: 'layout shared by heads',
    dims: { batch: 1, headsQ: 3, tokensQ: 32, headDim: 8 },
    blockQ: 8,
    blockK: 8,
    density: 0.5,
    layoutHeads: 1,
  },
];

for (const c of fixedCases) {
  test(`fixed layout matches the masked float64 oracle: ${c.name}`, () => {
    const { q, k, v } = gaussianQkv(c.dims, 7);
    const nq = c.dims.tokensQ;
    const nk = c.dims.tokensKv ?? nq;
    for (const seed of [1, 2, 3]) {
      const layout = randomFixedLayout(
        {
          batch: c.dims.batch,
          heads: c.layoutHeads ?? c.dims.headsQ,
          nq,
          nk,
          blockQ: c.blockQ,
          blockK: c.blockK,
        },
        c.density,
        seed,
      );
      const opts = { layout: c.dims.layout ?? 'HND', ...c.opts } as const;
      const ref = maskedOracle(q, k, v, layout, opts, { batch: c.dims.batch, heads: c.dims.headsQ });
      const got = blockSparseAttention(q, k, v, layout, { ...opts, returnLse: true });
      assert.deepEqual(got.out.shape, q.shape);
      assertMatchesOracle(got, ref, `${c.name} seed ${seed}`);
      // the CPU tiles do not change the result beyond rounding
      const tiled = blockSparseAttention(q, k, v, layout, { ...opts, returnLse: true, tileQ: 3, tileK: 5 });
      assertMatchesOracle(tiled, ref, `${c.name} seed ${seed} tiles 3×5`);
    }
  });
}

test('rows of a query block with no kept block are zeros with LSE −∞, never NaN', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 24, headDim: 4 }, 3);
  const map = tensor([1, 0, 0, 0, 0, 0, 0, 1, 1], [1, 1, 3, 3], 'bool');
  const layout = layoutFromBlockMap(map, { nq: 24, nk: 24, blockQ: 8, blockK: 8 });
  const { out, lse } = blockSparseAttention(q, k, v, layout, { returnLse: true });
  assert.deepEqual(Array.from(out.data.slice(32, 64)), new Array(32).fill(0));
  assert.deepEqual(Array.from(lse.data.slice(8, 16)), new Array(8).fill(-Infinity));
  assert.ok(out.data.every(Number.isFinite));
  const ref = maskedOracle(q, k, v, layout, {}, { batch: 1, heads: 1 });
  assertMatchesOracle({ out, lse }, ref, 'empty block row');
  // a layout with nothing kept at all
  const none = layoutFromBlockMap(tensor(new Array(9).fill(0), [1, 1, 3, 3], 'bool'), {
    nq: 24,
    nk: 24,
    blockQ: 8,
    blockK: 8,
  });
  const empty = blockSparseAttention(q, k, v, none, { returnLse: true });
  assert.ok(empty.out.data.every((x) => x === 0));
  assert.ok(empty.lse.data.every((x) => x === -Infinity));
});

test('variable segments (some empty) match the masked oracle', () => {
  for (const [dims, seed] of [
    [{ batch: 1, headsQ: 2, tokensQ: 50, tokensKv: 61, headDim: 8 }, 1],
    [{ batch: 2, headsQ: 2, headsKv: 1, tokensQ: 37, headDim: 8, layout: 'NHD' }, 2],
  ] as const) {
    const { q, k, v } = gaussianQkv(dims, 11 + seed);
    const nq = dims.tokensQ;
    const nk = ('tokensKv' in dims ? dims.tokensKv : undefined) ?? nq;
    const layout = randomVariableLayout(
      { batch: dims.batch, heads: dims.headsQ, nq, nk, cq: 6, ck: 7 },
      0.45,
      seed,
    );
    const opts = { layout: ('layout' in dims ? dims.layout : undefined) ?? 'HND' } as const;
    const ref = maskedOracle(q, k, v, layout, opts, { batch: dims.batch, heads: dims.headsQ });
    assertMatchesOracle(
      blockSparseAttention(q, k, v, layout, { ...opts, returnLse: true }),
      ref,
      `variable ${seed}`,
    );
    assertMatchesOracle(
      blockSparseAttention(q, k, v, layout, { ...opts, returnLse: true, tileQ: 4, tileK: 3 }),
      ref,
      `variable ${seed} tiles 4×3`,
    );
  }
});

test('an all-kept layout equals dense attention; density counts entries', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 30, headDim: 8 }, 5);
  const layout = denseLayout({ nq: 30, nk: 30, blockQ: 8, blockK: 8 });
  const ref = attentionReference(q, k, v, { returnLse: true });
  assertMatchesOracle(blockSparseAttention(q, k, v, layout, { returnLse: true }), ref, 'dense');
  assert.equal(layoutDensity(layout), 1);
  // causal density of a dense layout: the lower triangle, (N + 1) / (2N)
  assert.equal(layoutDensity(layout, { causal: true }), 31 / 60);
  const band = bandLayout({ nq: 30, nk: 30, blockQ: 10, blockK: 10, window: 0 });
  assert.equal(layoutDensity(band), 1 / 3);
  const stats = blockSparseAttention(q, k, v, band, { returnStats: true }).stats;
  assert.equal(stats.density, 1 / 3);
  assert.equal(stats.pvTested, 0);
});

/**
 * Hand-built stage-2 case: one query block of 4 rows, key blocks of 4. Block 0 holds a key whose logit
 * is 8 (log2 units) for every row; block 1 holds keys at logit 0; block 2 keys at 7.5. With
 * pvThreshold 5 and no exempt blocks: block 0 computes (first, m_prev = −∞), block 1 has
 * diff = 0 − 8 = −8, −8 + 5 ≤ 0 → skipped, block 2 has diff −0.5 → computed.
 */
function stageTwoCase() {
  const d = 4;
  const nk = 12;
  const qv = new Float64Array(4 * d);
  for (let r = 0; r < 4; r++) qv[r * d] = 1;
  const kv = new Float64Array(nk * d);
  const logit = (j: number) => (j < 4 ? (j === 0 ? 8 : 6) : j < 8 ? 0 : 7.5);
  // with smScale 1, the log2-unit logit is log2e·q·k, so q·k = logit / log2e
  for (let j = 0; j < nk; j++) kv[j * d] = logit(j) / Math.LOG2E;
  const vv = Float64Array.from({ length: nk * d }, (_, i) => Math.sin(i + 1));
  const q = tensor(qv, [1, 1, 4, d], 'float64');
  const k = tensor(kv, [1, 1, nk, d], 'float64');
  const v = tensor(vv, [1, 1, nk, d], 'float64');
  const layout = denseLayout({ nq: 4, nk, blockQ: 4, blockK: 4 });
  return { q, k, v, layout };
}

test('stage 2: a threshold that never skips equals no test, bit for bit', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 40, headDim: 8 }, 9);
  const layout = randomFixedLayout({ batch: 1, heads: 2, nq: 40, nk: 40, blockQ: 8, blockK: 8 }, 0.7, 4);
  const plain = blockSparseAttention(q, k, v, layout, { returnLse: true });
  const never = blockSparseAttention(q, k, v, layout, {
    returnLse: true,
    returnStats: true,
    pvThreshold: 50,
    pvExemptLast: 0,
  });
  assert.deepEqual(never.out.data, plain.out.data);
  assert.deepEqual(never.lse?.data, plain.lse.data);
  assert.ok(never.stats.pvTested > 0);
  assert.equal(never.stats.pvSkipped, 0);
});

test('stage 2: a skipped block drops out of both P·V and l (hand-built case)', () => {
  const { q, k, v, layout } = stageTwoCase();
  const got = blockSparseAttention(q, k, v, layout, {
    smScale: 1,
    pvThreshold: 5,
    pvExemptLast: 0,
    returnLse: true,
    returnStats: true,
  });
  assert.equal(got.stats.pvTested, 3);
  assert.equal(got.stats.pvSkipped, 1);
  // documented result: attention over blocks 0 and 2 only
  const keep = tensor(
    Array.from({ length: 4 * 12 }, (_, e) => (Math.floor((e % 12) / 4) === 1 ? 0 : 1)),
    [1, 1, 4, 12],
    'bool',
  );
  const ref = attentionReference(q, k, v, { smScale: 1, mask: keep, returnLse: true });
  assertMatchesOracle({ out: got.out, lse: got.lse as Tensor }, ref, 'block 1 skipped');
  // with the released kernels' default (last two blocks exempt) only block 0 is tested: no skip
  const exempt = blockSparseAttention(q, k, v, layout, { smScale: 1, pvThreshold: 5, returnStats: true });
  assert.equal(exempt.stats.pvTested, 1);
  assert.equal(exempt.stats.pvSkipped, 0);
  // threshold 9 > 8: block 1 computes too (−8 + 9 > 0), the full result
  const full = blockSparseAttention(q, k, v, layout, {
    smScale: 1,
    pvThreshold: 9,
    pvExemptLast: 0,
    returnLse: true,
  });
  assertMatchesOracle(full, attentionReference(q, k, v, { smScale: 1, returnLse: true }), 'nothing skipped');
  // equality at the boundary follows the kernels' test diff + pvthreshd > 0: −8 + 8 = 0 skips
  const edge = blockSparseAttention(q, k, v, layout, {
    smScale: 1,
    pvThreshold: 8,
    pvExemptLast: 0,
    returnStats: true,
  });
  assert.equal(edge.stats.pvSkipped, 1);
});

test('stage 2: per-warp groups skip only the group whose rows stay below the running max', () => {
  // rows 0-1 see logit 8 in block 0 and 0 in block 1; rows 2-3 see 0 in block 0 and 8 in block 1
  const d = 2;
  const qv = new Float64Array(4 * d);
  for (let r = 0; r < 4; r++) qv[r * d + (r < 2 ? 0 : 1)] = 1;
  const kv = new Float64Array(8 * d);
  for (let j = 0; j < 4; j++) kv[j * d] = 8 / Math.LOG2E;
  for (let j = 4; j < 8; j++) kv[j * d + 1] = 8 / Math.LOG2E;
  const q = tensor(qv, [1, 1, 4, d], 'float64');
  const k = tensor(kv, [1, 1, 8, d], 'float64');
  const v = tensor(
    Float64Array.from({ length: 8 * d }, (_, i) => i),
    [1, 1, 8, d],
    'float64',
  );
  const layout = denseLayout({ nq: 4, nk: 8, blockQ: 4, blockK: 4 });
  const opts = { smScale: 1, pvThreshold: 4, pvExemptLast: 0, returnStats: true } as const;
  // whole-block group: rows 2-3 jump by +8 in block 1, so the block computes
  assert.equal(blockSparseAttention(q, k, v, layout, opts).stats.pvSkipped, 0);
  const warp = blockSparseAttention(q, k, v, layout, { ...opts, pvGroupRows: 2 });
  assert.equal(warp.stats.pvTested, 4);
  assert.equal(warp.stats.pvSkipped, 1);
  const keep = tensor(
    Array.from({ length: 32 }, (_, e) => (Math.floor(e / 8) < 2 && e % 8 >= 4 ? 0 : 1)),
    [1, 1, 4, 8],
    'bool',
  );
  const ref = attentionReference(q, k, v, { smScale: 1, mask: keep });
  assert.ok(metrics.relL1(warp.out, ref) < 1e-6);
});

test('per-head pvThreshold', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 32, headDim: 8 }, 21);
  const layout = denseLayout({ nq: 32, nk: 32, blockQ: 8, blockK: 4 });
  const both = blockSparseAttention(q, k, v, layout, {
    pvThreshold: [50, 0],
    pvExemptLast: 0,
    returnStats: true,
  });
  const first = blockSparseAttention(q, k, v, layout, {
    pvThreshold: 50,
    pvExemptLast: 0,
    returnStats: true,
  });
  const second = blockSparseAttention(q, k, v, layout, {
    pvThreshold: 0,
    pvExemptLast: 0,
    returnStats: true,
  });
  assert.equal(first.stats.pvSkipped, 0);
  assert.ok(second.stats.pvSkipped > 0);
  assert.ok(both.stats.pvSkipped > 0 && both.stats.pvSkipped < second.stats.pvSkipped);
  assert.deepEqual(both.out.data.slice(0, 32 * 8), first.out.data.slice(0, 32 * 8));
  assert.deepEqual(both.out.data.slice(32 * 8), second.out.data.slice(32 * 8));
});

test('Sage quantization: a dense layout reproduces sageAttention bit for bit; a sparse one stays close to the oracle', () => {
  const dims = { batch: 1, headsQ: 2, tokensQ: 150, headDim: 32 };
  const { q, k, v } = gaussianQkv(dims, 31);
  for (const preset of ['sage1', 'sage2'] as const) {
    const dense = denseLayout({ nq: 150, nk: 150, blockQ: 128, blockK: 64 });
    const ref = sageAttention(q, k, v, { preset, returnLse: true });
    const got = blockSparseAttention(q, k, v, dense, { sage: preset, returnLse: true });
    assert.deepEqual(got.out.data, ref.out.data, `${preset}: output`);
    assert.deepEqual(got.lse.data, ref.lse.data, `${preset}: lse`);
  }
  const layout = randomFixedLayout({ batch: 1, heads: 2, nq: 150, nk: 150, blockQ: 32, blockK: 16 }, 0.5, 8);
  const oracle = maskedOracle(q, k, v, layout, {}, { batch: 1, heads: 2 });
  const sage = blockSparseAttention(q, k, v, layout, { sage: { preset: 'sage1' } });
  assert.ok(metrics.relL1(sage, oracle.out) < 0.02, `sage1 sparse relL1 ${metrics.relL1(sage, oracle.out)}`);
  assert.ok(metrics.relL1(sage, oracle.out) > 1e-6, 'quantization must leave a trace');
});

test('NaN policy: a NaN key in a block that is not kept is never read; one that is kept reaches only its rows', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 16, headDim: 4 }, 41);
  const map = tensor([1, 0, 0, 1], [1, 1, 2, 2], 'bool');
  const layout = layoutFromBlockMap(map, { nq: 16, nk: 16, blockQ: 8, blockK: 8 });
  const clean = blockSparseAttention(q, k, v, layout);
  const kd = Float32Array.from(k.data);
  kd[12 * 4 + 1] = NaN; // key 12: block 1, kept only by query block 1
  const kNan = tensor(kd, k.shape, 'float32');
  const got = blockSparseAttention(q, kNan, v, layout);
  assert.deepEqual(got.data.slice(0, 32), clean.data.slice(0, 32));
  assert.ok(got.data.slice(32).every(Number.isNaN));
  assert.throws(() => blockSparseAttention(q, kNan, v, layout, { nanPolicy: 'error' }), NonFiniteInputError);
});

test('bad layouts and options are typed errors', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 16, headDim: 4 }, 1);
  const good = randomFixedLayout(
    { batch: 1, heads: 2, nq: 16, nk: 16, blockQ: 8, blockK: 8 },
    0.5,
    1,
  ) as FixedBlockLayout;
  // layout for other lengths or heads
  assert.throws(() => blockSparseAttention(q, k, v, { ...good, nq: 17 }), ShapeError);
  assert.throws(() => blockSparseAttention(q, k, v, { ...good, heads: 3 }), ShapeError);
  // columns out of range, unsorted, offsets inconsistent
  const cols = (c: number[], offs: number[]) => ({
    ...good,
    columns: Int32Array.from(c),
    rowOffsets: Int32Array.from(offs),
  });
  assert.throws(() => blockSparseAttention(q, k, v, cols([0, 2], [0, 1, 1, 2, 2])), ShapeError);
  assert.throws(() => blockSparseAttention(q, k, v, cols([1, 0], [0, 2, 2, 2, 2])), ShapeError);
  assert.throws(() => blockSparseAttention(q, k, v, cols([0, 0], [0, 2, 2, 2, 2])), ShapeError);
  assert.throws(() => blockSparseAttention(q, k, v, cols([0], [0, 1, 1, 1, 2])), ShapeError);
  assert.throws(() => blockSparseAttention(q, k, v, cols([0], [0, 1, 1, 1])), ShapeError);
  assert.throws(
    () => blockSparseAttention(q, k, v, { ...good, kind: 'sparse' } as never),
    UnsupportedOptionError,
  );
  assert.throws(
    () => blockSparseAttention(q, k, v, { ...good, columns: [0] } as never),
    UnsupportedOptionError,
  );
  // block maps of the wrong shape or dtype
  const dims = { nq: 16, nk: 16, blockQ: 8, blockK: 8 };
  assert.throws(
    () => layoutFromBlockMap(randomBlockMap({ ...dims, batch: 1, heads: 2, nk: 24 }, 0.5, 1), dims),
    ShapeError,
  );
  assert.throws(() => layoutFromBlockMap(tensor([1, 0, 1, 1], [1, 1, 2, 2], 'float32'), dims), DTypeError);
  // variable bounds that do not end at N
  const seg = layoutFromSegments({
    qSizes: [8, 8],
    kSizes: [10, 6],
    map: tensor([1, 1, 1, 1], [1, 1, 2, 2], 'bool'),
  });
  assert.throws(
    () => blockSparseAttention(q, k, v, { ...seg, kBounds: Int32Array.from([0, 10, 15]) }),
    ShapeError,
  );
  assert.throws(
    () => blockSparseAttention(q, k, v, { ...seg, qBounds: Int32Array.from([0, 9, 8]) }),
    ShapeError,
  );
  assert.throws(
    () => layoutFromSegments({ qSizes: [8, 8, 1], kSizes: [16], map: tensor([1, 1], [1, 1, 2, 1], 'bool') }),
    ShapeError,
  );
  assert.throws(
    () => layoutFromSegments({ qSizes: [8, -1], kSizes: [16], map: tensor([1, 1], [1, 1, 2, 1], 'bool') }),
    ShapeError,
  );
  // options
  assert.throws(
    () => blockSparseAttention(q, k, v, good, { pvThreshold: [1, 2, 3] }),
    UnsupportedOptionError,
  );
  assert.throws(() => blockSparseAttention(q, k, v, good, { pvThreshold: NaN }), UnsupportedOptionError);
  assert.throws(() => blockSparseAttention(q, k, v, good, { pvGroupRows: 3 }), UnsupportedOptionError);
  assert.throws(() => blockSparseAttention(q, k, v, good, { tileK: 0 }), UnsupportedOptionError);
  assert.throws(() => blockSparseAttention(q, k, v, good, { tier: 'f32' }), UnsupportedOptionError);
  assert.throws(
    () => blockSparseAttention(q, k, v, good, { pvTreshold: 1 } as never),
    UnsupportedOptionError,
  );
  assert.throws(
    () => blockSparseAttention(q, k, v, good, { sage: 'sage9' as never }),
    UnsupportedOptionError,
  );
});

test('layoutToMask and the builders agree on a band with a sink', () => {
  const band = bandLayout({ nq: 20, nk: 20, blockQ: 4, blockK: 4, window: 3, sinkKeys: 2 });
  const mask = layoutToMask(band).data;
  for (let i = 0; i < 20; i++) {
    for (let j = 0; j < 20; j++) {
      const [bi, bj] = [Math.floor(i / 4), Math.floor(j / 4)];
      const meets = bj === 0 || Math.abs(bi - bj) <= 1;
      assert.equal(mask[i * 20 + j], meets ? 1 : 0, `(${i}, ${j})`);
    }
  }
});

test('layoutFromTokenPredicate keeps exactly the blocks holding a kept entry (the band by predicate = bandLayout)', () => {
  const tiling = { nq: 37, nk: 29, blockQ: 8, blockK: 6 };
  const byPredicate = layoutFromTokenPredicate(tiling, (_b, _h, i, j) => Math.abs(i - j) <= 4 || j < 3);
  const band = bandLayout({ ...tiling, window: 4, sinkKeys: 3 });
  assert.deepEqual(byPredicate.rowOffsets, band.rowOffsets);
  assert.deepEqual(byPredicate.columns, band.columns);
  // per-head predicates give per-head rows
  const perHead = layoutFromTokenPredicate({ ...tiling, heads: 2 }, (_b, h, i, j) =>
    h === 0 ? i === j : j === 0,
  );
  const mask = layoutToMask(perHead).data;
  for (let i = 0; i < 37; i++) {
    for (let j = 0; j < 29; j++) {
      if (i === j) assert.equal(mask[i * 29 + j], 1);
      if (j === 0) assert.equal(mask[37 * 29 + i * 29 + j], 1);
    }
  }
  assert.ok(layoutDensity(perHead) < 0.5);
});
