/**
 * SVG2's cluster map and variable-block layout on WebGPU (svg2-map.ts and svg2-plan.ts `svg2Layout` on
 * the GPU; sparse_attention.md §3.2 steps 2–3 and 5), from the centroids and sizes k-means left on the
 * GPU, so svg2AttentionGpu reads nothing back before its kernel. Three dispatches:
 *
 * 1. criticality: a workgroup per (query cluster, set): S_ij = σ·c^q_i·c^k_j (each dot summed over
 *    channels in order), the max over non-empty key clusters, P′_ij = |K_j|·exp(S_ij − m) / Σ (0 for
 *    empty clusters; a row whose key clusters are all empty is all 0), into a scratch row;
 * 2. top-p without a sort: for every key cluster j of a row, its rank r_j (how many clusters come
 *    before it in the CPU's order: larger P′, ties by lower index) and the mass before it
 *    B_j = Σ_{k before j} P′_k, summed in index order. j is kept iff r_j = 0, r_j < ⌊ratio·C_k⌋ or
 *    B_j ≤ p — the CPU's rule, since its cumulative sum at j's sorted position is over exactly these
 *    clusters (O(C_k²) comparisons per row in workgroup memory, well under a millisecond at C_k = 500).
 *    Each B_j is a float32 sum of non-negative terms over a superset of the sets before it, so B
 *    never decreases along the order and the kept clusters are a prefix of it, as on the CPU. The kept
 *    flags go to the map, and, compacted by a workgroup scan in ascending j, to the CSR columns;
 * 3. segment bounds: the exclusive prefix sums of the sizes, with the prefix (text) segment first.
 *
 * The layout words follow block-sparse-wgsl-layout.ts, with one difference that the kernels do not
 * see: row r's columns start at r·(C_k + extra) (room for every key segment) instead of being packed,
 * so no global scan is needed. As svg2Layout, prefix rows and columns are always kept, and pairs whose
 * query or key segment is empty are not listed.
 *
 * Float32 (the CPU map is float64 from the same float32 centroids): the maps agree except where a
 * cluster's P′ or its mass before is within float32 rounding of a neighbour's or of p — a near-tie the
 * two precisions break differently (tests check that every disagreement is one). At p = 1 the mass
 * before an empty key cluster (P′ = 0, ranked last) is 1 up to rounding, so whether the map lists it
 * is such a tie on either side; it has no effect, since the layout drops empty clusters.
 */
