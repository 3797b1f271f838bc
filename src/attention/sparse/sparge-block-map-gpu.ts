/**
 * SpargeAttn stage 1 on WebGPU (the algorithm of sparge-block-map.ts, sparse_attention.md §1.2),
 * recorded into a compute pass so that the map never leaves the GPU: the block-sparse kernel reads the
 * layout words this writes (block-sparse-wgsl-layout.ts), in "padded CSR" form — row r's kept columns
 * at colOff + r·#Kblocks, ascending, and its range (r·#Kblocks, r·#Kblocks + count).
 *
 * 1. K's token mean per (b, kv head): float32 partial sums over chunks of tokens, then their sum / N.
 * 2. Pool + self-similarity, one workgroup per block: per token its inverse norm (zero tokens counted,
 *    a block of identical tokens flagged), then per channel the block mean and Σ x̂; the similarity is
 *    (‖Σ x̂‖² + zeros²)/b², exactly 1 for identical tokens, clamped to [−1, 1].
 * 3. Selection, one workgroup per query block: scores q̄·k̄/√D of the similar, causally visible key
 *    blocks, softmax, a bitonic sort (descending probability, ascending index on ties, the CPU's
 *    stable order), the TopK or TopCdf count from one invocation's sequential float32 prefix sum (the
 *    CPU's order of additions), at least one block, fix blocks, causal mask, sink, and the compaction.
 *
 * Arithmetic is float32 (the CPU reference computes scores and softmax in float64 and rounds the
 * probabilities to float32), so a block whose probability or prefix sum lies within float32 rounding
 * of a threshold may be decided differently; on generic inputs the maps agree (tested). One more
 * difference: K's mean is a float32 sum, so keys that are identical smooth to rounding residue rather
 * than exact zeros and their blocks may be judged non-similar — computed as fix blocks, the safe side.
 * Limits: #Kblocks ≤ 2048 (N ≤ 131072 at blockK 64), blocks of at most 1024 tokens.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { floatArrayElement, floatLoaderWgsl, recordDispatch, uniformBuffer } from '../../gpu/dispatch.js';
import { BUFFER_USAGE, type GpuTensor, emptyGpu } from '../../gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../gpu/runtime.js';
import { layoutStrides } from '../flash-params.js';
import type { AttentionProblem } from '../options.js';
import type { GpuLayoutWords } from './block-sparse-gpu.js';
import { SPARSE_PARAMS_BYTES } from './block-sparse-wgsl-layout.js';
import type { ResolvedSpargeMap } from './sparge-options.js';

const MAX_KEY_BLOCKS = 2048;
const MAX_BLOCK = 1024;

/** The layout words written on the GPU and where their parts start. */
export interface GpuSpargeMap {
  /** Layout words (int32 storage): ranges [0, 2R), columns from colOff, pvthreshd from thrOff. */
  words: GpuTensor<'int32'>;
  /** CSR rows R = B·H·#Qblocks. */
  rows: number;
  qBlocks: number;
  kBlocks: number;
  colOff: number;
  thrOff: number;
  /** Block self-similarities [B·H·#Qblocks] and [B·Hkv·#Kblocks] (float32), for statistics. */
  simQ: GpuTensor<'float32'>;
  simK: GpuTensor<'float32'>;
  /** Frees the temporaries (not `words`). */
  release(): void;
}

const MEAN_CHUNK = 256;

/**
 * K's token mean per (b, kv head, channel) in two passes so that long sequences spread over many
 * workgroups: float32 partial sums over chunks of MEAN_CHUNK tokens, then the sum of the partials / N.
 */
function meanPartialWgsl(input: 'f16' | 'f32', d: number): string {
  return /* wgsl */ `
struct U { heads: u32, tokens: u32, tokenStride: u32, headStride: u32, batchStride: u32, chunks: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read_write> Partial: array<f32>;
${floatLoaderWgsl('ld', 'X', input)}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let chunk = wid.x;
  let h = wid.y;
  let b = wid.z;
  let t0 = chunk * ${MEAN_CHUNK}u;
  let t1 = min(t0 + ${MEAN_CHUNK}u, P.tokens);
  let base = b * P.batchStride + h * P.headStride;
  for (var c = tid; c < ${d}u; c += 64u) {
    var sum = 0.0;
    for (var t = t0; t < t1; t++) { sum += ld(base + t * P.tokenStride + c); }
    Partial[((b * P.heads + h) * P.chunks + chunk) * ${d}u + c] = sum;
  }
}`;
}

