/**
 * SVG's online profiling on WebGPU (svg-profile.ts on the GPU; sparse_attention.md §2.2 step 2, §4:
 * "a t×N matmul plus masked softmaxes over the same logits"): for each sampled row and head, three
 * softmaxes over all keys (full, spatial mask, temporal mask), each with its own running max so a
 * masked softmax never divides by an underflowed sum, and the squared error of each masked output
 * against the full one. Two kernels do that:
 *
 * - 'split': the keys are split into up to 16 chunks and a workgroup takes 8 sampled rows × one chunk
 *   of one head, 32 keys at a time: each invocation computes one (row, key) logit, the tile's maxima and
 *   weights are formed once per (row, key), and each invocation then accumulates the three weighted
 *   sums of V for its row on D/32 channels. Each chunk writes its three partial states (max, sum,
 *   unnormalised output); a merge kernel per (row, head) combines them (the flash-decoding merge:
 *   rescale every chunk to the common max) and forms the errors. Work per workgroup is bounded, so the
 *   profiling spreads over the whole GPU (t/8 · chunks · B·H workgroups). Every row reads K and V from
 *   storage itself, one element per load, K strided across the lanes.
 * - 'staged' (the default where it fits): the same work split, arithmetic order and merge, with each
 *   32-key tile of K and V loaded once per workgroup into workgroup memory, coalesced, and the logits
 *   formed from vec4 words. (A first, 'per-row' kernel — one workgroup per sampled row and head walking
 *   all N keys — was removed after its A/B benchmark, BENCHMARKS.md.)
 *
 * A kinds kernel sums a head's errors and picks its kind (temporal iff its error is strictly smaller,
 * as the CPU's argmin), and a third writes the gather permutation from the kinds — so the whole SVG
 * call stays on the GPU with no read-back.
 *
 * float32 throughout (the CPU profile is float64): the kinds agree except for heads whose two MSEs are
 * within float32 rounding of each other.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import { floatArrayElement, floatLoaderWgsl, recordDispatch, uniformBuffer } from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor, upload } from '../../gpu/gpu-tensor.js';
import { layoutStrides } from '../flash-params.js';
import type { AttentionProblem } from '../options.js';
import type { SvgGeometry } from './svg-layout.js';

const WG = 64;

const PARAMS = `struct U { sets: u32, n: u32, heads: u32, tokenStride: u32, headStride: u32, batchStride: u32, rows: u32, nkb: u32,
  blockQ: u32, blockK: u32, prefix: u32, frames: u32, tpf: u32, d: u32, smScale: f32, kpc: u32 }
@group(0) @binding(0) var<uniform> P: U;
fn temporalAt(o: u32) -> u32 {
  if (o < P.prefix) { return o; }
  let u = o - P.prefix;
  let f = u / P.tpf;
  return P.prefix + (u - f * P.tpf) * P.frames + f;
}`;

/** Sampled rows per workgroup, keys per tile and the most key chunks of the split kernel. */
const SPLIT_ROWS = 8;
const SPLIT_KEYS = 32;
const MAX_CHUNKS = 16;

/** Keys per chunk of the split kernel: N over at most 16 chunks, in whole 32-key tiles. */
export function svgProfileKeysPerChunk(n: number): number {
  return Math.max(SPLIT_KEYS, Math.ceil(Math.ceil(n / MAX_CHUNKS) / SPLIT_KEYS) * SPLIT_KEYS);
}

/** Bindings of the split and staged kernels: q, k, v, the sampled rows, the kept tiles, the partial states. */
const CHUNK_BINDINGS = (
  input: 'f16' | 'f32',
) => `@group(0) @binding(1) var<storage, read> Q: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> K: array<${floatArrayElement(input)}>;
@group(0) @binding(3) var<storage, read> V: array<${floatArrayElement(input)}>;
@group(0) @binding(4) var<storage, read> Rows: array<u32>;
@group(0) @binding(5) var<storage, read> Tiles: array<u32>;
@group(0) @binding(6) var<storage, read_write> Part: array<f32>;`;

