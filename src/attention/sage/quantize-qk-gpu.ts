/**
 * SageAttention's Q/K preprocessing on WebGPU: the token mean of K (smoothing, SA1 §4.2) and INT8
 * group quantization for every granularity (of Q minus its block means too, SA2 §3.1), with the scale rules of quant/int-group-quant.ts
 * (per-thread δ = amax/qmax + 1e-7, otherwise δ = max(amax, 1e-7)/qmax, qmax 127 or 7 for INT4; σ·log2e folded into per-block
 * Q), codes in the input layout and scales in the reference layout. Matches the CPU quantizer within
 * float rounding: WGSL's f32 division and the order of the mean's summation may move a value that
 * sits within an ulp of a rounding boundary by one code.
 */
import { DTypeError, UnsupportedOptionError } from '../../core/errors.js';
import {
  floatArrayElement,
  floatLoaderWgsl,
  recordDispatch,
  uniformBuffer,
  optionalInput,
} from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import type { QKGranularity, QuantRounding } from '../../quant/types.js';
import type { ScaleGroupRule } from '../flash-params.js';
import { recordChannelStatGpu } from './channel-stats-gpu.js';
import { layoutStrides } from '../flash-params.js';

const QUANT_THREADS = 128;

/**
 * INT8 group quantization: one workgroup per (segment of tokens, head, batch); a segment holds whole
 * groups (`div` tokens, or 32 tokens of one-token groups). Group amax by atomicMax on the bits of |y|
 * (non-negative floats order like their bit patterns) of each invocation's running max, then δ, then
 * codes packed four to a word.
 */
function quantWgsl(
  input: 'f16' | 'f32',
  D: number,
  groupsPerSegment: number,
  rounding: QuantRounding,
  perThreadEps: boolean,
  qmax: number,
): string {
  const W = D / 4;
  return /* wgsl */ `
struct U {
  heads: u32, tokens: u32, tokenStride: u32, headStride: u32,
  batchStride: u32, div: u32, mul: u32, mod8Div: u32,
  groups: u32, segTokens: u32, prescale: f32, useMean: u32,
  meanRows: u32, meanBlock: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> Codes: array<u32>;
@group(0) @binding(4) var<storage, read_write> Scales: array<f32>;
var<workgroup> amax: array<atomic<u32>, ${groupsPerSegment}>;
var<workgroup> scale: array<f32, ${groupsPerSegment}>;
${floatLoaderWgsl('ld', 'X', input)}
fn groupOf(n: u32) -> u32 {
  return (n / P.div) * P.mul + select(0u, (n % 8u) / max(P.mod8Div, 1u), P.mod8Div > 0u);
}
// the mean row of token n: one per head (K smoothing) or one per meanBlock tokens (Q block smoothing)
fn value(base: u32, n: u32, d: u32, bh: u32) -> f32 {
  let meanRow = bh * P.meanRows + select(0u, n / max(P.meanBlock, 1u), P.meanBlock > 0u);
  let m = select(0.0, Mean[meanRow * ${D}u + d], P.useMean != 0u);
  return (ld(base + n * P.tokenStride + d) - m) * P.prescale;
}
@compute @workgroup_size(${QUANT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let b = wid.z;
  let h = wid.y;
  let n0 = wid.x * P.segTokens;
  let g0 = groupOf(n0);
  let base = b * P.batchStride + h * P.headStride;
  let bh = b * P.heads + h;
  if (tid < ${groupsPerSegment}u) { atomicStore(&amax[tid], 0u); }
  workgroupBarrier();
  let nEnd = min(n0 + P.segTokens, P.tokens);
  // a running max per invocation, flushed by one atomic whenever the group changes (once per
  // invocation for per-block and per-warp groups); max is order-free, so the bits are the same
  var runGroup = 0xffffffffu;
  var runMax = 0u;
  for (var e = tid; e < P.segTokens * ${D}u; e += ${QUANT_THREADS}u) {
    let n = n0 + e / ${D}u;
    if (n < nEnd) {
      let g = groupOf(n) - g0;
      if (g != runGroup) {
        if (runGroup != 0xffffffffu) { atomicMax(&amax[runGroup], runMax); }
        runGroup = g;
        runMax = 0u;
      }
      runMax = max(runMax, bitcast<u32>(abs(value(base, n, e % ${D}u, bh))));
    }
  }
  if (runGroup != 0xffffffffu) { atomicMax(&amax[runGroup], runMax); }
  workgroupBarrier();
  if (tid < ${groupsPerSegment}u && g0 + tid < P.groups) {
    let a = bitcast<f32>(atomicLoad(&amax[tid]));
    let s = ${perThreadEps ? `a / ${qmax}.0 + 1e-7` : `max(a, 1e-7) / ${qmax}.0`};
    scale[tid] = s;
    Scales[(b * P.heads + h) * P.groups + g0 + tid] = s;
  }
  workgroupBarrier();
  for (var e = tid; e < P.segTokens * ${W}u; e += ${QUANT_THREADS}u) {
    let n = n0 + e / ${W}u;
    if (n < nEnd) {
      let s = scale[groupOf(n) - g0];
      var word = 0u;
      for (var i = 0u; i < 4u; i++) {
        let x = value(base, n, (e % ${W}u) * 4u + i, bh) / s;
        ${
          rounding === 'half-away'
            ? `let c = clamp(trunc(x + 0.5 * sign(x)), -${qmax}.0, ${qmax}.0);`
            : `let c = clamp(round(x), -${qmax}.0, ${qmax}.0);`
        }
        word |= (u32(i32(c)) & 0xffu) << (8u * i);
      }
      Codes[(base + n * P.tokenStride) / 4u + e % ${W}u] = word;
    }
  }
}`;
}

