/**
 * Token permutations on WebGPU (permute.ts on the GPU; sparse_attention.md §4 "Permutation"): a row
 * gather x′[b, h, r] = x[b, h, perm[r]] and its inverse, the scatter x[b, h, perm[r]] = x′[b, h, r]
 * (a bijection, so no two threads write one row), for [B, H, N, D] tensors in either layout and for
 * [B, H, N] LSE vectors. Rows are copied as 32-bit words, so any dtype whose row is a whole number of
 * words works (float32; float16 with an even D). Also the small kernels that make SVG2's permutation
 * from the k-means sort (prefix tokens first) and SVG's from the per-head kinds, and the gather →
 * kernel → scatter composition both methods run (`permutedAttentionGpu`).
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { bytesPerElement } from '../../core/dtype.js';
import type { Layout } from '../../core/layout.js';
import { recordDispatch, submitComputePass, uniformBuffer } from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import type { AttentionWithLse } from '../options.js';

const WG = 256;

/** Row geometry of a tensor, in 32-bit words. */
interface Rows {
  heads: number;
  tokens: number;
  sets: number;
  words: number;
  token: number;
  head: number;
  batch: number;
}

function rowsOf(x: GpuTensor, layout: Layout | 'lse'): Rows {
  const bytes = bytesPerElement(x.dtype);
  if (layout === 'lse') {
    if (x.shape.length !== 3 || bytes !== 4) {
      throw new ShapeError(
        `an LSE permutation takes a [B, H, N] float32 tensor; got ${x.dtype} [${x.shape.join(', ')}]`,
      );
    }
    const [b, h, n] = x.shape;
    return { heads: h, tokens: n, sets: b * h, words: 1, token: 1, head: n, batch: h * n };
  }
  if (x.shape.length !== 4)
    throw new ShapeError(`token permutations take [B, H, N, D] tensors; got rank ${x.shape.length}`);
  const [b0, a, c0, d] = x.shape;
  const [b, h, n] = layout === 'HND' ? [b0, a, c0] : [b0, c0, a];
  if ((d * bytes) % 4 !== 0) {
    throw new UnsupportedOptionError(
      `GPU token permutations copy 32-bit words; a row of ${d} ${x.dtype} values is ${d * bytes} bytes. Use float32, or an even head dim.`,
    );
  }
  const w = (d * bytes) / 4;
  return layout === 'HND'
    ? { heads: h, tokens: n, sets: b * h, words: w, token: w, head: n * w, batch: h * n * w }
    : { heads: h, tokens: n, sets: b * h, words: w, token: h * w, head: w, batch: n * h * w };
}

function permuteWgsl(inverse: boolean): string {
  const [dst, src] = inverse ? ['Perm[s * P.tokens + r]', 'r'] : ['r', 'Perm[s * P.tokens + r]'];
  return /* wgsl */ `
struct U { sets: u32, tokens: u32, words: u32, heads: u32, token: u32, head: u32, batch: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read> Perm: array<u32>;
@group(0) @binding(3) var<storage, read_write> Out: array<u32>;
fn rowBase(s: u32, r: u32) -> u32 { return (s / P.heads) * P.batch + (s % P.heads) * P.head + r * P.token; }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= P.sets * P.tokens * P.words) { return; }
  let w = e % P.words;
  let row = e / P.words;
  let s = row / P.tokens;
  let r = row % P.tokens;
  Out[rowBase(s, ${dst}) + w] = X[rowBase(s, ${src}) + w];
}`;
}

/**
 * Records the gather (or, with `inverse`, the scatter) of x's token rows by `perm` ([B·H·N] int32, the
 * permute.ts convention) into a new tensor of x's shape, dtype and layout, or into `into` (same shape
 * and dtype; a caller that records many permutations, such as a benchmark, reuses one). `layout: 'lse'`
 * treats x as a [B, H, N] float32 LSE.
 */
export function recordPermuteTokens(
  x: GpuTensor,
  perm: GpuTensor<'int32'>,
  layout: Layout | 'lse',
  inverse: boolean,
  pass: GPUComputePassEncoder,
  into?: GpuTensor,
): { out: GpuTensor; release: () => void } {
  const g = rowsOf(x, layout);
  if (perm.size !== g.sets * g.tokens) {
    throw new ShapeError(`the permutation must have B·H·N = ${g.sets * g.tokens} entries; got ${perm.size}`);
  }
  const rt = x.runtime;
  const params = uniformBuffer(
    rt,
    new Uint32Array([g.sets, g.tokens, g.words, g.heads, g.token, g.head, g.batch, 0]).buffer,
    'permute params',
  );
  if (into && (into.dtype !== x.dtype || into.size !== x.size)) {
    throw new ShapeError(
      `the output must be a ${x.dtype} tensor of ${x.size} elements; got ${into.dtype}, ${into.size}`,
    );
  }
  const out = into ?? emptyGpu(rt, x.shape, x.dtype, inverse ? 'scattered tokens' : 'gathered tokens');
  recordDispatch(
    rt,
    pass,
    permuteWgsl(inverse),
    [params, x.buffer, perm.buffer, out.buffer],
    Math.ceil((g.sets * g.tokens * g.words) / WG),
  );
  return { out, release: () => params.destroy() };
}