function meanReduceWgsl(d: number): string {
  return /* wgsl */ `
struct U { heads: u32, tokens: u32, tokenStride: u32, headStride: u32, batchStride: u32, chunks: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> Partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> Mean: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let h = gid.y;
  let b = gid.z;
  if (c >= ${d}u) { return; }
  var sum = 0.0;
  for (var i = 0u; i < P.chunks; i++) { sum += Partial[((b * P.heads + h) * P.chunks + i) * ${d}u + c]; }
  Mean[(b * P.heads + h) * ${d}u + c] = sum / f32(P.tokens);
}`;
}

function poolSimWgsl(input: 'f16' | 'f32', d: number, block: number): string {
  return /* wgsl */ `
struct U { heads: u32, tokens: u32, tokenStride: u32, headStride: u32, batchStride: u32, blocks: u32, smoothing: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> Pool: array<f32>;
@group(0) @binding(4) var<storage, read_write> Sim: array<f32>;
var<workgroup> inv: array<f32, ${block}>;
var<workgroup> red: array<f32, 64>;
var<workgroup> zeros: atomic<u32>;
var<workgroup> differs: atomic<u32>;
${floatLoaderWgsl('ld', 'X', input)}
fn val(base: u32, m0: u32, c: u32) -> f32 {
  return ld(base + c) - select(0.0, Mean[m0 + c], P.smoothing != 0u);
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let blk = wid.x;
  let h = wid.y;
  let b = wid.z;
  let t0 = blk * ${block}u;
  let count = min(${block}u, P.tokens - t0);
  let base = b * P.batchStride + h * P.headStride;
  let m0 = (b * P.heads + h) * ${d}u;
  let first = base + t0 * P.tokenStride;
  if (tid == 0u) {
    atomicStore(&zeros, 0u);
    atomicStore(&differs, 0u);
  }
  workgroupBarrier();
  for (var t = tid; t < count; t += 64u) {
    let row = base + (t0 + t) * P.tokenStride;
    var norm2 = 0.0;
    var same = true;
    for (var c = 0u; c < ${d}u; c++) {
      let v = val(row, m0, c);
      norm2 += v * v;
      same = same && v == val(first, m0, c);
    }
    inv[t] = select(0.0, 1.0 / sqrt(norm2), norm2 > 0.0);
    if (norm2 == 0.0) { atomicAdd(&zeros, 1u); }
    if (!same) { atomicStore(&differs, 1u); }
  }
  workgroupBarrier();
  var part = 0.0;
  let out = ((b * P.heads + h) * P.blocks + blk) * ${d}u;
  for (var c = tid; c < ${d}u; c += 64u) {
    var ps = 0.0;
    var us = 0.0;
    for (var t = 0u; t < count; t++) {
      let v = val(base + (t0 + t) * P.tokenStride, m0, c);
      ps += v;
      us += v * inv[t];
    }
    Pool[out + c] = ps / f32(count);
    part += us * us;
  }
  red[tid] = part;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  if (tid == 0u) {
    let z = f32(atomicLoad(&zeros));
    let n = f32(count);
    let sim = select(1.0, (red[0] + z * z) / (n * n), atomicLoad(&differs) != 0u);
    Sim[(b * P.heads + h) * P.blocks + blk] = clamp(sim, -1.0, 1.0);
  }
}`;
}

