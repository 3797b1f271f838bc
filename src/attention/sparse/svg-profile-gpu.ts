/**
 * SVG's online profiling on WebGPU (svg-profile.ts on the GPU; sparse_attention.md §2.2 step 2, §4:
 * "a t×N matmul plus masked softmaxes over the same logits"): for each sampled row and head, three
 * softmaxes over all keys (full, spatial mask, temporal mask), each with its own running max so a
 * masked softmax never divides by an underflowed sum, and the squared error of each masked output
 * against the full one. Two kernels do that:
 *
 * - 'split' (the default): the keys are split into up to 16 chunks and a workgroup takes 8 sampled
 *   rows × one chunk of one head, 32 keys at a time: each invocation computes one (row, key) logit, the
 *   tile's maxima and weights are formed once per (row, key), and each invocation then accumulates the
 *   three weighted sums of V for its row on D/32 channels (V loads coalesced, and shared through the
 *   cache by the workgroup's 8 rows). Each chunk writes its three partial states (max, sum, unnormalised
 *   output); a merge kernel per (row, head) combines them (the flash-decoding merge: rescale every
 *   chunk to the common max) and forms the errors. Work per workgroup is bounded, so the profiling
 *   spreads over the whole GPU (t/8 · chunks · B·H workgroups).
 * - 'per-row' (the first version, kept for A/B benchmarks): one workgroup per (sampled row, head) that
 *   walks all N keys, 64 at a time, with one invocation forming the maxima serially.
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

function profileWgsl(input: 'f16' | 'f32', D: number): string {
  const cpt = Math.ceil(D / WG);
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Q: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> K: array<${floatArrayElement(input)}>;
@group(0) @binding(3) var<storage, read> V: array<${floatArrayElement(input)}>;
@group(0) @binding(4) var<storage, read> Rows: array<u32>;
@group(0) @binding(5) var<storage, read> Tiles: array<u32>;
@group(0) @binding(6) var<storage, read_write> Err: array<f32>;
${floatLoaderWgsl('ldq', 'Q', input)}
${floatLoaderWgsl('ldk', 'K', input)}
${floatLoaderWgsl('ldv', 'V', input)}
var<workgroup> qrow: array<f32, ${D}>;
var<workgroup> logit: array<f32, ${WG}>;
var<workgroup> keepS: array<u32, ${WG}>;
var<workgroup> keepT: array<u32, ${WG}>;
var<workgroup> tmax: array<f32, 3>;
var<workgroup> errs: array<f32, ${2 * WG}>;
fn base(s: u32, j: u32) -> u32 { return (s / P.heads) * P.batchStride + (s % P.heads) * P.headStride + j * P.tokenStride; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let r = wid.x;
  let s = wid.y;
  let i = Rows[r];
  for (var c = t; c < ${D}u; c += ${WG}u) { qrow[c] = ldq(base(s, i) + c); }
  let rowS = (i / P.blockQ) * P.nkb;
  let rowT = (temporalAt(i) / P.blockQ) * P.nkb;
  var m = array<f32, 3>(-1e30, -1e30, -1e30);
  var l = array<f32, 3>(0.0, 0.0, 0.0);
  var acc: array<f32, ${3 * cpt}>;
  for (var e = 0u; e < ${3 * cpt}u; e++) { acc[e] = 0.0; }
  workgroupBarrier();
  for (var j0 = 0u; j0 < P.n; j0 += ${WG}u) {
    let j = j0 + t;
    var x = -1e30;
    var ks = 0u;
    var kt = 0u;
    if (j < P.n) {
      var dot = 0.0;
      let kb = base(s, j);
      for (var c = 0u; c < ${D}u; c++) { dot += qrow[c] * ldk(kb + c); }
      x = P.smScale * dot;
      ks = Tiles[rowS + j / P.blockK];
      kt = Tiles[rowT + temporalAt(j) / P.blockK];
    }
    logit[t] = x;
    keepS[t] = ks;
    keepT[t] = kt;
    workgroupBarrier();
    let cnt = min(${WG}u, P.n - j0);
    if (t == 0u) {
      var mf = -1e30;
      var ms = -1e30;
      var mt = -1e30;
      for (var u = 0u; u < cnt; u++) {
        mf = max(mf, logit[u]);
        if (keepS[u] == 1u) { ms = max(ms, logit[u]); }
        if (keepT[u] == 1u) { mt = max(mt, logit[u]); }
      }
      tmax[0] = mf;
      tmax[1] = ms;
      tmax[2] = mt;
    }
    workgroupBarrier();
    for (var k = 0u; k < 3u; k++) {
      let mn = max(m[k], tmax[k]);
      let sc = exp(m[k] - mn);
      l[k] *= sc;
      for (var cc = 0u; cc < ${cpt}u; cc++) { acc[k * ${cpt}u + cc] *= sc; }
      m[k] = mn;
    }
    for (var u = 0u; u < cnt; u++) {
      let xu = logit[u];
      let pf = exp(xu - m[0]);
      let ps = select(0.0, exp(xu - m[1]), keepS[u] == 1u);
      let pt = select(0.0, exp(xu - m[2]), keepT[u] == 1u);
      l[0] += pf;
      l[1] += ps;
      l[2] += pt;
      let vb = base(s, j0 + u);
      for (var cc = 0u; cc < ${cpt}u; cc++) {
        let c = t + cc * ${WG}u;
        if (c < ${D}u) {
          let vv = ldv(vb + c);
          acc[cc] += pf * vv;
          acc[${cpt}u + cc] += ps * vv;
          acc[${2 * cpt}u + cc] += pt * vv;
        }
      }
    }
    workgroupBarrier();
  }
  var es = 0.0;
  var et = 0.0;
  for (var cc = 0u; cc < ${cpt}u; cc++) {
    if (t + cc * ${WG}u < ${D}u) {
      let ofull = acc[cc] / l[0];
      let os = select(0.0, acc[${cpt}u + cc] / l[1], l[1] > 0.0);
      let ot = select(0.0, acc[${2 * cpt}u + cc] / l[2], l[2] > 0.0);
      es += (os - ofull) * (os - ofull);
      et += (ot - ofull) * (ot - ofull);
    }
  }
  errs[t] = es;
  errs[${WG}u + t] = et;
  workgroupBarrier();
  if (t == 0u) {
    var a = 0.0;
    var b = 0.0;
    for (var u = 0u; u < ${WG}u; u++) { a += errs[u]; b += errs[${WG}u + u]; }
    Err[(s * P.rows + r) * 2u] = a;
    Err[(s * P.rows + r) * 2u + 1u] = b;
  }
}`;
}

/** Sampled rows per workgroup, keys per tile and the most key chunks of the split kernel. */
const SPLIT_ROWS = 8;
const SPLIT_KEYS = 32;
const MAX_CHUNKS = 16;