import { recordDispatch, uniformBuffer } from '../../gpu/dispatch.js';
import { download, emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import type { VariableBlockLayout } from './block-layout.js';
import { SPARSE_PARAMS_BYTES } from './block-sparse-wgsl-layout.js';

const WG = 256;

const PARAMS = /* wgsl */ `
struct U { sets: u32, cq: u32, ck: u32, d: u32, extra: u32, prefix: u32, forced: u32, heads: u32,
  colOff: u32, qbOff: u32, kbOff: u32, thrOff: u32, topP: f32, smScale: f32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> P: U;`;

function criticalityWgsl(D: number): string {
  return /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> QC: array<f32>;
@group(0) @binding(2) var<storage, read> KC: array<f32>;
@group(0) @binding(3) var<storage, read> KSizes: array<u32>;
@group(0) @binding(4) var<storage, read_write> Prob: array<f32>;
var<workgroup> qs: array<f32, ${D}>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = wid.x;
  let s = wid.y;
  for (var c = t; c < ${D}u; c += ${WG}u) { qs[c] = QC[(s * P.cq + i) * ${D}u + c]; }
  workgroupBarrier();
  let row = (s * P.cq + i) * P.ck;
  var m = -0x1.fffffep+127f;
  var any = false;
  for (var j = t; j < P.ck; j += ${WG}u) {
    var dot = 0.0;
    let kb = (s * P.ck + j) * ${D}u;
    for (var c = 0u; c < ${D}u; c++) { dot += qs[c] * KC[kb + c]; }
    let x = P.smScale * dot;
    Prob[row + j] = x;
    if (KSizes[s * P.ck + j] > 0u && (!any || x > m)) { m = x; any = true; }
  }
  red[t] = select(-0x1.fffffep+127f, m, any);
  workgroupBarrier();
  for (var off = ${WG / 2}u; off > 0u; off /= 2u) {
    if (t < off) { red[t] = max(red[t], red[t + off]); }
    workgroupBarrier();
  }
  let rowMax = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = t; j < P.ck; j += ${WG}u) {
    let size = KSizes[s * P.ck + j];
    var w = 0.0;
    if (size > 0u) { w = f32(size) * exp(Prob[row + j] - rowMax); }
    Prob[row + j] = w;
    sum += w;
  }
  red[t] = sum;
  workgroupBarrier();
  for (var off = ${WG / 2}u; off > 0u; off /= 2u) {
    if (t < off) { red[t] += red[t + off]; }
    workgroupBarrier();
  }
  let total = red[0];
  for (var j = t; j < P.ck; j += ${WG}u) {
    Prob[row + j] = select(0.0, Prob[row + j] / total, total > 0.0);
  }
}`;
}

const SELECT_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> Prob: array<f32>;
@group(0) @binding(2) var<storage, read> QSizes: array<u32>;
@group(0) @binding(3) var<storage, read> KSizes: array<u32>;
@group(0) @binding(4) var<storage, read_write> Map: array<u32>;
@group(0) @binding(5) var<storage, read_write> LW: array<u32>;
var<workgroup> tileP: array<f32, ${WG}>;
var<workgroup> scan: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = wid.x;
  let s = wid.y;
  let cqe = P.cq + P.extra;
  let cke = P.ck + P.extra;
  let textRow = i < P.extra;
  let iv = i - P.extra;
  var qSize = P.prefix;
  if (!textRow) { qSize = QSizes[s * P.cq + iv]; }
  let row = (s * P.cq + iv) * P.ck;
  let r = s * cqe + i;
  let start = r * cke;
  var written = 0u;
  for (var c0 = 0u; c0 < cke; c0 += ${WG}u) {
    let jj = c0 + t;
    let textCol = jj < P.extra;
    let j = jj - P.extra;
    let video = jj < cke && !textCol;
    var pj = 0.0;
    if (video && !textRow) { pj = Prob[row + j]; }
    var rank = 0u;
    var before = 0.0;
    for (var k0 = 0u; k0 < P.ck; k0 += ${WG}u) {
      workgroupBarrier();
      tileP[t] = 0.0;
      if (!textRow && k0 + t < P.ck) { tileP[t] = Prob[row + k0 + t]; }
      workgroupBarrier();
      let cnt = min(${WG}u, P.ck - k0);
      for (var u = 0u; u < cnt; u++) {
        let pk = tileP[u];
        let k = k0 + u;
        if (pk > pj || (pk == pj && k < j)) { rank++; before += pk; }
      }
    }
    var kSize = P.prefix;
    if (video) { kSize = KSizes[s * P.ck + j]; }
    let chosen = rank == 0u || rank < P.forced || before <= P.topP;
    if (video && !textRow) { Map[row + j] = select(0u, 1u, chosen); }
    let keep = jj < cke && (textRow || textCol || chosen) && kSize > 0u && qSize > 0u;
    let flag = select(0u, 1u, keep);
    workgroupBarrier();
    scan[t] = flag;
    workgroupBarrier();
    for (var off = 1u; off < ${WG}u; off *= 2u) {
      var v = 0u;
      if (t >= off) { v = scan[t - off]; }
      workgroupBarrier();
      scan[t] += v;
      workgroupBarrier();
    }
    if (keep) { LW[P.colOff + start + written + scan[t] - 1u] = jj; }
    written += scan[${WG - 1}u];
  }
  if (t == 0u) {
    LW[2u * r] = start;
    LW[2u * r + 1u] = start + written;
  }
}`;

