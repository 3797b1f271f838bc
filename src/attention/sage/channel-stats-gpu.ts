/**
 * Per-(batch, head, channel) statistics over all tokens on the GPU, in two parallel passes: partial
 * results over chunks of 64 tokens (one workgroup per chunk, head and batch), then one reduction over
 * the chunks. 'mean' is SageAttention's smoothing statistic (SA1 §4.2, SA2 §3.4); 'absmax' (after
 * subtracting an optional mean) is V's per-channel range (SA2 §4.4). The same partial pass with one
 * chunk per block of tokens, averaged over the block's valid tokens, gives Q smoothing's block means
 * (SA2 §3.1, SA3 §7.3).
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import {
  floatArrayElement,
  floatLoaderWgsl,
  recordDispatch,
  uniformBuffer,
  optionalInput,
} from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import { layoutStrides } from '../flash-params.js';

const THREADS = 256;
/** Tokens per partial result. */
export const STAT_CHUNK = 64;

export type ChannelStat = 'mean' | 'absmax';

const PARAMS_WGSL = `
struct U { heads: u32, tokens: u32, tokenStride: u32, headStride: u32, batchStride: u32, chunks: u32, useMean: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;`;

/** Partial statistics over chunks of `chunk` tokens; `average` divides each by its valid token count. */
function partialWgsl(
  input: 'f16' | 'f32',
  D: number,
  stat: ChannelStat,
  chunk = STAT_CHUNK,
  average = false,
): string {
  const lanes = Math.max(1, Math.floor(THREADS / D));
  const combine = stat === 'mean' ? 'a + b' : 'max(a, b)';
  return /* wgsl */ `${PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> Partial: array<f32>;
var<workgroup> lanesOut: array<f32, ${THREADS}>;
${floatLoaderWgsl('ld', 'X', input)}
fn combine(a: f32, b: f32) -> f32 { return ${combine}; }
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let c = wid.x;
  let h = wid.y;
  let b = wid.z;
  let base = b * P.batchStride + h * P.headStride;
  let lane = tid / ${D}u;
  let d = tid % ${D}u;
  let m = select(0.0, Mean[(b * P.heads + h) * ${D}u + d], P.useMean != 0u && lane < ${lanes}u);
  var acc = 0.0;
  if (lane < ${lanes}u) {
    let n1 = min((c + 1u) * ${chunk}u, P.tokens);
    for (var n = c * ${chunk}u + lane; n < n1; n += ${lanes}u) {
      let x = ld(base + n * P.tokenStride + d) - m;
      acc = combine(acc, ${stat === 'mean' ? 'x' : 'abs(x)'});
    }
  }
  lanesOut[tid] = acc;
  workgroupBarrier();
  if (tid < ${D}u) {
    var t = lanesOut[tid];
    for (var l = 1u; l < ${lanes}u; l++) { t = combine(t, lanesOut[l * ${D}u + tid]); }
    Partial[((b * P.heads + h) * P.chunks + c) * ${D}u + tid] = ${
      average ? `t / f32(max(min((c + 1u) * ${chunk}u, P.tokens) - c * ${chunk}u, 1u))` : 't'
    };
  }
}`;
}

function reduceWgsl(D: number, stat: ChannelStat): string {
  return /* wgsl */ `${PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> Partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
@compute @workgroup_size(${Math.min(D, THREADS)})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) d: u32) {
  let bh = wid.y * P.heads + wid.x;
  var t = 0.0;
  for (var c = 0u; c < P.chunks; c++) { t = ${stat === 'mean' ? 't + ' : 'max(t, '}Partial[(bh * P.chunks + c) * ${D}u + d]${stat === 'mean' ? '' : ')'}; }
  Out[bh * ${D}u + d] = ${stat === 'mean' ? 't / f32(max(P.tokens, 1u))' : 't'};
}`;
}

/**
 * Records the statistic of x ([B,H,N,D] in `layout`, float16/float32) into a new float32 [B, H, D]
 * tensor; with `mean`, 'absmax' is taken of x − mean.
 */
