/**
 * Batched Euclidean k-means on WebGPU (sparse_attention.md §4 "k-means on the GPU"), the same algorithm
 * and stopping rule as the CPU `kmeans` (kmeans.ts) in float32, over the token rows of a [B, H, N, D]
 * tensor (one problem per (b, h); the first `offset` tokens, e.g. text, are left out).
 *
 * One iteration is nine dispatches, all recorded ahead into one pass:
 * 1. the centroid norms ‖c‖², summed over channels in order;
 * 2. assignment: a workgroup per 64 points of a set computes 64 × 64 point–centroid dots at a time
 *    (each invocation a 4 × 4 register tile, channels staged 16 at a time through workgroup memory,
 *    each dot summed over channels in order), label = argmin ‖c‖² − 2·x·c, ties to the lowest index
 *    (the lexicographic minimum of (distance, index) over the tile's partial minima, which is what the
 *    CPU's strict < over ascending c picks);
 * 3–6. update by counting sort, since WGSL has no float atomics: per chunk of 256 points, each point's
 *    rank among the earlier points of its chunk with its label and the chunk's count per label
 *    (histogram); an exclusive scan of the counts in (label, chunk) order; a scatter of every point to
 *    offset + rank. The result is the stable sort of the labels — points of a cluster in ascending
 *    index — with deterministic ranks (no atomics at all);
 * 7. segmented sum: a workgroup per (cluster, set) sums its contiguous run of the sorted order in a
 *    fixed order and writes the mean, or keeps the centroid when the run is empty, and its move;
 * 8. the largest move (global over the batch, like the CPU and the reference), compared with tol on
 *    the GPU: it sets a `done` word in a small state buffer and counts the iteration;
 * 9. the advance: the updated centroids become current unless this iteration converged.
 *
 * Every kernel first reads `done` and returns when it is set, so `maxIters` iterations can be recorded
 * at once and the ones after convergence cost a launch each: the CPU loop's early stop without a
 * read-back per iteration (kmeans.ts: a converged run keeps the centroids its last assignment used; a
 * run that hits maxIters returns the updated ones). `recordKMeansGpu` leaves labels, sort, centroids,
 * sizes and the state on the GPU (SVG2's hot path reads nothing back); `kmeansGpu` reads them.
 *
 * The sort of the last iteration is SVG2's permutation (permute.ts convention), so svg2Attention gets it
 * for free. Labels equal the CPU's except where two centroids are within float32 rounding of each other
 * for a point (a tie the two precisions break differently; after that the runs may drift apart).
 * Non-finite inputs are not scanned on the GPU: a NaN point gets label 0 and poisons that centroid.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import type { Layout } from '../../core/layout.js';
import { floatArrayElement, floatLoaderWgsl, recordDispatch, uniformBuffer } from '../../gpu/dispatch.js';
import { download, emptyGpu, type GpuTensor, upload } from '../../gpu/gpu-tensor.js';
import { Tensor } from '../../core/tensor.js';
import { layoutStrides } from '../flash-params.js';
import { type KMeansOptions, checkKMeansOptions, kmeansInitIndices } from './kmeans.js';

/** Points per sort chunk (and threads of the chunk kernels). */
const CHUNK = 256;
/** Points and centroids per assignment tile; channels staged per step. */
const ASSIGN_TILE = 64;
const ASSIGN_CHANNELS = 16;
const UPDATE_WG = 256;

export interface KMeansGpuOptions extends KMeansOptions {
  /** Layout of x (default 'HND'). */
  layout?: Layout;
  /** Tokens at the start of every (b, h) that are not clustered (default 0). */
  offset?: number;
  /** Starting centroids already on the GPU (float32, sets·C·D values), instead of `init` or a sample. */
  initGpu?: GpuTensor<'float32'>;
  /** Assignment kernel: 'tiled' (64 × 64 register tiles, the default) or 'per-point' (the first version). */
  assignKernel?: 'tiled' | 'per-point';
}

