/**
 * Batched Euclidean k-means on WebGPU (sparse_attention.md §4 "k-means on the GPU"), the same algorithm
 * and stopping rule as the CPU `kmeans` (kmeans.ts) in float32, over the token rows of a [B, H, N, D]
 * tensor (one problem per (b, h); the first `offset` tokens, e.g. text, are left out).
 *
 * One iteration is seven dispatches in one pass:
 * 1. assignment: a thread per point, centroids streamed through workgroup memory in tiles of TC, label
 *    = argmin ‖c‖² − 2·x·c with strict < (ties to the lowest index, as on the CPU);
 * 2–5. update by counting sort, since WGSL has no float atomics: per chunk of 256 points, each point's
 *    rank among the earlier points of its chunk with its label and the chunk's count per label
 *    (histogram); an exclusive scan of the counts in (label, chunk) order; a scatter of every point to
 *    offset + rank. The result is the stable sort of the labels — points of a cluster in ascending
 *    index — with deterministic ranks (no atomics at all);
 * 6. segmented sum: a workgroup per (cluster, set) sums its contiguous run of the sorted order in a
 *    fixed order and writes the mean, or keeps the centroid when the run is empty, and its move;
 * 7. the largest move, read back to decide the stop (global over the batch, like the CPU and the
 *    reference).
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
const ASSIGN_WG = 64;
const UPDATE_WG = 256;

export interface KMeansGpuOptions extends KMeansOptions {
  /** Layout of x (default 'HND'). */
  layout?: Layout;
  /** Tokens at the start of every (b, h) that are not clustered (default 0). */
  offset?: number;
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

const PARAMS = `struct U { sets: u32, n: u32, clusters: u32, heads: u32, offset: u32, tokenStride: u32, headStride: u32, batchStride: u32, chunks: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> P: U;
fn pointBase(s: u32, i: u32) -> u32 {
  return (s / P.heads) * P.batchStride + (s % P.heads) * P.headStride + (P.offset + i) * P.tokenStride;
}`;

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

function assignWgsl(input: 'f16' | 'f32', D: number, TC: number): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Cent: array<f32>;
@group(0) @binding(3) var<storage, read_write> Labels: array<u32>;
${floatLoaderWgsl('ld', 'X', input)}
var<workgroup> tile: array<f32, ${TC * D}>;
var<workgroup> tnorm: array<f32, ${TC}>;
@compute @workgroup_size(${ASSIGN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let s = wid.y;
  let i = wid.x * ${ASSIGN_WG}u + t;
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
    for (var e = t; e < cnt * ${D}u; e += ${ASSIGN_WG}u) { tile[e] = Cent[(s * P.clusters + c0) * ${D}u + e]; }
    workgroupBarrier();
    if (t < cnt) {
      var nn = 0.0;
      for (var j = 0u; j < ${D}u; j++) { nn += tile[t * ${D}u + j] * tile[t * ${D}u + j]; }
      tnorm[t] = nn;
    }
    workgroupBarrier();
    if (valid) {
      for (var c = 0u; c < cnt; c++) {
        var dot = 0.0;
        for (var j = 0u; j < ${D}u; j++) { dot += x[j] * tile[c * ${D}u + j]; }
        let dist = tnorm[c] - 2.0 * dot;
        if (dist < best) { best = dist; arg = c0 + c; }
      }
    }
  }
  if (valid) { Labels[s * P.n + i] = arg; }
}`;
}

const ZERO_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> Buf: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e < arrayLength(&Buf)) { Buf[e] = 0u; }
}`;