const FROM_ORDER_WGSL = /* wgsl */ `
struct U { sets: u32, tokens: u32, prefix: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> Order: array<u32>;
@group(0) @binding(2) var<storage, read_write> Perm: array<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= P.sets * P.tokens) { return; }
  let s = e / P.tokens;
  let r = e % P.tokens;
  if (r < P.prefix) { Perm[e] = r; return; }
  Perm[e] = P.prefix + Order[s * (P.tokens - P.prefix) + r - P.prefix];
}`;

/**
 * SVG2's permutation from a k-means sort of the video tokens ([sets, N − prefix] order, kmeans-gpu.ts):
 * prefix tokens stay first, then the video tokens in label order (svg2-plan.ts's CPU construction).
 */
export function recordPermutationFromOrder(
  order: GpuTensor<'int32'>,
  sets: number,
  tokens: number,
  prefix: number,
  pass: GPUComputePassEncoder,
): { perm: GpuTensor<'int32'>; release: () => void } {
  if (order.size !== sets * (tokens - prefix)) {
    throw new ShapeError(
      `order must have sets·(N − prefix) = ${sets * (tokens - prefix)} entries; got ${order.size}`,
    );
  }
  const rt = order.runtime;
  const params = uniformBuffer(rt, new Uint32Array([sets, tokens, prefix, 0]).buffer, 'permutation params');
  const perm = emptyGpu(rt, [sets * tokens], 'int32', 'token permutation');
  recordDispatch(
    rt,
    pass,
    FROM_ORDER_WGSL,
    [params, order.buffer, perm.buffer],
    Math.ceil((sets * tokens) / WG),
  );
  return { perm, release: () => params.destroy() };
}

/** What a kernel of permuted tensors returns: O, or O with the LSE. */
type PermutedKernelResult = GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>>;

/**
 * The composition SVG and SVG2 share on the GPU (sparse_attention.md §2.2 step 3, §3.2 steps 4–6):
 * gather q by `qPerm` and k, v by `kPerm`, run `kernel` on the permuted tensors, scatter O (and the
 * LSE, when `returnLse`) back by `qPerm`. Frees the permuted copies and the kernel's own outputs; the
 * permutations stay the caller's.
 */
export function permutedAttentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  perms: { q: GpuTensor<'int32'>; k: GpuTensor<'int32'> },
  layout: Layout,
  returnLse: boolean,
  kernel: (q: GpuTensor, k: GpuTensor, v: GpuTensor) => PermutedKernelResult,
): GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>> {
  const rt = q.runtime;
  const releases: (() => void)[] = [];
  const moved: GpuTensor[] = [];
  submitComputePass(rt, (pass) => {
    for (const [x, perm] of [
      [q, perms.q],
      [k, perms.k],
      [v, perms.k],
    ] as const) {
      const g = recordPermuteTokens(x, perm, layout, false, pass);
      moved.push(g.out);
      releases.push(g.release);
    }
  });
  const result = kernel(moved[0], moved[1], moved[2]);
  const [out, lse] = returnLse
    ? [
        (result as AttentionWithLse<GpuTensor<'float32'>>).out,
        (result as AttentionWithLse<GpuTensor<'float32'>>).lse,
      ]
    : [result as GpuTensor<'float32'>, undefined];
  let outBack!: GpuTensor;
  let lseBack: GpuTensor | undefined;
  submitComputePass(rt, (pass) => {
    const o = recordPermuteTokens(out, perms.q, layout, true, pass);
    outBack = o.out;
    releases.push(o.release);
    if (lse) {
      const l = recordPermuteTokens(lse, perms.q, 'lse', true, pass);
      lseBack = l.out;
      releases.push(l.release);
    }
  });
  for (const t of [...moved, out, ...(lse ? [lse] : [])]) t.destroy();
  for (const release of releases) release();
  const outF = outBack as GpuTensor<'float32'>;
  return lseBack ? { out: outF, lse: lseBack as GpuTensor<'float32'> } : outF;
}