export interface KMeansGpuResult {
  /** [B·H, N − offset] labels (u32 values in an int32 tensor). */
  readonly labels: GpuTensor<'int32'>;
  /** [B·H, N − offset]: the stable sort of the labels (order[r] = point index at sorted position r). */
  readonly order: GpuTensor<'int32'>;
  /** Final centroids, sets·C·D (read back; small). */
  readonly centroids: Float64Array;
  /** Cluster sizes of `labels`, sets·C (read back). */
  readonly sizes: Int32Array;
  readonly iterations: number;
  readonly converged: boolean;
  readonly shift: number;
  /** Frees the GPU buffers of `labels` and `order`. */
  destroy(): void;
}

/** What a recorded k-means run leaves on the GPU (nothing read back). */
export interface KMeansGpuResident {
  readonly labels: GpuTensor<'int32'>;
  readonly order: GpuTensor<'int32'>;
  /** [sets, C, D] final centroids. */
  readonly centroids: GpuTensor<'float32'>;
  /** [sets, C] sizes of `labels`. */
  readonly sizes: GpuTensor<'int32'>;
  /** [done, iterations, shift as f32 bits] (`readKMeansState`). */
  readonly state: GpuTensor<'int32'>;
  /** Frees labels, order, sizes and state — not `centroids`, which the caller may keep (a cache). */
  destroy(): void;
}

const PARAMS = `struct U { sets: u32, n: u32, clusters: u32, heads: u32, offset: u32, tokenStride: u32, headStride: u32, batchStride: u32, chunks: u32, tol: f32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> P: U;
fn pointBase(s: u32, i: u32) -> u32 {
  return (s / P.heads) * P.batchStride + (s % P.heads) * P.headStride + (P.offset + i) * P.tokenStride;
}`;

/** Declares the state binding and `doneW`; GUARD (after `t` is known) returns once converged. */
const STATE = (binding: number, access: 'read' | 'read_write' = 'read') =>
  `@group(0) @binding(${binding}) var<storage, ${access}> State: array<u32>;
var<workgroup> doneW: u32;`;
const GUARD = `if (t == 0u) { doneW = State[0]; }
  if (workgroupUniformLoad(&doneW) != 0u) { return; }`;

function initWgsl(input: 'f16' | 'f32', D: number): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> Cent: array<f32>;
${floatLoaderWgsl('ld', 'X', input)}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= P.sets * P.clusters * ${D}u) { return; }
  let sc = e / ${D}u;
  let s = sc / P.clusters;
  Cent[e] = ld(pointBase(s, Idx[sc]) + e % ${D}u);
}`;
}

/** Dst = Src elementwise, unless `done` (the advance; also the copy of GPU starting centroids). */
const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> Src: array<f32>;
@group(0) @binding(1) var<storage, read_write> Dst: array<f32>;
${STATE(2)}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e < arrayLength(&Dst)) { Dst[e] = Src[e]; }
}`;

