/**
 * Q smoothing on WebGPU (SA2 §3.1, Eq. 2; SA3 §7.3 `preprocess_qkv`; quantize-qk.ts step 2): the mean
 * q̄_i of each blockQ-token block of Q, and ΔS[b, h, i, j] = q̄_i · γ(K)[b, kvHeadOf(h), j] with
 * γ(K) = K − k̄ (k̄ the K smoothing mean, when K is smoothed), in plain q·k units. The quantizers then
 * take Q − q̄_i (their `mean` with `meanBlock`), and the kernel adds ΔS·σ·log2e to each logit.
 *
 * Float32 throughout, where the CPU steps sum in float64: means and ΔS agree with them to float
 * rounding (relative 1e-6 or so), not bit for bit.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import {
  floatArrayElement,
  floatLoaderWgsl,
  optionalInput,
  recordDispatch,
  uniformBuffer,
} from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import { layoutStrides } from '../flash-params.js';
import { recordBlockMeanGpu } from './channel-stats-gpu.js';

const KEYS_PER_WORKGROUP = 64;
/** Q blocks per workgroup: each key row read from K serves this many ΔS rows. */
const BLOCKS_PER_WORKGROUP = 8;

/**
 * One invocation per key j of a (chunk of BLOCKS_PER_WORKGROUP blocks, head, batch): the chunk's mean
 * rows sit in workgroup memory and each K element read feeds one dot product per block of the chunk.
 */
function deltaSWgsl(input: 'f16' | 'f32', D: number): string {
  const G = BLOCKS_PER_WORKGROUP;
  return /* wgsl */ `
struct U {
  heads: u32, headsKv: u32, tokensKv: u32, blocks: u32,
  tokenStride: u32, headStride: u32, batchStride: u32, useMean: u32,
}
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> QMean: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<${floatArrayElement(input)}>;
@group(0) @binding(3) var<storage, read> KMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
var<workgroup> qm: array<f32, ${G * D}>;
var<workgroup> km: array<f32, ${D}>;
${floatLoaderWgsl('ld', 'K', input)}
@compute @workgroup_size(${KEYS_PER_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wid.y % P.heads;
  let blk0 = (wid.y / P.heads) * ${G}u;
  let b = wid.z;
  let hk = h / (P.heads / P.headsKv);
  let row0 = (b * P.heads + h) * P.blocks + blk0;
  let count = min(${G}u, P.blocks - blk0);
  for (var i = tid; i < ${G * D}u; i += ${KEYS_PER_WORKGROUP}u) {
    qm[i] = select(0.0, QMean[min(row0 * ${D}u + i, arrayLength(&QMean) - 1u)], i / ${D}u < count);
  }
  for (var d = tid; d < ${D}u; d += ${KEYS_PER_WORKGROUP}u) {
    km[d] = select(0.0, KMean[(b * P.headsKv + hk) * ${D}u + d], P.useMean != 0u);
  }
  workgroupBarrier();
  let j = wid.x * ${KEYS_PER_WORKGROUP}u + tid;
  if (j >= P.tokensKv) { return; }
  let k0 = b * P.batchStride + hk * P.headStride + j * P.tokenStride;
  var dot: array<f32, ${G}>;
  for (var d = 0u; d < ${D}u; d++) {
    let kd = ld(k0 + d) - km[d];
    for (var g = 0u; g < ${G}u; g++) { dot[g] += qm[g * ${D}u + d] * kd; }
  }
  for (var g = 0u; g < count; g++) { Out[(row0 + g) * P.tokensKv + j] = dot[g]; }
}`;
}

export interface GpuSmoothQ {
  /** q̄ per block, [B, H, ⌈Nq/blockQ⌉, D]: the `mean` the Q quantizer subtracts (with meanBlock blockQ). */
  qMean: GpuTensor<'float32'>;
  /** ΔS = q̄·γ(K)ᵀ, [B, H, ⌈Nq/blockQ⌉, Nk], float32, no σ. */
  deltaS: GpuTensor<'float32'>;
  release: () => void;
}

/**
 * Records Q smoothing: block means of q and ΔS against k (minus kMean [B, Hkv, D] when given). q is
 * [B, H, Nq, D] and k [B, Hkv, Nk, D] in `layout` (float16/float32), H a multiple of Hkv.
 */
export function recordSmoothQGpu(
  q: GpuTensor,
  k: GpuTensor,
  opts: { layout: 'HND' | 'NHD'; blockQ: number; kMean?: GpuTensor<'float32'> },
  pass: GPUComputePassEncoder,
): GpuSmoothQ {
  if (k.dtype !== 'float16' && k.dtype !== 'float32') {
    throw new UnsupportedOptionError(`GPU Q smoothing takes float16 or float32 K; got ${k.dtype}`);
  }
  const { layout, blockQ } = opts;
  const [qb, qx, qy, D] = q.shape;
  const [kb, kx, ky] = k.shape;
  const [B, H] = layout === 'HND' ? [qb, qx] : [qb, qy];
  const [Hkv, Nk] = layout === 'HND' ? [kx, ky] : [ky, kx];
  if (kb !== B || k.shape[3] !== D || Hkv < 1 || H % Hkv !== 0) {
    throw new UnsupportedOptionError(
      `q [${q.shape.join(', ')}] and k [${k.shape.join(', ')}] do not fit (layout '${layout}'): same batch and head dim, H a multiple of Hkv`,
    );
  }
  const runtime = q.runtime;
  const means = recordBlockMeanGpu(q, layout, blockQ, pass);
  const blocks = means.out.shape[2];
  const deltaS = emptyGpu(runtime, [B, H, blocks, Nk], 'float32', 'delta S');
  const st = layoutStrides(layout, Hkv, Nk, D);
  const params = uniformBuffer(
    runtime,
    new Uint32Array([H, Hkv, Nk, blocks, st.token, st.head, st.batch, opts.kMean ? 1 : 0]).buffer,
    'delta S params',
  );
  const kMean = optionalInput(runtime, opts.kMean, 'no K mean');
  if (blocks > 0 && Nk > 0 && B > 0) {
    recordDispatch(
      runtime,
      pass,
      deltaSWgsl(k.dtype === 'float16' ? 'f16' : 'f32', D),
      [params, means.out.buffer, k.buffer, kMean.buffer, deltaS.buffer],
      [Math.ceil(Nk / KEYS_PER_WORKGROUP), Math.ceil(blocks / BLOCKS_PER_WORKGROUP) * H, B],
    );
  }
  return {
    qMean: means.out,
    deltaS,
    release: () => {
      means.release();
      params.destroy();
      kMean.release();
    },
  };
}
