/**
 * Shared inputs for the block-sparse tests: random block maps and segment layouts from a seed, and the
 * comparison against the float64 oracle with the layout's token mask.
 */
import assert from 'node:assert/strict';
import { rand, tensor, type Tensor } from '../../../src/core/tensor.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import type { AttentionOptions } from '../../../src/attention/options.js';
import { type BlockSparseLayout, layoutToMask } from '../../../src/attention/sparse/block-layout.js';
import { layoutFromBlockMap, layoutFromSegments } from '../../../src/attention/sparse/layout-builders.js';

/** A [B, H, ⌈nq/bq⌉, ⌈nk/bk⌉] bool map with each block kept with probability `density`. */
export function randomBlockMap(
  dims: { batch: number; heads: number; nq: number; nk: number; blockQ: number; blockK: number },
  density: number,
  seed: number,
): Tensor<'bool'> {
  const shape = [dims.batch, dims.heads, Math.ceil(dims.nq / dims.blockQ), Math.ceil(dims.nk / dims.blockK)];
  const u = rand(shape, { seed }).data;
  return tensor(
    Array.from(u, (x) => (x < density ? 1 : 0)),
    shape,
    'bool',
  );
}

export function randomFixedLayout(
  dims: { batch: number; heads: number; nq: number; nk: number; blockQ: number; blockK: number },
  density: number,
  seed: number,
): BlockSparseLayout {
  return layoutFromBlockMap(randomBlockMap(dims, density, seed), dims);
}

/** Random segment sizes (some empty) per (b, h) summing to n, from a seed. */
export function randomSizes(sets: number, segments: number, n: number, seed: number): number[] {
  const u = rand([sets, segments], { seed }).data;
  const sizes: number[] = [];
  for (let s = 0; s < sets; s++) {
    const w: number[] = Array.from({ length: segments }, (_, i) =>
      u[s * segments + i] < 0.2 ? 0 : u[s * segments + i],
    );
    if (!w.some((x) => x > 0)) w[0] = 1;
    const total = w.reduce((a, b) => a + b, 0);
    const row = w.map((x) => Math.floor((x / total) * n));
    row[w.findIndex((x) => x > 0)] += n - row.reduce((a, b) => a + b, 0);
    sizes.push(...row);
  }
  return sizes;
}

export function randomVariableLayout(
  dims: { batch: number; heads: number; nq: number; nk: number; cq: number; ck: number },
  density: number,
  seed: number,
): BlockSparseLayout {
  const sets = dims.batch * dims.heads;
  const shape = [dims.batch, dims.heads, dims.cq, dims.ck];
  const u = rand(shape, { seed: seed + 1 }).data;
  return layoutFromSegments({
    qSizes: randomSizes(sets, dims.cq, dims.nq, seed + 2),
    kSizes: randomSizes(sets, dims.ck, dims.nk, seed + 3),
    map: tensor(
      Array.from(u, (x) => (x < density ? 1 : 0)),
      shape,
      'bool',
    ),
  });
}

/** The oracle's output and LSE with the layout's token mask (broadcast to B, Hq). */
export function maskedOracle(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layout: BlockSparseLayout,
  opts: AttentionOptions,
  dims: { batch: number; heads: number },
) {
  const mask = layoutToMask(layout, dims);
  return attentionReference(q, k, v, { ...opts, mask, returnLse: true });
}

/** Output within float32 rounding of the oracle, LSE likewise, −∞ exactly where the oracle has it. */
export function assertMatchesOracle(
  got: { out: Tensor; lse: Tensor },
  ref: { out: Tensor; lse: Tensor },
  what: string,
  tol = 1e-6,
  lseTol = 1e-5,
) {
  assert.ok(!got.out.data.some(Number.isNaN), `${what}: NaN in output`);
  const err = metrics.relL1(got.out, ref.out);
  assert.ok(err < tol, `${what}: relative L1 ${err}`);
  for (let i = 0; i < ref.lse.size; i++) {
    const [a, e] = [got.lse.data[i], ref.lse.data[i]];
    if (e === -Infinity) assert.equal(a, -Infinity, `${what}: lse[${i}] must be -inf (row sees no key)`);
    else
      assert.ok(
        Math.abs(a - e) <= Math.max(lseTol * Math.max(1, Math.abs(e)), Math.abs(e) * 2 ** -22),
        `${what}: lse[${i}] ${a} vs ${e}`,
      );
  }
}
