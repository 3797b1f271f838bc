/**
 * SVG's online profiling (sparse_attention.md §2.2 step 2, `attention.py::sample_mse`): for t sampled
 * query rows, exact attention against all keys (O_full) and attention restricted to the spatial and to
 * the temporal mask (O_m, logits outside the mask set to −∞); MSE_m = mean over rows and channels of
 * (O_m − O_full)²; each head takes the mask with the smaller MSE (ties → spatial, as torch.argmin takes
 * the first). One score row per sampled query is reused for the three softmaxes, so the cost is about
 * 4·t·N·D multiply-adds per head.
 *
 * Rows are drawn uniformly with replacement from [0, min(sampleMaxRow, N)) — the reference's
 * `torch.randint(0, sample_mse_max_row, (t,))` — by a seeded RNG, one set of rows for all heads, as in
 * the reference. t = min(sampledRows, N).
 *
 * One deliberate difference: the reference profiles with fixed masks (a 2-frame block band, §2.2 step 1)
 * that differ from the band it then executes; we profile with the executed tile masks themselves, so
 * the MSE judges exactly what will run. Computed in float64. A NaN reaching a sampled row makes that
 * head's MSEs NaN and the head spatial (argmin of NaN keeps the first entry).
 */
import { Rng, type Seed } from '../../core/rng.js';
import { type SvgGeometry, type SvgHeadKind, temporalKernelIndex } from './svg-layout.js';

export interface SvgProfile {
  /** The sampled query rows (original token indices). */
  readonly rows: Int32Array;
  /** Per (b, h): the chosen mask. */
  readonly headKinds: SvgHeadKind[];
  /** Per (b, h): the MSE of each mask against full attention on the sampled rows. */
  readonly mse: { spatial: number; temporal: number }[];
}

export interface SvgProfileInput {
  /** Q, K, V in float64, HND [B·H, N, D] flattened. */
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  readonly heads: number;
  readonly tokens: number;
  readonly headDim: number;
  readonly smScale: number;
  readonly geometry: SvgGeometry;
  /** The kept-tile mask in kernel order, [⌈N/blockQ⌉ × ⌈N/blockK⌉] (svg-layout.ts `fixedTileMask`). */
  readonly tiles: Uint8Array;
  readonly blockQ: number;
  readonly blockK: number;
}

/** The sampled rows: t = min(sampledRows, N) uniform draws with replacement from [0, min(maxRow, N)). */
export function svgSampleRows(
  tokens: number,
  sampledRows: number,
  sampleMaxRow: number,
  seed: Seed,
): Int32Array {
  const t = Math.min(sampledRows, tokens);
  const high = Math.min(sampleMaxRow, tokens);
  const rng = Rng.fromSeed(seed);
  const rows = new Int32Array(t);
  for (let r = 0; r < t; r++) rows[r] = Math.min(high - 1, Math.floor(rng.uniform() * high));
  return rows;
}

/** Per head and sampled row, the three outputs and the two squared errors (module comment). */
export function svgProfile(input: SvgProfileInput, rows: Int32Array): SvgProfile {
  const { q, k, v, heads, tokens: n, headDim: d, smScale, geometry: g, tiles, blockQ, blockK } = input;
  const nkb = Math.ceil(n / blockK);
  // kernel position of every original token under each kind; spatial is the identity
  const temporalAt = new Int32Array(n);
  for (let o = 0; o < n; o++) temporalAt[o] = temporalKernelIndex(o, g);
  const logits = new Float64Array(n);
  const full = new Float64Array(d);
  const masked = [new Float64Array(d), new Float64Array(d)];
  const keep = [new Uint8Array(n), new Uint8Array(n)];
  const headKinds: SvgHeadKind[] = [];
  const mse: { spatial: number; temporal: number }[] = [];
  for (let s = 0; s < heads; s++) {
    const base = s * n * d;
    const err = [0, 0];
    for (const i of rows) {
      // each softmax subtracts its own max, so a masked row whose logits are all far below the full
      // row's max still normalises (no 0/0); a row always keeps its own diagonal tile
      const rowTile = [Math.floor(i / blockQ) * nkb, Math.floor(temporalAt[i] / blockQ) * nkb];
      let mFull = -Infinity;
      const mMasked = [-Infinity, -Infinity];
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[base + i * d + c] * k[base + j * d + c];
        const x = smScale * dot;
        logits[j] = x;
        keep[0][j] = tiles[rowTile[0] + Math.floor(j / blockK)];
        keep[1][j] = tiles[rowTile[1] + Math.floor(temporalAt[j] / blockK)];
        mFull = Math.max(mFull, x);
        if (keep[0][j]) mMasked[0] = Math.max(mMasked[0], x);
        if (keep[1][j]) mMasked[1] = Math.max(mMasked[1], x);
      }
      const outFull = rowOutput(logits, null, mFull, v, base, n, d, full);
      for (let kind = 0; kind < 2; kind++) {
        const out = rowOutput(logits, keep[kind], mMasked[kind], v, base, n, d, masked[kind]);
        for (let c = 0; c < d; c++) err[kind] += (out[c] - outFull[c]) ** 2;
      }
    }
    const count = rows.length * d;
    const spatial = count === 0 ? 0 : err[0] / count;
    const temporal = count === 0 ? 0 : err[1] / count;
    mse.push({ spatial, temporal });
    headKinds.push(temporal < spatial ? 'temporal' : 'spatial');
  }
  return { rows, headKinds, mse };
}

/** softmax(logits restricted to `keep`)·V for one row, with max `m` subtracted; zeros when m is −∞. */
function rowOutput(
  logits: Float64Array,
  keep: Uint8Array | null,
  m: number,
  v: Float64Array,
  base: number,
  n: number,
  d: number,
  out: Float64Array,
): Float64Array {
  out.fill(0);
  if (m === -Infinity) return out;
  let sum = 0;
  for (let j = 0; j < n; j++) {
    if (keep && keep[j] === 0) continue;
    const p = Math.exp(logits[j] - m);
    sum += p;
    for (let c = 0; c < d; c++) out[c] += p * v[base + j * d + c];
  }
  for (let c = 0; c < d; c++) out[c] /= sum;
  return out;
}