function selectWgsl(d: number, kBlocks: number): string {
  let p2 = 1;
  while (p2 < kBlocks) p2 *= 2;
  return /* wgsl */ `
struct U {
  heads: u32, headsKv: u32, qBlocks: u32, kBlocks: u32,
  mode: u32, causal: u32, sink: u32, colOff: u32,
  ratio: f32, scale: f32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> PoolQ: array<f32>;
@group(0) @binding(2) var<storage, read> PoolK: array<f32>;
@group(0) @binding(3) var<storage, read> SimQ: array<f32>;
@group(0) @binding(4) var<storage, read> SimK: array<f32>;
// per head: θ, then τ (modes 1, 2) or topk (mode 0)
@group(0) @binding(5) var<storage, read> HP: array<f32>;
@group(0) @binding(6) var<storage, read_write> LW: array<u32>;
var<workgroup> qv: array<f32, ${d}>;
var<workgroup> key: array<f32, ${p2}>;
var<workgroup> idx: array<u32, ${p2}>;
var<workgroup> flag: array<u32, ${kBlocks}>;
var<workgroup> red: array<f32, 256>;
var<workgroup> keep: u32;
fn causalOk(i: u32, j: u32) -> bool { return P.causal == 0u || f32(j) < f32(i + 1u) * P.ratio; }
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let i = wid.x;
  let h = wid.y;
  let b = wid.z;
  let hk = h / (P.heads / P.headsKv);
  let theta = HP[2u * h];
  let tau = HP[2u * h + 1u];
  let qSim = SimQ[(b * P.heads + h) * P.qBlocks + i] > theta;
  let q0 = ((b * P.heads + h) * P.qBlocks + i) * ${d}u;
  let kRow = (b * P.headsKv + hk) * P.kBlocks;
  for (var c = tid; c < ${d}u; c += 256u) { qv[c] = PoolQ[q0 + c]; }
  workgroupBarrier();
  // scores of the similar, causally visible key blocks (flag = 1), and their max
  var mx = -3.0e38;
  for (var j = tid; j < ${p2}u; j += 256u) {
    var s = 0.0;
    var ok = false;
    if (j < ${kBlocks}u) {
      ok = SimK[kRow + j] > theta && causalOk(i, j);
      if (ok) {
        let k0 = (kRow + j) * ${d}u;
        for (var c = 0u; c < ${d}u; c++) { s += qv[c] * PoolK[k0 + c]; }
        s *= P.scale;
        mx = max(mx, s);
      }
      flag[j] = select(0u, 1u, ok);
    }
    key[j] = s;
  }
  red[tid] = mx;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (tid < w) { red[tid] = max(red[tid], red[tid + w]); }
    workgroupBarrier();
  }
  let rowMax = red[0];
  let any = rowMax > -1.0e38;
  workgroupBarrier();
  var part = 0.0;
  for (var j = tid; j < ${p2}u; j += 256u) {
    var e = -1.0;
    if (j < ${kBlocks}u) {
      e = select(0.0, exp(key[j] - rowMax), flag[j] != 0u);
      part += e;
    }
    key[j] = e;
    idx[j] = j;
  }
  red[tid] = part;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (tid < w) { red[tid] += red[tid + w]; }
    workgroupBarrier();
  }
  let sum = red[0];
  for (var j = tid; j < ${kBlocks}u; j += 256u) { key[j] = select(0.0, key[j] / sum, sum > 0.0); }
  workgroupBarrier();
  // bitonic sort: descending probability, ascending index on ties (padding, key −1, sorts last)
  for (var size = 2u; size <= ${p2}u; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = tid; t < ${p2 / 2}u; t += 256u) {
        let lo = 2u * stride * (t / stride) + t % stride;
        let hi = lo + stride;
        let up = (lo & size) == 0u;
        let kl = key[lo];
        let kh = key[hi];
        let il = idx[lo];
        let ih = idx[hi];
        let loFirst = kl > kh || (kl == kh && il < ih);
        if (loFirst != up) {
          key[lo] = kh;
          key[hi] = kl;
          idx[lo] = ih;
          idx[hi] = il;
        }
      }
      workgroupBarrier();
    }
  }
  if (tid == 0u) {
    var n = 0u;
    if (any) {
      if (P.mode == 0u) {
        n = u32(floor(tau * f32(${kBlocks}u)));
      } else {
        var cdf = 0.0;
        for (var t = 0u; t < ${kBlocks}u; t++) {
          cdf += key[t];
          if ((P.mode == 1u && cdf <= tau) || (P.mode == 2u && cdf < tau)) { n += 1u; } else { break; }
        }
        if (P.mode == 2u) { n = min(${kBlocks}u, n + 1u); }
      }
      n = max(n, 1u);
    }
    keep = n;
  }
  workgroupBarrier();
  for (var j = tid; j < ${kBlocks}u; j += 256u) { flag[j] = 0u; }
  workgroupBarrier();
  let n = keep;
  for (var t = tid; t < n; t += 256u) { flag[idx[t]] = 1u; }
  workgroupBarrier();
  for (var j = tid; j < ${kBlocks}u; j += 256u) {
    var f = flag[j] != 0u || !qSim || !(SimK[kRow + j] > theta);
    f = f && causalOk(i, j);
    if (P.sink != 0u && j == 0u) { f = true; }
    flag[j] = select(0u, 1u, f);
  }
  workgroupBarrier();
  if (tid == 0u) {
    let r = (b * P.heads + h) * P.qBlocks + i;
    let start = r * ${kBlocks}u;
    var cnt = 0u;
    for (var j = 0u; j < ${kBlocks}u; j++) {
      if (flag[j] != 0u) {
        LW[P.colOff + start + cnt] = j;
        cnt += 1u;
      }
    }
    LW[2u * r] = start;
    LW[2u * r + 1u] = start + cnt;
  }
}`;
}