/** Per-tile logits, keep flags and the three weights of the split and staged kernels, and `base`. */
const CHUNK_TILE_DECLS = `var<workgroup> logit: array<f32, ${SPLIT_ROWS * SPLIT_KEYS}>;
var<workgroup> keep: array<u32, ${SPLIT_ROWS * SPLIT_KEYS}>;
var<workgroup> wf: array<f32, ${SPLIT_ROWS * SPLIT_KEYS}>;
var<workgroup> ws: array<f32, ${SPLIT_ROWS * SPLIT_KEYS}>;
var<workgroup> wt: array<f32, ${SPLIT_ROWS * SPLIT_KEYS}>;
fn base(s: u32, j: u32) -> u32 { return (s / P.heads) * P.batchStride + (s % P.heads) * P.headStride + j * P.tokenStride; }`;

/**
 * The entry point of the split and staged kernels up to the key loop: the invocation's (row, lane),
 * the workgroup's sampled Q rows staged (`storeQ` stores channel value `x` of element e), the row's
 * tile rows in both orders, the running states and the chunk's key range [k0, k1).
 */
function chunkPrologueWgsl(D: number, storeQ: string): string {
  const R = SPLIT_ROWS;
  const KT = SPLIT_KEYS;
  const cpl = Math.ceil(D / KT);
  return `@compute @workgroup_size(${R * KT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let chunk = wid.x;
  let s = wid.z;
  let r = t / ${KT}u;
  let lane = t % ${KT}u;
  let rowIdx = wid.y * ${R}u + r;
  let validRow = rowIdx < P.rows;
  let i = Rows[min(rowIdx, P.rows - 1u)];
  for (var e = t; e < ${R * D}u; e += ${R * KT}u) {
    let rr = e / ${D}u;
    let x = ldq(base(s, Rows[min(wid.y * ${R}u + rr, P.rows - 1u)]) + e % ${D}u);
    ${storeQ}
  }
  let rowS = (i / P.blockQ) * P.nkb;
  let rowT = (temporalAt(i) / P.blockQ) * P.nkb;
  var m = array<f32, 3>(-1e30, -1e30, -1e30);
  var l = array<f32, 3>(0.0, 0.0, 0.0);
  var acc: array<f32, ${3 * cpl}>;
  for (var e = 0u; e < ${3 * cpl}u; e++) { acc[e] = 0.0; }
  let k0 = chunk * P.kpc;
  let k1 = min(P.n, k0 + P.kpc);`;
}

/**
 * The split kernel (module comment): invocation t is (row r = t / 32, lane = t % 32); the lane is a
 * key of the tile when forming logits and weights, and a channel group (lane + 32·m) when summing V.
 * Part[((s·rows + row)·chunks + chunk)·3 + kind] holds (max, sum, output[D]) of that chunk.
 */
function splitWgsl(input: 'f16' | 'f32', D: number): string {
  const R = SPLIT_ROWS;
  const KT = SPLIT_KEYS;
  return /* wgsl */ `${PARAMS}
${CHUNK_BINDINGS(input)}
${floatLoaderWgsl('ldq', 'Q', input)}
${floatLoaderWgsl('ldk', 'K', input)}
${floatLoaderWgsl('ldv', 'V', input)}
var<workgroup> qrows: array<f32, ${R * D}>;
${CHUNK_TILE_DECLS}
${chunkPrologueWgsl(D, 'qrows[e] = x;')}
  for (var j0 = k0; j0 < k1; j0 += ${KT}u) {
    workgroupBarrier();
    let j = j0 + lane;
    var x = -1e30;
    var kk = 0u;
    if (j < k1) {
      var dot = 0.0;
      let kb = base(s, j);
      for (var c = 0u; c < ${D}u; c++) { dot += qrows[r * ${D}u + c] * ldk(kb + c); }
      x = P.smScale * dot;
      kk = 1u | (Tiles[rowS + j / P.blockK] << 1u) | (Tiles[rowT + temporalAt(j) / P.blockK] << 2u);
    }
    logit[t] = x;
    keep[t] = kk;
    workgroupBarrier();
${tileSoftmaxTailWgsl(D, 'let vv = ldv(base(s, j0 + u) + c);')}}`;
}

