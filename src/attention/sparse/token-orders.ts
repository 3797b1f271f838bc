/**
 * Token orders for video tokens on an F × H × W grid (frames, height, width), stored frame-major
 * (n = f·H·W + y·W + x, how every model here flattens video; sparse_attention.md notation). SpargeAttn's
 * block prediction works only if the tokens of a block are alike in the order they are stored (§1.5,
 * §5), so it may run on reordered tokens: the same permutation for Q, K and V and its inverse on O
 * (and the LSE). In joint text + video sequences only the video tokens move (`prefix` text tokens
 * before them stay in place, as in CogVideoX).
 *
 * - row-major: the stored order itself (identity);
 * - time-major: (y, x, f) order, n′ = (y·W + x)·F + f — one spatial position across all frames is
 *   contiguous (SVG's token-major layout, §2.2 step 3);
 * - 3-D Hilbert: a Hilbert curve through the grid (§1.5, SpargeAttn paper §3.7), see hilbertOrder3d;
 * - random: a seeded shuffle, the order under which SpargeAttn must degrade towards dense (§1.5 Table 9).
 *
 * `perm[r]` is the grid token stored at position r of the new order; `inverse[n]` is the new position
 * of grid token n.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { convertLayout, type Layout } from '../../core/layout.js';
import { Rng } from '../../core/rng.js';
import { Tensor, formatShape } from '../../core/tensor.js';
import { gatherTokens, scatterTokens } from './permute.js';

export type TokenOrderName = 'row-major' | 'time-major' | 'hilbert' | 'random';

export interface TokenOrder {
  readonly name: TokenOrderName;
  /** [frames, height, width]. */
  readonly grid: readonly [number, number, number];
  /** perm[r] = grid token at new position r. */
  readonly perm: Int32Array;
  /** inverse[n] = new position of grid token n. */
  readonly inverse: Int32Array;
}

function checkGrid(frames: number, height: number, width: number): void {
  for (const [name, v] of [
    ['frames', frames],
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new UnsupportedOptionError(`${name} must be a positive integer; got ${String(v)}`);
    }
  }
}

function order(name: TokenOrderName, grid: [number, number, number], perm: Int32Array): TokenOrder {
  const inverse = new Int32Array(perm.length);
  for (let r = 0; r < perm.length; r++) inverse[perm[r]] = r;
  return { name, grid, perm, inverse };
}

/** The stored frame-major order (identity). */
export function rowMajorOrder(frames: number, height: number, width: number): TokenOrder {
  checkGrid(frames, height, width);
  const n = frames * height * width;
  return order(
    'row-major',
    [frames, height, width],
    Int32Array.from({ length: n }, (_, i) => i),
  );
}

/** Time-major: position (y·W + x)·F + f holds grid token f·H·W + y·W + x. */
export function timeMajorOrder(frames: number, height: number, width: number): TokenOrder {
  checkGrid(frames, height, width);
  const l = height * width;
  const perm = new Int32Array(frames * l);
  for (let p = 0; p < l; p++) for (let f = 0; f < frames; f++) perm[p * frames + f] = f * l + p;
  return order('time-major', [frames, height, width], perm);
}

/** A seeded uniform shuffle (Fisher–Yates on the Philox stream). */
export function randomOrder(frames: number, height: number, width: number, seed: number): TokenOrder {
  checkGrid(frames, height, width);
  const n = frames * height * width;
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const u = new Float64Array(n);
  Rng.fromSeed(seed).fillUniform(u, 0, 1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(u[i] * (i + 1)));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return order('random', [frames, height, width], perm);
}

/**
 * The Hilbert index of cell (a0, a1, a2) of a 2^bits cube: Skilling's transform of the axes to the
 * transposed Hilbert index ("Programming the Hilbert curve", AIP Conf. Proc. 707, 2004), whose bits,
 * read most significant first and axis by axis, are the index. Consecutive indices are face
 * neighbours (the defining property of the Hilbert curve).
 */
export function hilbertIndex3d(a0: number, a1: number, a2: number, bits: number): number {
  const x = [a0, a1, a2];
  const top = 1 << (bits - 1);
  // undo the excess work of the recursive construction: per bit plane, invert or exchange low bits
  for (let q = top; q > 1; q >>= 1) {
    const p = q - 1;
    for (let i = 0; i < 3; i++) {
      if (x[i] & q) {
        x[0] ^= p;
      } else {
        const t = (x[0] ^ x[i]) & p;
        x[0] ^= t;
        x[i] ^= t;
      }
    }
  }
  // Gray encode
  for (let i = 1; i < 3; i++) x[i] ^= x[i - 1];
  let t = 0;
  for (let q = top; q > 1; q >>= 1) if (x[2] & q) t ^= q - 1;
  for (let i = 0; i < 3; i++) x[i] ^= t;
  let h = 0;
  for (let b = bits - 1; b >= 0; b--) for (let i = 0; i < 3; i++) h = h * 2 + ((x[i] >> b) & 1);
  return h;
}