export interface GpuInt8QuantizeOptions {
  layout: 'HND' | 'NHD';
  /** 8 (codes in [−127, 127], δ = amax/127) or 4 (codes in [−7, 7], δ = amax/7, one per byte). Default 8. */
  bits?: 8 | 4;
  granularity: QKGranularity;
  rule: ScaleGroupRule;
  rounding: QuantRounding;
  /** Multiplier applied before quantizing (σ·log2e for per-block Q). */
  prescale: number;
  /**
   * Mean to subtract first: [B, H, D] float32 (K smoothing), or [B, H, ⌈N/meanBlock⌉, D] with
   * `meanBlock` (Q block smoothing, SA2 §3.1; smooth-q-gpu.ts).
   */
  mean?: GpuTensor<'float32'>;
  /** Tokens per row of `mean`; omit for one mean per head. */
  meanBlock?: number;
}

function dims(t: GpuTensor, layout: 'HND' | 'NHD') {
  const [b, x, y, d] = t.shape;
  return layout === 'HND' ? { B: b, H: x, N: y, D: d } : { B: b, H: y, N: x, D: d };
}

function inputKind(t: GpuTensor): 'f16' | 'f32' {
  if (t.dtype === 'float16') return 'f16';
  if (t.dtype === 'float32') return 'f32';
  throw new DTypeError(`GPU quantization takes float16 or float32 tensors; got ${t.dtype}`);
}

/** Records the per-(batch, head) token mean of x into a new float32 [B, H, D] tensor (channel-stats-gpu.ts). */
export function recordTokenMeanGpu(
  x: GpuTensor,
  layout: 'HND' | 'NHD',
  pass: GPUComputePassEncoder,
): { mean: GpuTensor<'float32'>; release: () => void } {
  const { out, release } = recordChannelStatGpu(x, layout, 'mean', pass);
  return { mean: out, release };
}

/** Records INT8 group quantization of x; returns codes (int8, x's layout) and scales [B, H, groups]. */
export function recordQuantizeInt8Gpu(
  x: GpuTensor,
  opts: GpuInt8QuantizeOptions,
  pass: GPUComputePassEncoder,
): { codes: GpuTensor<'int8'>; scales: GpuTensor<'float32'>; release: () => void } {
  const { B, H, N, D } = dims(x, opts.layout);
  if (D % 4 !== 0)
    throw new UnsupportedOptionError(
      `GPU INT8 quantization needs a head dim that is a multiple of 4; got ${D}`,
    );
  const runtime = x.runtime;
  const { rule } = opts;
  // a segment is one `div` of tokens, or 32 one-token groups for per-token
  const segTokens = rule.div === 1 ? 32 : rule.div;
  const groupsPerSegment = (segTokens / rule.div) * rule.mul;
  const codes = emptyGpu(runtime, x.shape, 'int8', 'int8 codes', 512);
  const scales = emptyGpu(runtime, [B, H, rule.groups], 'float32', 'int8 scales');
  const st = layoutStrides(opts.layout, H, N, D);
  const words = new ArrayBuffer(64);
  new Uint32Array(words).set([
    H,
    N,
    st.token,
    st.head,
    st.batch,
    rule.div,
    rule.mul,
    rule.mod8Div,
    rule.groups,
    segTokens,
  ]);
  new Float32Array(words)[10] = opts.prescale;
  new Uint32Array(words)[11] = opts.mean ? 1 : 0;
  const meanBlock = opts.meanBlock ?? 0;
  new Uint32Array(words).set([meanBlock > 0 ? Math.ceil(N / meanBlock) : 1, meanBlock], 12);
  const params = uniformBuffer(runtime, words, 'int8 quantizer params');
  const meanInput = optionalInput(runtime, opts.mean, 'no mean');
  const meanBuf = meanInput.buffer;
  const code = quantWgsl(
    inputKind(x),
    D,
    groupsPerSegment,
    opts.rounding,
    opts.granularity === 'per-thread',
    opts.bits === 4 ? 7 : 127,
  );
  // every scale group gets a workgroup, also the ones past N in the last tile (their scale is the guard)
  recordDispatch(
    runtime,
    pass,
    code,
    [params, x.buffer, meanBuf, codes.buffer, scales.buffer],
    [Math.ceil(rule.groups / groupsPerSegment), H, B],
  );
  return {
    codes,
    scales,
    release: () => {
      params.destroy();
      meanInput.release();
    },
  };
}