/**
 * The part of a tile the split and staged kernels share: the row's three tile maxima (every lane of
 * the row computes the same values), the rescale, the three weights per (row, key), the weighted sums
 * of V on the lane's channels (`vLoad` defines `vv` for key j0 + u, channel c), and after the key loop
 * the chunk's partial states. Expects x, kk, m, l, acc, r, lane, j0, k1, s, rowIdx, chunk, validRow.
 */
function tileSoftmaxTailWgsl(D: number, vLoad: string): string {
  const KT = SPLIT_KEYS;
  const cpl = Math.ceil(D / KT);
  return /* wgsl */ `    var tm = array<f32, 3>(-1e30, -1e30, -1e30);
    for (var u = 0u; u < ${KT}u; u++) {
      let xu = logit[r * ${KT}u + u];
      let ku = keep[r * ${KT}u + u];
      if ((ku & 1u) != 0u) { tm[0] = max(tm[0], xu); }
      if ((ku & 2u) != 0u) { tm[1] = max(tm[1], xu); }
      if ((ku & 4u) != 0u) { tm[2] = max(tm[2], xu); }
    }
    var sc = array<f32, 3>(1.0, 1.0, 1.0);
    for (var k = 0u; k < 3u; k++) {
      let mn = max(m[k], tm[k]);
      sc[k] = exp(m[k] - mn);
      m[k] = mn;
    }
    wf[t] = select(0.0, exp(x - m[0]), (kk & 1u) != 0u);
    ws[t] = select(0.0, exp(x - m[1]), (kk & 2u) != 0u);
    wt[t] = select(0.0, exp(x - m[2]), (kk & 4u) != 0u);
    workgroupBarrier();
    for (var k = 0u; k < 3u; k++) {
      l[k] *= sc[k];
      for (var cc = 0u; cc < ${cpl}u; cc++) { acc[k * ${cpl}u + cc] *= sc[k]; }
    }
    let cnt = min(${KT}u, k1 - j0);
    for (var u = 0u; u < cnt; u++) {
      let pf = wf[r * ${KT}u + u];
      let ps = ws[r * ${KT}u + u];
      let pt = wt[r * ${KT}u + u];
      l[0] += pf;
      l[1] += ps;
      l[2] += pt;
      for (var cc = 0u; cc < ${cpl}u; cc++) {
        let c = lane + cc * ${KT}u;
        if (c < ${D}u) {
          ${vLoad}
          acc[cc] += pf * vv;
          acc[${cpl}u + cc] += ps * vv;
          acc[${2 * cpl}u + cc] += pt * vv;
        }
      }
    }
  }
  if (validRow) {
    let chunks = (P.n + P.kpc - 1u) / P.kpc;
    for (var k = 0u; k < 3u; k++) {
      let o = (((s * P.rows + rowIdx) * chunks + chunk) * 3u + k) * ${D + 2}u;
      if (lane == 0u) { Part[o] = m[k]; Part[o + 1u] = l[k]; }
      for (var cc = 0u; cc < ${cpl}u; cc++) {
        let c = lane + cc * ${KT}u;
        if (c < ${D}u) { Part[o + 2u + c] = acc[k * ${cpl}u + cc]; }
      }
    }
  }
`;
}

/**
 * Whether the staged kernel fits this head dim and device: channels in whole vec4 words (D a multiple
 * of 8 for float16, of 4 for float32) and its K and V tiles within the workgroup memory limit.
 */
export function svgProfileStagedFits(input: 'f16' | 'f32', D: number, workgroupBytes: number): boolean {
  const perWord = input === 'f16' ? 2 : 1;
  if (D % (4 * perWord) !== 0) return false;
  return stagedWorkgroupBytes(input, D) <= workgroupBytes;
}