const RANK_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> Ranks: array<u32>;
@group(0) @binding(3) var<storage, read_write> Counts: array<u32>;
var<workgroup> lab: array<u32, ${CHUNK}>;
@compute @workgroup_size(${CHUNK})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
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
var<workgroup> part: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
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
@compute @workgroup_size(${CHUNK})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
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
${floatLoaderWgsl('ld', 'X', input)}
var<workgroup> acc: array<f32, ${UPDATE_WG}>;
var<workgroup> moved: array<f32, ${D}>;
@compute @workgroup_size(${UPDATE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
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

const MAX_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> Shift: array<f32>;
@group(0) @binding(1) var<storage, read_write> Out: array<f32>;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  var m = 0.0;
  for (var e = t; e < arrayLength(&Shift); e += 256u) { m = max(m, Shift[e]); }
  part[t] = m;
  workgroupBarrier();
  if (t == 0u) {
    var r = 0.0;
    for (var k = 0u; k < 256u; k++) { r = max(r, part[k]); }
    Out[0] = r;
  }
}`;

/** The buffers and dispatches of one GPU k-means run; `kmeansGpu` drives it, benchmarks time its pieces. */
export interface KMeansGpuRun {
  readonly sets: number;
  readonly n: number;
  readonly clusters: number;
  readonly maxIters: number;
  readonly tol: number;
  /** Writes the initial centroids (given, or gathered from the seeded sample) and waits for them. */
  init(): Promise<void>;
  /** Records one iteration: assignment, counting sort, segmented mean, largest move. */
  recordIteration(pass: GPUComputePassEncoder): void;
  /** Reads the largest move of the last iteration. */
  readShift(): Promise<number>;
  /** Makes the updated centroids current (after an iteration that did not converge). */
  advance(): void;
  /** Reads the current centroids and the sizes, hands over labels and order, frees the rest. */
  finish(iterations: number, converged: boolean, shift: number): Promise<KMeansGpuResult>;
  /** Frees everything (when abandoning the run). */
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
  const rt = x.runtime;
  const input = x.dtype === 'float16' ? 'f16' : 'f32';
  const chunks = Math.ceil(n / CHUNK);
  const st = layoutStrides(layout, H, N, D);
  const params = uniformBuffer(
    rt,
    new Uint32Array([sets, n, C, H, offset, st.token, st.head, st.batch, chunks, 0, 0, 0]).buffer,
    'kmeans params',
  );
  const TC = Math.max(1, Math.min(ASSIGN_WG, Math.floor(2048 / D)));
  let cent = emptyGpu(rt, [sets, C, D], 'float32', 'kmeans centroids');
  let next = emptyGpu(rt, [sets, C, D], 'float32', 'kmeans next centroids');
  const labels = emptyGpu(rt, [sets, n], 'int32', 'kmeans labels');
  const order = emptyGpu(rt, [sets, n], 'int32', 'kmeans order');
  const ranks = emptyGpu(rt, [sets, n], 'int32', 'kmeans ranks');
  const counts = emptyGpu(rt, [sets, C, chunks], 'int32', 'kmeans chunk counts');
  const offsets = emptyGpu(rt, [sets, C, chunks], 'int32', 'kmeans chunk offsets');
  const shift = emptyGpu(rt, [sets, C], 'float32', 'kmeans shift');
  const sizes = emptyGpu(rt, [sets, C], 'int32', 'kmeans sizes');
  const maxShift = emptyGpu(rt, [1], 'float32', 'kmeans max shift');
  const freeWork = () => {
    params.destroy();
    cent.destroy();
    next.destroy();
    for (const t of [ranks, counts, offsets, shift, sizes, maxShift]) t.destroy();
  };
  return {
    sets,
    n,
    clusters: C,
    maxIters: o.maxIters,
    tol: o.tol,
    async init() {
      if (opts.init) {
        rt.device.queue.writeBuffer(cent.buffer, 0, Float32Array.from(opts.init));
        return;
      }
      const idx = upload(rt, new Tensor(kmeansInitIndices(sets, n, C, o.seed), [sets * C], 'int32'));
      const enc = rt.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      recordDispatch(
        rt,
        pass,
        initWgsl(input, D),
        [params, x.buffer, idx.buffer, cent.buffer],
        Math.ceil((sets * C * D) / 256),
      );
      pass.end();
      rt.device.queue.submit([enc.finish()]);
      await rt.sync();
      idx.destroy();
    },
    recordIteration(pass) {
      recordDispatch(rt, pass, ZERO_WGSL, [counts.buffer], Math.ceil((sets * C * chunks) / 256));
      recordDispatch(
        rt,
        pass,
        assignWgsl(input, D, TC),
        [params, x.buffer, cent.buffer, labels.buffer],
        [Math.ceil(n / ASSIGN_WG), sets, 1],
      );
      recordDispatch(
        rt,
        pass,
        RANK_WGSL,
        [params, labels.buffer, ranks.buffer, counts.buffer],
        [chunks, sets, 1],
      );
      recordDispatch(rt, pass, SCAN_WGSL, [params, counts.buffer, offsets.buffer], [sets, 1, 1]);
      recordDispatch(
        rt,
        pass,
        SCATTER_WGSL,
        [params, labels.buffer, ranks.buffer, offsets.buffer, order.buffer],
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
        ],
        [C, sets, 1],
      );
      recordDispatch(rt, pass, MAX_WGSL, [shift.buffer, maxShift.buffer], [1, 1, 1]);
    },
    async readShift() {
      return (await download(maxShift)).data[0];
    },
    advance() {
      [cent, next] = [next, cent];
    },
    async finish(iterations, converged, moved) {
      try {
        const centroids = Float64Array.from((await download(cent)).data);
        const sizesHost = Int32Array.from((await download(sizes)).data);
        return {
          labels,
          order,
          centroids,
          sizes: sizesHost,
          iterations,
          converged,
          shift: moved,
          destroy: () => {
            labels.destroy();
            order.destroy();
          },
        };
      } finally {
        freeWork();
      }
    },
    destroy() {
      freeWork();
      labels.destroy();
      order.destroy();
    },
  };
}

/**
 * k-means of the token rows of `x` ([B, H, N, D], float32 or float16) per (b, h), as the CPU `kmeans`
 * (module comment). Reads back one float per iteration (the largest move), and the final centroids
 * and sizes.
 */
export async function kmeansGpu(x: GpuTensor, opts: KMeansGpuOptions): Promise<KMeansGpuResult> {
  const run = prepareKMeansGpu(x, opts);
  const rt = x.runtime;
  try {
    await run.init();
    let iterations = 0;
    let moved = Infinity;
    let converged = false;
    for (let it = 0; it < run.maxIters; it++) {
      iterations = it + 1;
      const enc = rt.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      run.recordIteration(pass);
      pass.end();
      rt.device.queue.submit([enc.finish()]);
      moved = await run.readShift();
      if (moved < run.tol) {
        converged = true;
        break;
      }
      run.advance();
    }
    return await run.finish(iterations, converged, moved);
  } catch (e) {
    run.destroy();
    throw e;
  }
}