function normWgsl(D: number): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Cent: array<f32>;
@group(0) @binding(2) var<storage, read_write> Norm: array<f32>;
${STATE(3)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= P.sets * P.clusters) { return; }
  var nn = 0.0;
  for (var j = 0u; j < ${D}u; j++) { let c = Cent[e * ${D}u + j]; nn += c * c; }
  Norm[e] = nn;
}`;
}

/**
 * Assignment (module comment, step 2): 256 invocations as 16 × 16; invocation (ty, tx) owns points
 * ty + 16a and centroids tx + 16b of the tile (a, b < 4), so the staged centroid values a warp reads
 * are consecutive and its point values are broadcasts.
 */
function assignWgsl(input: 'f16' | 'f32', D: number): string {
  const T = ASSIGN_TILE;
  const DC = ASSIGN_CHANNELS;
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Cent: array<f32>;
@group(0) @binding(3) var<storage, read> Norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> Labels: array<u32>;
${STATE(5)}
${floatLoaderWgsl('ld', 'X', input)}
// [channel][item]; after the dots the two hold the partial minima (distance, and index as bits)
var<workgroup> xs: array<f32, ${DC * T}>;
var<workgroup> cs: array<f32, ${DC * T}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let s = wid.y;
  let p0 = wid.x * ${T}u;
  let tx = t % 16u;
  let ty = t / 16u;
  var best = array<f32, 4>(0x1.fffffep+127f, 0x1.fffffep+127f, 0x1.fffffep+127f, 0x1.fffffep+127f);
  var arg = array<u32, 4>(0u, 0u, 0u, 0u);
  for (var c0 = 0u; c0 < P.clusters; c0 += ${T}u) {
    var acc: array<f32, 16>;
    for (var e = 0u; e < 16u; e++) { acc[e] = 0.0; }
    for (var j0 = 0u; j0 < ${D}u; j0 += ${DC}u) {
      workgroupBarrier();
      for (var e = t; e < ${DC * T}u; e += 256u) {
        let item = e / ${DC}u;
        let ch = e % ${DC}u;
        var xv = 0.0;
        if (p0 + item < P.n && j0 + ch < ${D}u) { xv = ld(pointBase(s, p0 + item) + j0 + ch); }
        xs[ch * ${T}u + item] = xv;
        var cv = 0.0;
        if (c0 + item < P.clusters && j0 + ch < ${D}u) { cv = Cent[(s * P.clusters + c0 + item) * ${D}u + j0 + ch]; }
        cs[ch * ${T}u + item] = cv;
      }
      workgroupBarrier();
      for (var j = 0u; j < ${DC}u; j++) {
        var xa = array<f32, 4>(xs[j * ${T}u + ty], xs[j * ${T}u + ty + 16u], xs[j * ${T}u + ty + 32u], xs[j * ${T}u + ty + 48u]);
        var cb = array<f32, 4>(cs[j * ${T}u + tx], cs[j * ${T}u + tx + 16u], cs[j * ${T}u + tx + 32u], cs[j * ${T}u + tx + 48u]);
        for (var a = 0u; a < 4u; a++) {
          for (var b = 0u; b < 4u; b++) { acc[a * 4u + b] += xa[a] * cb[b]; }
        }
      }
    }
    for (var b = 0u; b < 4u; b++) {
      let c = c0 + tx + 16u * b;
      if (c < P.clusters) {
        let nn = Norm[s * P.clusters + c];
        for (var a = 0u; a < 4u; a++) {
          let dist = nn - 2.0 * acc[a * 4u + b];
          if (dist < best[a]) { best[a] = dist; arg[a] = c; }
        }
      }
    }
  }
  workgroupBarrier();
  for (var a = 0u; a < 4u; a++) {
    xs[(ty + 16u * a) * 16u + tx] = best[a];
    cs[(ty + 16u * a) * 16u + tx] = bitcast<f32>(arg[a]);
  }
  workgroupBarrier();
  if (t < ${T}u && p0 + t < P.n) {
    var bd = xs[t * 16u];
    var bi = bitcast<u32>(cs[t * 16u]);
    for (var u = 1u; u < 16u; u++) {
      let dd = xs[t * 16u + u];
      let ii = bitcast<u32>(cs[t * 16u + u]);
      if (dd < bd || (dd == bd && ii < bi)) { bd = dd; bi = ii; }
    }
    Labels[s * P.n + p0 + t] = bi;
  }
}`;
}

/**
 * The first assignment kernel, kept for A/B benchmarks (`assignKernel: 'per-point'`): an invocation
 * per point with the point in registers, centroids streamed through workgroup memory in tiles of TC;
 * the same sums in the same order as the tiled kernel, so the same labels.
 */
function assignPerPointWgsl(input: 'f16' | 'f32', D: number, TC: number): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Cent: array<f32>;
@group(0) @binding(3) var<storage, read> Norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> Labels: array<u32>;
${STATE(5)}
${floatLoaderWgsl('ld', 'X', input)}
var<workgroup> tile: array<f32, ${TC * D}>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let s = wid.y;
  let i = wid.x * 64u + t;
  let valid = i < P.n;
  var x: array<f32, ${D}>;
  if (valid) {
    let base = pointBase(s, i);
    for (var c = 0u; c < ${D}u; c++) { x[c] = ld(base + c); }
  }
  var best = 0x1.fffffep+127f;
  var arg = 0u;
  for (var c0 = 0u; c0 < P.clusters; c0 += ${TC}u) {
    let cnt = min(${TC}u, P.clusters - c0);
    workgroupBarrier();
    for (var e = t; e < cnt * ${D}u; e += 64u) { tile[e] = Cent[(s * P.clusters + c0) * ${D}u + e]; }
    workgroupBarrier();
    if (valid) {
      for (var c = 0u; c < cnt; c++) {
        var dot = 0.0;
        for (var j = 0u; j < ${D}u; j++) { dot += x[j] * tile[c * ${D}u + j]; }
        let dist = Norm[s * P.clusters + c0 + c] - 2.0 * dot;
        if (dist < best) { best = dist; arg = c0 + c; }
      }
    }
  }
  if (valid) { Labels[s * P.n + i] = arg; }
}`;
}

const ZERO_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> Buf: array<u32>;
${STATE(1)}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e < arrayLength(&Buf)) { Buf[e] = 0u; }
}`;