/**
 * A 3-D Hilbert curve through the F × H × W grid (axes in that order). When F = H = W is a power of
 * two this is exactly the Hilbert curve: every step moves to a face neighbour. Other sizes use the
 * Hilbert curve of the smallest enclosing power-of-two cube restricted to the grid (cells visited in
 * the cube curve's order, cells outside skipped): inside every sub-cube of the recursion that lies
 * wholly in the grid the steps are still between neighbours, and the curve jumps only where the
 * cube's curve leaves the grid and comes back (hilbertJumps counts them; e.g. an 8 × 32 × 32 grid in
 * its 32-cube has at most 15, between its 16 whole 8-cubes).
 */
export function hilbertOrder3d(frames: number, height: number, width: number): TokenOrder {
  checkGrid(frames, height, width);
  const side = Math.max(frames, height, width);
  const bits = Math.max(1, Math.ceil(Math.log2(side)));
  if (3 * bits > 52) throw new UnsupportedOptionError(`grid side ${side} is too large for a Hilbert index`);
  const n = frames * height * width;
  const keys = new Float64Array(n);
  for (let f = 0; f < frames; f++)
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) keys[(f * height + y) * width + x] = hilbertIndex3d(f, y, x, bits);
  const perm = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a] - keys[b]);
  return order('hilbert', [frames, height, width], perm);
}

/** Steps of an order between tokens that are not face neighbours on its grid. */
export function hilbertJumps(o: TokenOrder): number {
  const [, height, width] = o.grid;
  const coord = (n: number) => [Math.floor(n / (height * width)), Math.floor(n / width) % height, n % width];
  let jumps = 0;
  for (let r = 1; r < o.perm.length; r++) {
    const a = coord(o.perm[r - 1]);
    const b = coord(o.perm[r]);
    if (Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]) !== 1) jumps++;
  }
  return jumps;
}

export interface TokenOrderApply {
  /** Tensor layout ('HND' default, or 'NHD'). */
  layout?: Layout;
  /** Tokens before the video grid that keep their place (text tokens; default 0). */
  prefix?: number;
}

/**
 * x with its video tokens in the order's sequence: position prefix + r holds token prefix + perm[r].
 * x is [B, H, N, D] (or NHD) with N ≥ prefix + F·H·W; tokens after the grid stay in place.
 */
export function applyTokenOrder<T extends Tensor>(x: T, o: TokenOrder, opts: TokenOrderApply = {}): T {
  return permuteWith(x, o, opts, gatherTokens);
}

/** The inverse of applyTokenOrder (for the output O of attention on reordered tokens). */
export function restoreTokenOrder<T extends Tensor>(x: T, o: TokenOrder, opts: TokenOrderApply = {}): T {
  return permuteWith(x, o, opts, scatterTokens);
}

/** restoreTokenOrder for an LSE [B, H, N]. */
export function restoreTokenOrderLse<T extends Tensor>(lse: T, o: TokenOrder, prefix = 0): T {
  if (lse.rank !== 3) throw new ShapeError(`an LSE is [B, H, N]; got ${formatShape(lse.shape)}`);
  const [b, h, n] = lse.shape;
  const out = restoreTokenOrder(lse.reshape([b, h, n, 1]) as T, o, { prefix });
  return out.reshape([b, h, n]) as T;
}

function permuteWith<T extends Tensor>(
  x: T,
  o: TokenOrder,
  opts: TokenOrderApply,
  move: (x: Tensor, perm: Int32Array) => Tensor,
): T {
  const layout = opts.layout ?? 'HND';
  const prefix = opts.prefix ?? 0;
  if (x.rank !== 4)
    throw new ShapeError(`token orders apply to [B, H, N, D] tensors; got ${formatShape(x.shape)}`);
  const hnd = convertLayout(x, layout, 'HND');
  const [b, h, n] = hnd.shape;
  if (!Number.isSafeInteger(prefix) || prefix < 0 || prefix + o.perm.length > n) {
    throw new ShapeError(
      `the order covers ${o.perm.length} grid tokens after ${prefix} prefix tokens; the tensor has only ${n} tokens (${formatShape(x.shape)}, layout '${layout}')`,
    );
  }
  const perm = new Int32Array(b * h * n);
  for (let s = 0; s < b * h; s++) {
    for (let r = 0; r < n; r++) {
      const g = r - prefix;
      perm[s * n + r] = g >= 0 && g < o.perm.length ? prefix + o.perm[g] : r;
    }
  }
  return convertLayout(move(hnd, perm), 'HND', layout) as T;
}