/** Keys per chunk of the split kernel: N over at most 16 chunks, in whole 32-key tiles. */
export function svgProfileKeysPerChunk(n: number): number {
  return Math.max(SPLIT_KEYS, Math.ceil(Math.ceil(n / MAX_CHUNKS) / SPLIT_KEYS) * SPLIT_KEYS);
}

/**
 * The split kernel (module comment): invocation t is (row r = t / 32, lane = t % 32); the lane is a
 * key of the tile when forming logits and weights, and a channel group (lane + 32·m) when summing V.
 * Part[((s·rows + row)·chunks + chunk)·3 + kind] holds (max, sum, output[D]) of that chunk.
 */
function splitWgsl(input: 'f16' | 'f32', D: number): string {
  const R = SPLIT_ROWS;
  const KT = SPLIT_KEYS;
  const cpl = Math.ceil(D / KT);
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Q: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> K: array<${floatArrayElement(input)}>;
@group(0) @binding(3) var<storage, read> V: array<${floatArrayElement(input)}>;
@group(0) @binding(4) var<storage, read> Rows: array<u32>;
@group(0) @binding(5) var<storage, read> Tiles: array<u32>;
@group(0) @binding(6) var<storage, read_write> Part: array<f32>;
${floatLoaderWgsl('ldq', 'Q', input)}
${floatLoaderWgsl('ldk', 'K', input)}
${floatLoaderWgsl('ldv', 'V', input)}
var<workgroup> qrows: array<f32, ${R * D}>;
var<workgroup> logit: array<f32, ${R * KT}>;
var<workgroup> keep: array<u32, ${R * KT}>;
var<workgroup> wf: array<f32, ${R * KT}>;
var<workgroup> ws: array<f32, ${R * KT}>;
var<workgroup> wt: array<f32, ${R * KT}>;
fn base(s: u32, j: u32) -> u32 { return (s / P.heads) * P.batchStride + (s % P.heads) * P.headStride + j * P.tokenStride; }
@compute @workgroup_size(${R * KT})
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
    qrows[e] = ldq(base(s, Rows[min(wid.y * ${R}u + rr, P.rows - 1u)]) + e % ${D}u);
  }
  let rowS = (i / P.blockQ) * P.nkb;
  let rowT = (temporalAt(i) / P.blockQ) * P.nkb;
  var m = array<f32, 3>(-1e30, -1e30, -1e30);
  var l = array<f32, 3>(0.0, 0.0, 0.0);
  var acc: array<f32, ${3 * cpl}>;
  for (var e = 0u; e < ${3 * cpl}u; e++) { acc[e] = 0.0; }
  let k0 = chunk * P.kpc;
  let k1 = min(P.n, k0 + P.kpc);
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
    // the tile's maxima of this row (every lane of the row computes the same values)
    var tm = array<f32, 3>(-1e30, -1e30, -1e30);
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
      let vb = base(s, j0 + u);
      for (var cc = 0u; cc < ${cpl}u; cc++) {
        let c = lane + cc * ${KT}u;
        if (c < ${D}u) {
          let vv = ldv(vb + c);
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
}`;
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
  /** Which profiling kernel (module comment; default 'split'). */
  kernel?: 'split' | 'per-row';
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
  const kernel = opts.kernel ?? 'split';
  if (kernel !== 'split' && kernel !== 'per-row') {
    throw new UnsupportedOptionError(
      `the profiling kernel must be 'split' or 'per-row'; got ${String(kernel)}`,
    );
  }
  if (q.dtype !== 'float32' && q.dtype !== 'float16') {
    throw new UnsupportedOptionError(`GPU SVG profiling takes float32 or float16 tensors; got ${q.dtype}`);
  }
  const rt = q.runtime;
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
  const input = q.dtype === 'float16' ? 'f16' : 'f32';
  const scratch: GpuTensor[] = [];
  if (kernel === 'per-row') {
    recordDispatch(
      rt,
      pass,
      profileWgsl(input, d),
      [params, q.buffer, k.buffer, v.buffer, rowsGpu.buffer, tilesGpu.buffer, err.buffer],
      [rows.length, sets, 1],
    );
  } else {
    const chunks = Math.ceil(n / kpc);
    const part = emptyGpu(rt, [sets, rows.length, chunks, 3, d + 2], 'float32', 'svg profile partials');
    scratch.push(part);
    recordDispatch(
      rt,
      pass,
      splitWgsl(input, d),
      [params, q.buffer, k.buffer, v.buffer, rowsGpu.buffer, tilesGpu.buffer, part.buffer],
      [chunks, Math.ceil(rows.length / SPLIT_ROWS), sets],
    );
    recordDispatch(rt, pass, mergeWgsl(d), [params, part.buffer, err.buffer], [rows.length, sets, 1]);
  }
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
      for (const t of scratch) t.destroy();
    },
  };
}