export function recordChannelStatGpu(
  x: GpuTensor,
  layout: 'HND' | 'NHD',
  stat: ChannelStat,
  pass: GPUComputePassEncoder,
  mean?: GpuTensor<'float32'>,
): { out: GpuTensor<'float32'>; release: () => void } {
  if (x.dtype !== 'float16' && x.dtype !== 'float32') {
    throw new UnsupportedOptionError(`GPU channel statistics take float16 or float32; got ${x.dtype}`);
  }
  const [b0, a, c0, D] = x.shape;
  const [B, H, N] = layout === 'HND' ? [b0, a, c0] : [b0, c0, a];
  if (D > THREADS)
    throw new UnsupportedOptionError(`GPU channel statistics support head dims up to ${THREADS}; got ${D}`);
  const runtime = x.runtime;
  const chunks = Math.max(1, Math.ceil(N / STAT_CHUNK));
  const st = layoutStrides(layout, H, N, D);
  const params = uniformBuffer(
    runtime,
    new Uint32Array([H, N, st.token, st.head, st.batch, chunks, mean ? 1 : 0, 0]).buffer,
    'channel stat params',
  );
  const partial = emptyGpu(runtime, [B, H, chunks, D], 'float32', 'channel stat partials');
  const out = emptyGpu(runtime, [B, H, D], 'float32', `token ${stat}`);
  const meanInput = optionalInput(runtime, mean, 'no mean');
  const input = x.dtype === 'float16' ? 'f16' : 'f32';
  recordDispatch(
    runtime,
    pass,
    partialWgsl(input, D, stat),
    [params, x.buffer, meanInput.buffer, partial.buffer],
    [chunks, H, B],
  );
  recordDispatch(runtime, pass, reduceWgsl(D, stat), [params, partial.buffer, out.buffer], [H, B, 1]);
  return {
    out,
    release: () => {
      params.destroy();
      partial.destroy();
      meanInput.release();
    },
  };
}

/**
 * Records the mean of each block of `blockSize` consecutive tokens of x per (batch, head, channel)
 * into a new float32 [B, H, ⌈N/blockSize⌉, D] tensor, a partial last block averaging its valid tokens
 * (quant/smoothing.ts subtractBlockMeans; the sums are f32 here, float64 there).
 */
export function recordBlockMeanGpu(
  x: GpuTensor,
  layout: 'HND' | 'NHD',
  blockSize: number,
  pass: GPUComputePassEncoder,
): { out: GpuTensor<'float32'>; release: () => void } {
  if (x.dtype !== 'float16' && x.dtype !== 'float32') {
    throw new UnsupportedOptionError(`GPU block means take float16 or float32; got ${x.dtype}`);
  }
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) {
    throw new UnsupportedOptionError(`blockSize must be a positive integer; got ${String(blockSize)}`);
  }
  const [b0, a, c0, D] = x.shape;
  const [B, H, N] = layout === 'HND' ? [b0, a, c0] : [b0, c0, a];
  if (D > THREADS)
    throw new UnsupportedOptionError(`GPU block means support head dims up to ${THREADS}; got ${D}`);
  const runtime = x.runtime;
  const blocks = Math.ceil(N / blockSize);
  const st = layoutStrides(layout, H, N, D);
  const params = uniformBuffer(
    runtime,
    new Uint32Array([H, N, st.token, st.head, st.batch, blocks, 0, 0]).buffer,
    'block mean params',
  );
  const out = emptyGpu(runtime, [B, H, blocks, D], 'float32', 'block means');
  const noMean = optionalInput(runtime, undefined, 'no mean');
  if (blocks > 0) {
    recordDispatch(
      runtime,
      pass,
      partialWgsl(x.dtype === 'float16' ? 'f16' : 'f32', D, 'mean', blockSize, true),
      [params, x.buffer, noMean.buffer, out.buffer],
      [blocks, H, B],
    );
  }
  return {
    out,
    release: () => {
      params.destroy();
      noMean.release();
    },
  };
}