function stagedWorkgroupBytes(input: 'f16' | 'f32', D: number): number {
  const words = D / (input === 'f16' ? 2 : 1);
  const kt = SPLIT_KEYS * (words / 4 + 1) * 16;
  const vt = SPLIT_KEYS * words * 4;
  return kt + vt + SPLIT_ROWS * D * 4 + 5 * SPLIT_ROWS * SPLIT_KEYS * 4;
}

/**
 * The staged kernel: the split kernel's work split and arithmetic order, with each 32-key tile of K
 * and V loaded once per workgroup into workgroup memory (coalesced, as raw words: two float16 channels
 * or one float32 per u32) instead of by every row from storage. Logits read K as vec4 words from rows
 * padded by one vec4 (no bank conflicts between the 32 keys); the V sums read V by channel. Same
 * partial-state layout as the split kernel, so the same merge.
 */
function stagedWgsl(input: 'f16' | 'f32', D: number): string {
  const R = SPLIT_ROWS;
  const KT = SPLIT_KEYS;
  const f16 = input === 'f16';
  const words = D / (f16 ? 2 : 1); // u32 words per key
  const kStride = words / 4 + 1; // vec4 words per staged key row
  const chPerVec = f16 ? 8 : 4;
  const dotBody = f16
    ? `let a = unpack2x16float(w.x); let b = unpack2x16float(w.y); let c = unpack2x16float(w.z); let d = unpack2x16float(w.w);
      sdot += dot(qv[q0], vec4<f32>(a, b)) + dot(qv[q0 + 1u], vec4<f32>(c, d));`
    : `sdot += dot(qv[q0], bitcast<vec4<f32>>(w));`;
  const vLoad = f16
    ? `let vw = unpack2x16float(vt[u * ${words}u + (c >> 1u)]); let vv = select(vw.x, vw.y, (c & 1u) == 1u);`
    : `let vv = bitcast<f32>(vt[u * ${words}u + c]);`;
  return /* wgsl */ `${PARAMS}
${CHUNK_BINDINGS(input)}
${floatLoaderWgsl('ldq', 'Q', input)}
var<workgroup> qv: array<vec4<f32>, ${(R * D) / 4}>;
var<workgroup> kt: array<vec4<u32>, ${KT * kStride}>;
var<workgroup> vt: array<u32, ${KT * words}>;
${CHUNK_TILE_DECLS}
// word w of key j's channels (two float16 or one float32 per word); the channels of a token are contiguous
fn wordBase(s: u32, j: u32) -> u32 { return base(s, j) / ${f16 ? 2 : 1}u; }
${chunkPrologueWgsl(D, 'qv[e / 4u][e % 4u] = x;')}
  for (var j0 = k0; j0 < k1; j0 += ${KT}u) {
    workgroupBarrier();
    // stage the tile's K and V words (keys past the chunk as zeros)
    for (var e = t; e < ${KT * words}u; e += ${R * KT}u) {
      let jj = e / ${words}u;
      let w = e % ${words}u;
      var kw = 0u;
      var vw = 0u;
      if (j0 + jj < k1) {
        let src = wordBase(s, j0 + jj) + w;
        kw = ${f16 ? 'K[src]' : 'bitcast<u32>(K[src])'};
        vw = ${f16 ? 'V[src]' : 'bitcast<u32>(V[src])'};
      }
      kt[jj * ${kStride}u + w / 4u][w % 4u] = kw;
      vt[e] = vw;
    }
    workgroupBarrier();
    let j = j0 + lane;
    var x = -1e30;
    var kk = 0u;
    if (j < k1) {
      var sdot = 0.0;
      for (var c4 = 0u; c4 < ${words / 4}u; c4++) {
        let w = kt[lane * ${kStride}u + c4];
        let q0 = (r * ${D}u + c4 * ${chPerVec}u) / 4u;
        ${dotBody}
      }
      x = P.smScale * sdot;
      kk = 1u | (Tiles[rowS + j / P.blockK] << 1u) | (Tiles[rowT + temporalAt(j) / P.blockK] << 2u);
    }
    logit[t] = x;
    keep[t] = kk;
    workgroupBarrier();
${tileSoftmaxTailWgsl(D, vLoad)}}`;
}