function inputKind(t: GpuTensor): 'f16' | 'f32' {
  if (t.dtype === 'float16') return 'f16';
  if (t.dtype === 'float32') return 'f32';
  throw new UnsupportedOptionError(
    `the GPU block-map predictor takes float16 or float32 tensors; got ${t.dtype}`,
  );
}

/**
 * The map's words as the block-sparse kernel's layout (block-sparse-gpu.ts planWithLayoutWords): the
 * sparse parameter block for these blocks and `pvExemptLast`, and the `density` the caller reports
 * (NaN when unknown before a read-back).
 */
export function spargeLayoutWords(
  map: GpuSpargeMap,
  p: AttentionProblem,
  o: ResolvedSpargeMap,
  pvExemptLast: number,
  density: number,
): GpuLayoutWords {
  const params = new ArrayBuffer(SPARSE_PARAMS_BYTES);
  new Uint32Array(params).set([
    map.qBlocks,
    map.kBlocks,
    o.blockQ,
    o.blockK,
    p.batch,
    p.headsQ,
    map.colOff,
    0,
    0,
    map.thrOff,
    pvExemptLast,
    0,
  ]);
  return { words: map.words, params, variable: false, blockQ: o.blockQ, numQBlocks: map.qBlocks, density };
}

/**
 * Plans stage 1 for GPU q and k (see the file comment): every buffer is allocated here, and `record`
 * records the dispatches into a pass (any number of times). `p` is the validated attention problem of
 * (q, k) and `o` the resolved stage-1 options. The words hold no pvthreshd: the caller writes them at
 * thrOff.
 */
