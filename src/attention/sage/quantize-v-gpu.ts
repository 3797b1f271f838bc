/**
 * SageAttention's V preprocessing on WebGPU: per-channel FP8/INT8 quantization (SA2 §3.3;
 * quant/channel-quant.ts has the rules): amax_c over all tokens of (V − v̄), δ_V[c] = amax_c/scaleMax,
 * code = format(v · (scaleMax/amax_c)), nearest-even and saturating; an all-zero channel gives scale 0
 * and codes 0. Matches the CPU quantizer within float rounding (WGSL's f32 division).
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
import { STAT_CHUNK, recordChannelStatGpu } from './channel-stats-gpu.js';
import type { VCodeFormat } from '../flash-wgsl-formats.js';

const THREADS = 256;

/** encodeV(x): the one-byte code of x in the format, nearest-even, saturating at the format's max. */
const ENCODE_WGSL: Record<VCodeFormat, string> = {
  float8_e4m3fn: `
fn encodeV(x: f32) -> u32 {
  let s = select(0u, 0x80u, x < 0.0);
  let a = min(abs(x), 448.0);
  if (a < 0.015625) { return s | u32(round(a * 512.0)); }
  let r = (bitcast<u32>(a) + 0x7ffffu + ((bitcast<u32>(a) >> 20u) & 1u)) & 0xfff00000u;
  return s | min((((r >> 23u) - 120u) << 3u) | ((r >> 20u) & 7u), 0x7eu);
}`,
  float8_e5m2: `
fn encodeV(x: f32) -> u32 {
  let s = select(0u, 0x80u, x < 0.0);
  let a = min(abs(x), 57344.0);
  if (a < 6.103515625e-05) { return s | u32(round(a * 65536.0)); }
  let r = (bitcast<u32>(a) + 0xfffffu + ((bitcast<u32>(a) >> 21u) & 1u)) & 0xffe00000u;
  return s | min((((r >> 23u) - 112u) << 2u) | ((r >> 21u) & 3u), 0x7bu);
}`,
  int8: `
fn encodeV(x: f32) -> u32 { return u32(i32(clamp(round(x), -127.0, 127.0))) & 0xffu; }`,
};

/**
 * Encodes V with its per-channel multipliers scaleMax/amax (0 for an all-zero channel), one workgroup
 * per chunk of tokens, head and batch, four channels of one token per word; the first chunk's
 * workgroup also writes the scales amax/scaleMax.
 */
function encodeWgsl(input: 'f16' | 'f32', D: number, format: VCodeFormat): string {
  return /* wgsl */ `
struct U { heads: u32, tokens: u32, tokenStride: u32, headStride: u32, batchStride: u32, useMean: u32, scaleMax: f32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Mean: array<f32>;
@group(0) @binding(3) var<storage, read> Amax: array<f32>;
@group(0) @binding(4) var<storage, read_write> Codes: array<u32>;
@group(0) @binding(5) var<storage, read_write> Scales: array<f32>;
var<workgroup> mul: array<f32, ${D}>;
var<workgroup> shift: array<f32, ${D}>;
${ENCODE_WGSL[format]}
${floatLoaderWgsl('ld', 'X', input)}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let c = wid.x;
  let h = wid.y;
  let b = wid.z;
  let base = b * P.batchStride + h * P.headStride;
  let c0 = (b * P.heads + h) * ${D}u;
  if (tid < ${D}u) {
    let amax = Amax[c0 + tid];
    mul[tid] = select(0.0, P.scaleMax / amax, amax > 0.0);
    shift[tid] = select(0.0, Mean[c0 + tid], P.useMean != 0u);
    if (c == 0u) { Scales[c0 + tid] = amax / P.scaleMax; }
  }
  workgroupBarrier();
  let n0 = c * ${STAT_CHUNK}u;
  for (var e = tid; e < ${STAT_CHUNK * (D / 4)}u; e += ${THREADS}u) {
    let n = n0 + e / ${D / 4}u;
    if (n < P.tokens) {
      let d0 = (e % ${D / 4}u) * 4u;
      var word = 0u;
      for (var i = 0u; i < 4u; i++) {
        word |= encodeV((ld(base + n * P.tokenStride + d0 + i) - shift[d0 + i]) * mul[d0 + i]) << (8u * i);
      }
      Codes[(base + n * P.tokenStride + d0) / 4u] = word;
    }
  }
}`;
}

/** Records per-channel quantization of V; returns codes (V's layout, dtype = format) and scales [B, H, D]. */
export function recordQuantizeVGpu(
  v: GpuTensor,
  opts: { layout: 'HND' | 'NHD'; format: VCodeFormat; scaleMax: number; mean?: GpuTensor<'float32'> },
  pass: GPUComputePassEncoder,
): { codes: GpuTensor; scales: GpuTensor<'float32'>; release: () => void } {
  const [b, x, y, D] = v.shape;
  const [B, H, N] = opts.layout === 'HND' ? [b, x, y] : [b, y, x];
  if (D % 4 !== 0 || D > THREADS) {
    throw new UnsupportedOptionError(
      `GPU V quantization needs a head dim that is a multiple of 4 up to ${THREADS}; got ${D}`,
    );
  }
  if (v.dtype !== 'float16' && v.dtype !== 'float32') {
    throw new UnsupportedOptionError(`GPU V quantization takes float16 or float32 V; got ${v.dtype}`);
  }
  const runtime = v.runtime;
  const codes = emptyGpu(runtime, v.shape, opts.format, 'V codes', 512);
  const scales = emptyGpu(runtime, [B, H, D], 'float32', 'V scales');
  const st = layoutStrides(opts.layout, H, N, D);
  const amax = recordChannelStatGpu(v, opts.layout, 'absmax', pass, opts.mean);
  const words = new ArrayBuffer(32);
  new Uint32Array(words).set([H, N, st.token, st.head, st.batch, opts.mean ? 1 : 0]);
  new Float32Array(words)[6] = opts.scaleMax;
  const params = uniformBuffer(runtime, words, 'V quantizer params');
  const meanInput = optionalInput(runtime, opts.mean, 'no mean');
  const code = encodeWgsl(v.dtype === 'float16' ? 'f16' : 'f32', D, opts.format);
  const mean = meanInput.buffer;
  recordDispatch(
    runtime,
    pass,
    code,
    [params, v.buffer, mean, amax.out.buffer, codes.buffer, scales.buffer],
    [Math.max(1, Math.ceil(N / STAT_CHUNK)), H, B],
  );
  return {
    codes,
    scales,
    release: () => {
      params.destroy();
      meanInput.release();
      amax.release();
      amax.out.destroy();
    },
  };
}