/** Merges a (row, head)'s chunk states into the three outputs and writes the two squared errors. */
function mergeWgsl(D: number): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Part: array<f32>;
@group(0) @binding(2) var<storage, read_write> Err: array<f32>;
var<workgroup> errs: array<f32, ${2 * WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wid.x;
  let s = wid.y;
  let chunks = (P.n + P.kpc - 1u) / P.kpc;
  let first = (s * P.rows + row) * chunks * 3u;
  var mx = array<f32, 3>(-1e30, -1e30, -1e30);
  var sum = array<f32, 3>(0.0, 0.0, 0.0);
  for (var k = 0u; k < 3u; k++) {
    for (var c = 0u; c < chunks; c++) { mx[k] = max(mx[k], Part[(first + c * 3u + k) * ${D + 2}u]); }
    for (var c = 0u; c < chunks; c++) {
      let o = (first + c * 3u + k) * ${D + 2}u;
      sum[k] += Part[o + 1u] * exp(Part[o] - mx[k]);
    }
  }
  var es = 0.0;
  var et = 0.0;
  for (var ch = t; ch < ${D}u; ch += ${WG}u) {
    var out = array<f32, 3>(0.0, 0.0, 0.0);
    for (var k = 0u; k < 3u; k++) {
      for (var c = 0u; c < chunks; c++) {
        let o = (first + c * 3u + k) * ${D + 2}u;
        out[k] += Part[o + 2u + ch] * exp(Part[o] - mx[k]);
      }
    }
    let ofull = out[0] / sum[0];
    let os = select(0.0, out[1] / sum[1], sum[1] > 0.0);
    let ot = select(0.0, out[2] / sum[2], sum[2] > 0.0);
    es += (os - ofull) * (os - ofull);
    et += (ot - ofull) * (ot - ofull);
  }
  errs[t] = es;
  errs[${WG}u + t] = et;
  workgroupBarrier();
  if (t == 0u) {
    var a = 0.0;
    var b = 0.0;
    for (var u = 0u; u < ${WG}u; u++) { a += errs[u]; b += errs[${WG}u + u]; }
    Err[(s * P.rows + row) * 2u] = a;
    Err[(s * P.rows + row) * 2u + 1u] = b;
  }
}`;
}

const KINDS_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Err: array<f32>;
@group(0) @binding(2) var<storage, read_write> Kinds: array<u32>;
@group(0) @binding(3) var<storage, read_write> Mse: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  if (s >= P.sets) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var r = 0u; r < P.rows; r++) { a += Err[(s * P.rows + r) * 2u]; b += Err[(s * P.rows + r) * 2u + 1u]; }
  let count = f32(max(P.rows * P.d, 1u));
  Mse[2u * s] = a / count;
  Mse[2u * s + 1u] = b / count;
  Kinds[s] = select(0u, 1u, b < a);
}`;