const BOUNDS_WGSL = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> QSizes: array<u32>;
@group(0) @binding(2) var<storage, read> KSizes: array<u32>;
@group(0) @binding(3) var<storage, read_write> LW: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  if (s < P.heads) { LW[P.thrOff + s] = 0u; }
  if (s >= P.sets) { return; }
  let cqe = P.cq + P.extra;
  let cke = P.ck + P.extra;
  var acc = 0u;
  LW[P.qbOff + s * (cqe + 1u)] = 0u;
  if (P.extra == 1u) { acc = P.prefix; LW[P.qbOff + s * (cqe + 1u) + 1u] = acc; }
  for (var i = 0u; i < P.cq; i++) {
    acc += QSizes[s * P.cq + i];
    LW[P.qbOff + s * (cqe + 1u) + P.extra + i + 1u] = acc;
  }
  acc = 0u;
  LW[P.kbOff + s * (cke + 1u)] = 0u;
  if (P.extra == 1u) { acc = P.prefix; LW[P.kbOff + s * (cke + 1u) + 1u] = acc; }
  for (var j = 0u; j < P.ck; j++) {
    acc += KSizes[s * P.ck + j];
    LW[P.kbOff + s * (cke + 1u) + P.extra + j + 1u] = acc;
  }
}`;

export interface Svg2MapGpuInput {
  /** [sets, C_q, D] and [sets, C_k, D] float32 centroids. */
  qCentroids: GpuTensor<'float32'>;
  kCentroids: GpuTensor<'float32'>;
  /** [sets, C_q] and [sets, C_k] cluster sizes. */
  qSizes: GpuTensor<'int32'>;
  kSizes: GpuTensor<'int32'>;
  batch: number;
  heads: number;
  qClusters: number;
  kClusters: number;
  headDim: number;
  /** Text tokens first in both orders (one extra segment each when > 0). */
  prefixTokens: number;
  /** Tokens per (b, h), prefix included. */
  tokens: number;
  topP: number;
  minKeyClusterRatio: number;
  smScale: number;
}

export interface Svg2MapGpu {
  /** The layout words (block-sparse-wgsl-layout.ts, rows unpacked as in the module comment). */
  words: GpuTensor<'int32'>;
  /** The SparseParams block for the kernel. */
  params: ArrayBuffer;
  /** [sets, C_q, C_k] cluster map of the video clusters (1 = kept), as svg2ClusterMap. */
  map: GpuTensor<'int32'>;
  /** Query segments per (b, h) (C_q + extra). */
  numQBlocks: number;
  /** [sets, C_q, C_k] scratch: the criticality rows. */
  criticality: GpuTensor<'float32'>;
  /** Frees the parameter block (after submission). */
  release: () => void;
  /** Frees words, map and scratch. */
  destroy: () => void;
}

/**
 * Records the map, the CSR and the segment bounds (module comment) into `pass`; into the buffers of
 * `into` (an earlier result of the same shapes, e.g. in a benchmark loop) when given.
 */
export function recordSvg2MapGpu(
  i: Svg2MapGpuInput,
  pass: GPUComputePassEncoder,
  into?: Svg2MapGpu,
): Svg2MapGpu {
  const rt = i.qCentroids.runtime;
  const sets = i.batch * i.heads;
  const { qClusters: cq, kClusters: ck, headDim: d } = i;
  const extra = i.prefixTokens > 0 ? 1 : 0;
  const cqe = cq + extra;
  const cke = ck + extra;
  const rows = sets * cqe;
  const colOff = 2 * rows;
  const qbOff = colOff + rows * cke;
  const kbOff = qbOff + sets * (cqe + 1);
  const thrOff = kbOff + sets * (cke + 1);
  const forced = Math.floor(i.minKeyClusterRatio * ck);
  const u = new Uint32Array(16);
  u.set([sets, cq, ck, d, extra, i.prefixTokens, forced, i.heads, colOff, qbOff, kbOff, thrOff]);
  new Float32Array(u.buffer, 12 * 4, 2).set([i.topP, i.smScale]);
  const params = uniformBuffer(rt, u.buffer, 'svg2 map params');
  const prob = into?.criticality ?? emptyGpu(rt, [sets, cq, ck], 'float32', 'svg2 criticality');
  const map = into?.map ?? emptyGpu(rt, [sets, cq, ck], 'int32', 'svg2 cluster map');
  const words = into?.words ?? emptyGpu(rt, [Math.max(thrOff + i.heads, 4)], 'int32', 'svg2 layout words');
  recordDispatch(
    rt,
    pass,
    criticalityWgsl(d),
    [params, i.qCentroids.buffer, i.kCentroids.buffer, i.kSizes.buffer, prob.buffer],
    [cq, sets, 1],
  );
  recordDispatch(
    rt,
    pass,
    SELECT_WGSL,
    [params, prob.buffer, i.qSizes.buffer, i.kSizes.buffer, map.buffer, words.buffer],
    [cqe, sets, 1],
  );
  recordDispatch(
    rt,
    pass,
    BOUNDS_WGSL,
    [params, i.qSizes.buffer, i.kSizes.buffer, words.buffer],
    Math.ceil(Math.max(sets, i.heads) / 64),
  );
  const sparse = new ArrayBuffer(SPARSE_PARAMS_BYTES);
  // numQBlocks, numKBlocks, blockQ, blockK, layoutBatch, layoutHeads, colOff, qbOff, kbOff, thrOff, exemptLast
  new Uint32Array(sparse).set([cqe, cke, 0, 0, i.batch, i.heads, colOff, qbOff, kbOff, thrOff, 0, 0]);
  return {
    words,
    params: sparse,
    map,
    numQBlocks: cqe,
    criticality: prob,
    release: () => params.destroy(),
    destroy: () => {
      for (const t of [words, map, prob]) t.destroy();
    },
  };
}

/**
 * Reads a GPU map back as the host form: the cluster map and the packed variable layout (what
 * svg2Layout builds from the same map) — for plans and tests, not the hot path.
 */
export async function readSvg2MapGpu(
  m: Svg2MapGpu,
  shape: { batch: number; heads: number; tokens: number },
): Promise<{ map: Uint8Array; layout: VariableBlockLayout }> {
  const words = new Uint32Array((await download(m.words)).data.buffer);
  const map = Uint8Array.from((await download(m.map)).data);
  const p = new Uint32Array(m.params);
  const [cqe, cke, , , batch, heads, colOff, qbOff, kbOff] = p;
  const sets = batch * heads;
  const rows = sets * cqe;
  const rowOffsets = new Int32Array(rows + 1);
  const cols: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let e = words[2 * r]; e < words[2 * r + 1]; e++) cols.push(words[colOff + e]);
    rowOffsets[r + 1] = cols.length;
  }
  return {
    map,
    layout: {
      kind: 'variable',
      batch: shape.batch,
      heads: shape.heads,
      nq: shape.tokens,
      nk: shape.tokens,
      numQBlocks: cqe,
      numKBlocks: cke,
      qBounds: Int32Array.from(words.subarray(qbOff, qbOff + sets * (cqe + 1))),
      kBounds: Int32Array.from(words.subarray(kbOff, kbOff + sets * (cke + 1))),
      rowOffsets,
      columns: Int32Array.from(cols),
    },
  };
}