const RANK_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> Ranks: array<u32>;
@group(0) @binding(3) var<storage, read_write> Counts: array<u32>;
${STATE(4)}
var<workgroup> lab: array<u32, ${CHUNK}>;
@compute @workgroup_size(${CHUNK})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let s = wid.y;
  let chunk = wid.x;
  let i = chunk * ${CHUNK}u + t;
  let valid = i < P.n;
  lab[t] = select(0xffffffffu, Labels[s * P.n + min(i, P.n - 1u)], valid);
  workgroupBarrier();
  if (valid) {
    let l = lab[t];
    var rank = 0u;
    for (var u = 0u; u < t; u++) { if (lab[u] == l) { rank++; } }
    var last = true;
    for (var u = t + 1u; u < ${CHUNK}u; u++) { if (lab[u] == l) { last = false; break; } }
    Ranks[s * P.n + i] = rank;
    if (last) { Counts[(s * P.clusters + l) * P.chunks + chunk] = rank + 1u; }
  }
}`;

const SCAN_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> Offsets: array<u32>;
${STATE(3)}
var<workgroup> part: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let s = wid.x;
  let len = P.clusters * P.chunks;
  let per = (len + 255u) / 256u;
  let lo = min(t * per, len);
  let hi = min(lo + per, len);
  var sum = 0u;
  for (var e = lo; e < hi; e++) { sum += Counts[s * len + e]; }
  part[t] = sum;
  workgroupBarrier();
  for (var off = 1u; off < 256u; off *= 2u) {
    var v = 0u;
    if (t >= off) { v = part[t - off]; }
    workgroupBarrier();
    part[t] += v;
    workgroupBarrier();
  }
  var run = part[t] - sum;
  for (var e = lo; e < hi; e++) {
    let c = Counts[s * len + e];
    Offsets[s * len + e] = run;
    run += c;
  }
}`;

const SCATTER_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Labels: array<u32>;
@group(0) @binding(2) var<storage, read> Ranks: array<u32>;
@group(0) @binding(3) var<storage, read> Offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> Order: array<u32>;
${STATE(5)}
@compute @workgroup_size(${CHUNK})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let s = wid.y;
  let i = wid.x * ${CHUNK}u + t;
  if (i >= P.n) { return; }
  let l = Labels[s * P.n + i];
  let pos = Offsets[(s * P.clusters + l) * P.chunks + wid.x] + Ranks[s * P.n + i];
  Order[s * P.n + pos] = i;
}`;

function updateWgsl(input: 'f16' | 'f32', D: number): string {
  const lanes = Math.floor(UPDATE_WG / D);
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Order: array<u32>;
@group(0) @binding(3) var<storage, read> Offsets: array<u32>;
@group(0) @binding(4) var<storage, read> Cent: array<f32>;
@group(0) @binding(5) var<storage, read_write> Next: array<f32>;
@group(0) @binding(6) var<storage, read_write> Shift: array<f32>;
@group(0) @binding(7) var<storage, read_write> Sizes: array<u32>;
${STATE(8)}
${floatLoaderWgsl('ld', 'X', input)}
var<workgroup> acc: array<f32, ${UPDATE_WG}>;
var<workgroup> moved: array<f32, ${D}>;
@compute @workgroup_size(${UPDATE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${GUARD}
  let c = wid.x;
  let s = wid.y;
  let len = P.clusters * P.chunks;
  let start = Offsets[s * len + c * P.chunks];
  var end = P.n;
  if (c + 1u < P.clusters) { end = Offsets[s * len + (c + 1u) * P.chunks]; }
  let lane = t / ${D}u;
  let j = t % ${D}u;
  var sum = 0.0;
  if (lane < ${lanes}u) {
    for (var r = start + lane; r < end; r += ${lanes}u) { sum += ld(pointBase(s, Order[s * P.n + r]) + j); }
  }
  acc[t] = sum;
  workgroupBarrier();
  if (t < ${D}u) {
    var total = acc[t];
    for (var l = 1u; l < ${lanes}u; l++) { total += acc[l * ${D}u + t]; }
    let count = end - start;
    let e = (s * P.clusters + c) * ${D}u + t;
    let old = Cent[e];
    var value = old;
    if (count > 0u) { value = total / f32(count); }
    Next[e] = value;
    moved[t] = (value - old) * (value - old);
  }
  workgroupBarrier();
  if (t == 0u) {
    var m = 0.0;
    for (var k = 0u; k < ${D}u; k++) { m += moved[k]; }
    Shift[s * P.clusters + c] = sqrt(m);
    Sizes[s * P.clusters + c] = end - start;
  }
}`;
}