const PERM_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Kinds: array<u32>;
@group(0) @binding(2) var<storage, read_write> Perm: array<u32>;
fn temporalOriginal(r: u32) -> u32 {
  if (r < P.prefix) { return r; }
  let u = r - P.prefix;
  let p = u / P.frames;
  return P.prefix + (u - p * P.frames) * P.tpf + p;
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= P.sets * P.n) { return; }
  let s = e / P.n;
  let r = e % P.n;
  Perm[e] = select(r, temporalOriginal(r), Kinds[s] == 1u);
}`;

export interface SvgProfileGpuOptions {
  /**
   * Which profiling kernel (module comment): 'staged' (the default where it fits:
   * svgProfileStagedFits) or 'split'.
   */
  kernel?: 'staged' | 'split';
}

export interface SvgProfileGpu {
  /** Per (b, h): 0 spatial, 1 temporal. */
  kinds: GpuTensor<'int32'>;
  /** Per (b, h): [spatial MSE, temporal MSE]. */
  mse: GpuTensor<'float32'>;
  /** The gather permutation, B·H·N entries. */
  perm: GpuTensor<'int32'>;
  release: () => void;
}

/**
 * Records the profiling of q, k, v (GPU tensors of `problem`) on the sampled rows against the kept-tile
 * mask `tiles` (svg-layout.ts `fixedTileMask`, kernel order), the kind choice and the permutation.
 */
export function recordSvgProfileGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  problem: AttentionProblem,
  g: SvgGeometry,
  tiles: Uint8Array,
  blockQ: number,
  blockK: number,
  rows: Int32Array,
  pass: GPUComputePassEncoder,
  opts: SvgProfileGpuOptions = {},
): SvgProfileGpu {
  if (opts.kernel !== undefined && opts.kernel !== 'split' && opts.kernel !== 'staged') {
    throw new UnsupportedOptionError(
      `the profiling kernel must be 'staged' or 'split'; got ${String(opts.kernel)}`,
    );
  }
  if (q.dtype !== 'float32' && q.dtype !== 'float16') {
    throw new UnsupportedOptionError(`GPU SVG profiling takes float32 or float16 tensors; got ${q.dtype}`);
  }
  const rt = q.runtime;
  const input = q.dtype === 'float16' ? 'f16' : 'f32';
  const fits = svgProfileStagedFits(input, problem.headDim, rt.caps.limits.maxComputeWorkgroupStorageSize);
  if (opts.kernel === 'staged' && !fits) {
    throw new UnsupportedOptionError(
      `the staged profiling kernel needs a head dim that is a multiple of ${input === 'f16' ? 8 : 4} and fits ${rt.caps.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory; use kernel 'split'`,
    );
  }
  const kernel = opts.kernel ?? (fits ? 'staged' : 'split');
  const { batch, headsQ: heads, tokensQ: n, headDim: d } = problem;
  const sets = batch * heads;
  const st = layoutStrides(problem.layout, heads, n, d);
  const words = new Uint32Array(16);
  words.set([sets, n, heads, st.token, st.head, st.batch, rows.length, Math.ceil(n / blockK)]);
  const kpc = svgProfileKeysPerChunk(n);
  words.set([blockQ, blockK, g.prefixTokens, g.frames, g.tokensPerFrame, d, 0, kpc], 8);
  new Float32Array(words.buffer, 14 * 4, 1)[0] = problem.smScale;
  const params = uniformBuffer(rt, words.buffer, 'svg profile params');
  const rowsGpu = upload(rt, new Tensor(Int32Array.from(rows), [rows.length], 'int32'), 'svg profile rows');
  const tilesGpu = upload(rt, new Tensor(Int32Array.from(tiles), [tiles.length], 'int32'), 'svg tiles');
  const err = emptyGpu(rt, [sets, rows.length, 2], 'float32', 'svg profile errors');
  const kinds = emptyGpu(rt, [sets], 'int32', 'svg head kinds');
  const mse = emptyGpu(rt, [sets, 2], 'float32', 'svg profile mse');
  const perm = emptyGpu(rt, [sets * n], 'int32', 'svg permutation');
  const chunks = Math.ceil(n / kpc);
  const part = emptyGpu(rt, [sets, rows.length, chunks, 3, d + 2], 'float32', 'svg profile partials');
  recordDispatch(
    rt,
    pass,
    kernel === 'staged' ? stagedWgsl(input, d) : splitWgsl(input, d),
    [params, q.buffer, k.buffer, v.buffer, rowsGpu.buffer, tilesGpu.buffer, part.buffer],
    [chunks, Math.ceil(rows.length / SPLIT_ROWS), sets],
  );
  recordDispatch(rt, pass, mergeWgsl(d), [params, part.buffer, err.buffer], [rows.length, sets, 1]);
  recordDispatch(rt, pass, KINDS_WGSL, [params, err.buffer, kinds.buffer, mse.buffer], Math.ceil(sets / 64));
  recordDispatch(rt, pass, PERM_WGSL, [params, kinds.buffer, perm.buffer], Math.ceil((sets * n) / 256));
  return {
    kinds,
    mse,
    perm,
    release: () => {
      params.destroy();
      rowsGpu.destroy();
      tilesGpu.destroy();
      err.destroy();
      part.destroy();
    },
  };
}