export function planSpargeBlockMapGpu(
  q: GpuTensor,
  k: GpuTensor,
  p: AttentionProblem,
  o: ResolvedSpargeMap,
): GpuSpargeMap & { record(pass: GPUComputePassEncoder): void } {
  const runtime: GpuRuntime = q.runtime;
  const { batch, headsQ, headsKv, tokensQ, tokensKv, headDim: d } = p;
  const qBlocks = Math.ceil(tokensQ / o.blockQ);
  const kBlocks = Math.ceil(tokensKv / o.blockK);
  if (kBlocks > MAX_KEY_BLOCKS || o.blockQ > MAX_BLOCK || o.blockK > MAX_BLOCK) {
    throw new UnsupportedOptionError(
      `the GPU block-map predictor handles up to ${MAX_KEY_BLOCKS} key blocks and blocks of ≤ ${MAX_BLOCK} tokens; ` +
        `got ${kBlocks} key blocks of ${o.blockK} (query blocks of ${o.blockQ}). Use larger blockK or the CPU predictor (spargeBlockMap).`,
    );
  }
  const buffers: GPUBuffer[] = [];
  const temps: GpuTensor[] = [];
  const steps: { code: string; bindings: GPUBuffer[]; groups: [number, number, number] }[] = [];
  const uniform = (words: ArrayBuffer, label: string) => {
    const b = uniformBuffer(runtime, words, label);
    buffers.push(b);
    return b;
  };
  const strides = (heads: number, tokens: number) => {
    const st = layoutStrides(p.layout, heads, tokens, d);
    return [st.token, st.head, st.batch];
  };
  const mean = emptyGpu(runtime, [Math.max(1, batch * headsKv * d)], 'float32', 'key mean');
  temps.push(mean);
  if (o.smoothK && batch > 0 && tokensKv > 0) {
    const chunks = Math.ceil(tokensKv / MEAN_CHUNK);
    const u = new ArrayBuffer(32);
    new Uint32Array(u).set([headsKv, tokensKv, ...strides(headsKv, tokensKv), chunks, 0, 0]);
    const params = uniform(u, 'key mean params');
    const partial = emptyGpu(runtime, [batch * headsKv * chunks * d], 'float32', 'key mean partials');
    temps.push(partial);
    steps.push(
      {
        code: meanPartialWgsl(inputKind(k), d),
        bindings: [params, k.buffer, partial.buffer],
        groups: [chunks, headsKv, batch],
      },
      {
        code: meanReduceWgsl(d),
        bindings: [params, partial.buffer, mean.buffer],
        groups: [Math.ceil(d / 64), headsKv, batch],
      },
    );
  }
  const pool = (
    x: GpuTensor,
    heads: number,
    tokens: number,
    block: number,
    blocks: number,
    smooth: boolean,
  ) => {
    const u = new ArrayBuffer(32);
    new Uint32Array(u).set([heads, tokens, ...strides(heads, tokens), blocks, smooth ? 1 : 0, 0]);
    const pooled = emptyGpu(runtime, [Math.max(1, batch * heads * blocks * d)], 'float32', 'pooled blocks');
    const sim = emptyGpu(runtime, [batch * heads * blocks], 'float32', 'block similarity');
    temps.push(pooled, sim);
    if (blocks > 0 && batch > 0) {
      steps.push({
        code: poolSimWgsl(inputKind(x), d, block),
        bindings: [uniform(u, 'pool params'), x.buffer, mean.buffer, pooled.buffer, sim.buffer],
        groups: [blocks, heads, batch],
      });
    }
    return { pooled, sim };
  };
  const pq = pool(q, headsQ, tokensQ, o.blockQ, qBlocks, false);
  const pk = pool(k, headsKv, tokensKv, o.blockK, kBlocks, o.smoothK);

  const rows = batch * headsQ * qBlocks;
  const colOff = 2 * rows;
  const thrOff = colOff + rows * kBlocks;
  const words = emptyGpu(runtime, [thrOff + headsQ], 'int32', 'sparge layout words');
  const hp = new Float32Array(2 * headsQ);
  for (let h = 0; h < headsQ; h++) {
    hp[2 * h] = o.simThreshold[h];
    hp[2 * h + 1] = o.topk ? o.topk[h] : (o.cdfThreshold as Float64Array)[h];
  }
  const hpBuf = runtime.createBuffer(
    hp.byteLength,
    BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_DST,
    'sparge head params',
  );
  runtime.device.queue.writeBuffer(hpBuf, 0, hp);
  buffers.push(hpBuf);
  const u = new ArrayBuffer(48);
  const mode = o.topk ? 0 : o.cdfRule === 'exclusive' ? 1 : 2;
  new Uint32Array(u).set([
    headsQ,
    headsKv,
    qBlocks,
    kBlocks,
    mode,
    o.causal ? 1 : 0,
    o.attentionSink ? 1 : 0,
    colOff,
  ]);
  new Float32Array(u).set([o.blockQ / o.blockK, 1 / Math.sqrt(d)], 8);
  if (rows > 0 && kBlocks > 0) {
    steps.push({
      code: selectWgsl(d, kBlocks),
      bindings: [
        uniform(u, 'sparge select params'),
        pq.pooled.buffer,
        pk.pooled.buffer,
        pq.sim.buffer,
        pk.sim.buffer,
        hpBuf,
        words.buffer,
      ],
      groups: [qBlocks, headsQ, batch],
    });
  }
  return {
    words,
    rows,
    qBlocks,
    kBlocks,
    colOff,
    thrOff,
    simQ: pq.sim,
    simK: pk.sim,
    record(pass) {
      for (const st of steps) recordDispatch(runtime, pass, st.code, st.bindings, st.groups);
    },
    release() {
      for (const b of buffers) b.destroy();
      for (const t of temps) t.destroy();
    },
  };
}