/** The largest move, the convergence test against tol and the iteration count (step 8). */
const MAX_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Shift: array<f32>;
${STATE(2, 'read_write')}
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  ${GUARD}
  var m = 0.0;
  for (var e = t; e < arrayLength(&Shift); e += 256u) { m = max(m, Shift[e]); }
  part[t] = m;
  workgroupBarrier();
  if (t == 0u) {
    var r = 0.0;
    for (var k = 0u; k < 256u; k++) { r = max(r, part[k]); }
    State[1] = State[1] + 1u;
    State[2] = bitcast<u32>(r);
    if (r < P.tol) { State[0] = 1u; }
  }
}`;

/** The buffers and dispatches of one GPU k-means run; `kmeansGpu` drives it, benchmarks time its pieces. */
export interface KMeansGpuRun {
  readonly sets: number;
  readonly n: number;
  readonly clusters: number;
  readonly maxIters: number;
  readonly tol: number;
  /** Records the initial centroids (given, copied from `initGpu`, or gathered from the seeded sample) and clears the state. */
  recordInit(pass: GPUComputePassEncoder): void;
  /** Records one iteration (module comment: a no-op once an earlier one converged). */
  recordIteration(pass: GPUComputePassEncoder): void;
  /** Where the recorded work leaves labels, order, centroids, sizes and state (the caller's to free). */
  readonly result: KMeansGpuResident;
  /** Frees the work buffers — once the recorded work is submitted. */
  release(): void;
  /** Frees everything, `result` included (when abandoning the run). */
  destroy(): void;
}

/** Validates the call and allocates a k-means run of the token rows of `x` (see `kmeansGpu`). */
export function prepareKMeansGpu(x: GpuTensor, opts: KMeansGpuOptions): KMeansGpuRun {
  if (x.dtype !== 'float32' && x.dtype !== 'float16') {
    throw new UnsupportedOptionError(`GPU k-means takes float32 or float16 points; got ${x.dtype}`);
  }
  if (x.shape.length !== 4)
    throw new ShapeError(`GPU k-means takes a [B, H, N, D] tensor; got rank ${x.shape.length}`);
  const layout = opts.layout ?? 'HND';
  const [b0, a, c0, D] = x.shape;
  const [B, H, N] = layout === 'HND' ? [b0, a, c0] : [b0, c0, a];
  const offset = opts.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= N) {
    throw new UnsupportedOptionError(
      `offset must be an integer in [0, N = ${N}); got ${String(opts.offset)}`,
    );
  }
  if (D > UPDATE_WG) throw new UnsupportedOptionError(`GPU k-means supports D ≤ ${UPDATE_WG}; got ${D}`);
  const sets = B * H;
  const n = N - offset;
  const o = checkKMeansOptions({ sets, n, d: D }, opts);
  const C = o.clusters;
  if (opts.initGpu && (opts.initGpu.size !== sets * C * D || opts.initGpu.dtype !== 'float32')) {
    throw new ShapeError(
      `initGpu must be a float32 GPU tensor of sets·clusters·d = ${sets * C * D} values; got ${opts.initGpu.dtype} with ${opts.initGpu.size}`,
    );
  }
  const assign = opts.assignKernel ?? 'tiled';
  if (assign !== 'tiled' && assign !== 'per-point') {
    throw new UnsupportedOptionError(`assignKernel must be 'tiled' or 'per-point'; got ${String(assign)}`);
  }
  const tiled = assign === 'tiled';
  const rt = x.runtime;
  const input = x.dtype === 'float16' ? 'f16' : 'f32';
  const chunks = Math.ceil(n / CHUNK);
  const st = layoutStrides(layout, H, N, D);
  const words = new Uint32Array([sets, n, C, H, offset, st.token, st.head, st.batch, chunks, 0, 0, 0]);
  // shift < tol in float32: tol rounds to the nearest f32 (the CPU compares in float64)
  new Float32Array(words.buffer, 9 * 4, 1)[0] = o.tol;
  const params = uniformBuffer(rt, words.buffer, 'kmeans params');
  const cent = emptyGpu(rt, [sets, C, D], 'float32', 'kmeans centroids');
  const next = emptyGpu(rt, [sets, C, D], 'float32', 'kmeans next centroids');
  const norms = emptyGpu(rt, [sets, C], 'float32', 'kmeans centroid norms');
  const labels = emptyGpu(rt, [sets, n], 'int32', 'kmeans labels');
  const order = emptyGpu(rt, [sets, n], 'int32', 'kmeans order');
  const ranks = emptyGpu(rt, [sets, n], 'int32', 'kmeans ranks');
  const counts = emptyGpu(rt, [sets, C, chunks], 'int32', 'kmeans chunk counts');
  const offsets = emptyGpu(rt, [sets, C, chunks], 'int32', 'kmeans chunk offsets');
  const shift = emptyGpu(rt, [sets, C], 'float32', 'kmeans shift');
  const sizes = emptyGpu(rt, [sets, C], 'int32', 'kmeans sizes');
  const state = emptyGpu(rt, [4], 'int32', 'kmeans state');
  const temporaries: { destroy(): void }[] = [];
  const freeWork = () => {
    params.destroy();
    for (const t of [next, norms, ranks, counts, offsets, shift, ...temporaries]) t.destroy();
  };
  const notDone = emptyGpu(rt, [4], 'int32', 'kmeans state (never done)');
  rt.device.queue.writeBuffer(notDone.buffer, 0, new Uint32Array(4));
  temporaries.push(notDone);
  return {
    sets,
    n,
    clusters: C,
    maxIters: o.maxIters,
    tol: o.tol,
    recordInit(pass) {
      rt.device.queue.writeBuffer(state.buffer, 0, new Uint32Array(4));
      if (opts.initGpu) {
        recordDispatch(
          rt,
          pass,
          COPY_WGSL,
          [opts.initGpu.buffer, cent.buffer, notDone.buffer],
          Math.ceil((sets * C * D) / 256),
        );
        return;
      }
      if (opts.init) {
        rt.device.queue.writeBuffer(cent.buffer, 0, Float32Array.from(opts.init));
        return;
      }
      const idx = upload(rt, new Tensor(kmeansInitIndices(sets, n, C, o.seed), [sets * C], 'int32'));
      temporaries.push(idx);
      recordDispatch(
        rt,
        pass,
        initWgsl(input, D),
        [params, x.buffer, idx.buffer, cent.buffer],
        Math.ceil((sets * C * D) / 256),
      );
    },
    recordIteration(pass) {
      const s = state.buffer;
      recordDispatch(rt, pass, ZERO_WGSL, [counts.buffer, s], Math.ceil((sets * C * chunks) / 256));
      recordDispatch(
        rt,
        pass,
        normWgsl(D),
        [params, cent.buffer, norms.buffer, s],
        Math.ceil((sets * C) / 64),
      );
      const assignBuffers = [params, x.buffer, cent.buffer, norms.buffer, labels.buffer, s];
      if (tiled) {
        recordDispatch(rt, pass, assignWgsl(input, D), assignBuffers, [Math.ceil(n / ASSIGN_TILE), sets, 1]);
      } else {
        const tc = Math.max(1, Math.min(64, Math.floor(2048 / D)));
        recordDispatch(rt, pass, assignPerPointWgsl(input, D, tc), assignBuffers, [
          Math.ceil(n / 64),
          sets,
          1,
        ]);
      }
      recordDispatch(
        rt,
        pass,
        RANK_WGSL,
        [params, labels.buffer, ranks.buffer, counts.buffer, s],
        [chunks, sets, 1],
      );
      recordDispatch(rt, pass, SCAN_WGSL, [params, counts.buffer, offsets.buffer, s], [sets, 1, 1]);
      recordDispatch(
        rt,
        pass,
        SCATTER_WGSL,
        [params, labels.buffer, ranks.buffer, offsets.buffer, order.buffer, s],
        [chunks, sets, 1],
      );
      recordDispatch(
        rt,
        pass,
        updateWgsl(input, D),
        [
          params,
          x.buffer,
          order.buffer,
          offsets.buffer,
          cent.buffer,
          next.buffer,
          shift.buffer,
          sizes.buffer,
          s,
        ],
        [C, sets, 1],
      );
      recordDispatch(rt, pass, MAX_WGSL, [params, shift.buffer, s], [1, 1, 1]);
      recordDispatch(rt, pass, COPY_WGSL, [next.buffer, cent.buffer, s], Math.ceil((sets * C * D) / 256));
    },
    result: {
      labels,
      order,
      centroids: cent,
      sizes,
      state,
      destroy: () => {
        for (const t of [labels, order, sizes, state]) t.destroy();
      },
    },
    release: freeWork,
    destroy() {
      freeWork();
      for (const t of [cent, labels, order, sizes, state]) t.destroy();
    },
  };
}

/**
 * Records whole k-means runs (init and `maxIters` iterations each, module comment) into `pass`, their
 * iterations interleaved; `run.result` is where each leaves its output (nothing is read back) and
 * `run.release()` frees its work buffers once the pass is submitted.
 */
export function recordKMeansGpu(
  inputs: readonly { x: GpuTensor; opts: KMeansGpuOptions }[],
  pass: GPUComputePassEncoder,
): KMeansGpuRun[] {
  const runs: KMeansGpuRun[] = [];
  try {
    for (const { x, opts } of inputs) runs.push(prepareKMeansGpu(x, opts));
    for (const run of runs) run.recordInit(pass);
    const iters = Math.max(...runs.map((run) => run.maxIters));
    for (let it = 0; it < iters; it++) {
      for (const run of runs) if (it < run.maxIters) run.recordIteration(pass);
    }
  } catch (e) {
    for (const run of runs) run.destroy();
    throw e;
  }
  return runs;
}

/** Reads a run's state: iterations run, whether the last converged, and its largest move. */
export async function readKMeansState(
  state: GpuTensor<'int32'>,
): Promise<{ iterations: number; converged: boolean; shift: number }> {
  const s = (await download(state)).data;
  return { iterations: s[1], converged: s[0] === 1, shift: new Float32Array(s.buffer, 8, 1)[0] };
}

/**
 * k-means of the token rows of `x` ([B, H, N, D], float32 or float16) per (b, h), as the CPU `kmeans`
 * (module comment). One submission; reads back the state, the final centroids and the sizes.
 */
export async function kmeansGpu(x: GpuTensor, opts: KMeansGpuOptions): Promise<KMeansGpuResult> {
  const rt = x.runtime;
  const enc = rt.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  const [run] = recordKMeansGpu([{ x, opts }], pass);
  pass.end();
  rt.device.queue.submit([enc.finish()]);
  run.release();
  const r = run.result;
  try {
    const { iterations, converged, shift } = await readKMeansState(r.state);
    const centroids = Float64Array.from((await download(r.centroids)).data);
    const sizes = Int32Array.from((await download(r.sizes)).data);
    return {
      labels: r.labels,
      order: r.order,
      centroids,
      sizes,
      iterations,
      converged,
      shift,
      destroy: () => {
        r.labels.destroy();
        r.order.destroy();
      },
    };
  } catch (e) {
    r.destroy();
    throw e;
  } finally {
    r.centroids.destroy();
    r.sizes.destroy();
    r.state.destroy();
  }
}
