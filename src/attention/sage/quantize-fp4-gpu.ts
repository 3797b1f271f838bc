/**
 * SageAttention3's microscaled FP4 quantization on WebGPU: NVFP4 (16 elements, E4M3 scale amax/6)
 * and MXFP4 (32 elements, E8M0 scale by the 'truncation-free' or 'ocp' rule), with the groups, scale
 * layouts and element rule of quant/microscaling.ts (sageattention.md §7.1–7.3): groups along the head
 * dim for Q and K (scales [B, H, N, ⌈D/g⌉]) or along tokens for V (scales [B, H, ⌈N/g⌉, D]), codes
 * one per byte in the input layout, an optional mean subtracted first (K smoothing, Q block smoothing,
 * V smoothing).
 *
 * Given the same input and mean, codes and scales equal the CPU quantizer's bit for bit, because no
 * step depends on WGSL's inexact division or on summation order:
 * - amax is a max of |x − mean| (one f32 subtraction, as on the CPU), taken on the bits;
 * - NVFP4's s̃ = E4M3(fround(amax/6)) is found without dividing: the E4M3 value nearest amax/6 is
 *   the code c with 3·(v(c−1) + v(c)) < amax ≤ 3·(v(c) + v(c+1)), ties to the even code; the
 *   thresholds (six times E4M3's midpoints) are exact f32 numbers, and fround never moves amax/6
 *   across one (a quotient by 6 that is not a midpoint lies more than half an ulp from it);
 * - its inverse fround(1/s̃) comes from a table of the 126 E4M3 values' inverses;
 * - MXFP4's exponent is read off amax's bits (⌈log2(amax/6)⌉ is E − 2, or E − 1 when the mantissa
 *   exceeds 1.5), and 2^−e is exact;
 * - the element code is E2M1_RN_satfinite(x · inv), one correctly rounded f32 product, then fixed
 *   thresholds; the sign bit is x's (−0.1 gives the code of −0, 0x8, as ml_dtypes does).
 * A group holding NaN or ±inf (seen on the bits, not by comparisons WGSL may assume away) gets scale
 * NaN and codes 0. Subnormal f32 inputs (|x| < 2^−126) may be flushed to zero by a GPU.
 *
 * Two dispatches: one invocation per group writes the scale and the inverse, then one invocation per
 * four codes (one u32 word) encodes them, so groups that end inside a word (D or N not a multiple of
 * 4) never share a word between invocations.
 */
import { DTypeError, UnsupportedOptionError } from '../../core/errors.js';
import { decode } from '../../numerics/decode.js';
import {
  floatArrayElement,
  floatLoaderWgsl,
  optionalInput,
  recordDispatch,
  uniformBuffer,
} from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import type { MicroscaleAxis, MicroscaleFormat } from '../../quant/microscaling.js';
import { microscaleGroupSize } from '../../quant/microscaling.js';
import { MX_SCALE_RULES } from '../../quant/mxfp4.js';
import type { MxScaleRule } from '../../quant/types.js';
import { layoutStrides } from '../flash-params.js';

const THREADS = 64;

export interface GpuFp4QuantizeOptions {
  layout: 'HND' | 'NHD';
  format: MicroscaleFormat;
  /** MXFP4 only (default 'truncation-free'; quant/mxfp4.ts). */
  scaleRule?: MxScaleRule;
  /** 'channels' for Q and K, 'tokens' for V (quant/microscaling.ts). */
  axis: MicroscaleAxis;
  /**
   * A float32 mean to subtract first: [B, H, D] (one per head: K or V smoothing) or
   * [B, H, ⌈N/meanBlock⌉, D] with `meanBlock` (Q block smoothing, sageattention.md §7.3).
   */
  mean?: GpuTensor<'float32'>;
  /** Tokens per row of `mean` (the Q smoothing block); omit for one mean per head. */
  meanBlock?: number;
}

/** fround(1/v) of every positive E4M3 value v (code 1..126) as f32 bits; code 0 (s̃ = 0) maps to 0. */
function nvfp4InverseTable(): string {
  const values = decode(
    'float8_e4m3fn',
    Uint8Array.from({ length: 127 }, (_, c) => c),
  );
  const bits = new Uint32Array(new Float32Array(Array.from(values, (v) => (v > 0 ? 1 / v : 0))).buffer);
  return `const NVFP4_INV = array<u32, 127>(${Array.from(bits, (b) => `${b}u`).join(', ')});`;
}

/** WGSL: scaleOf(amaxBits) → vec2<u32>(scale bits, inverse bits) for the format and rule. */
function scaleWgsl(format: MicroscaleFormat, rule: MxScaleRule): string {
  if (format === 'nvfp4') {
    return /* wgsl */ `
${nvfp4InverseTable()}
fn e4m3Value(c: u32) -> f32 {
  let e = c >> 3u;
  let m = c & 7u;
  return select(f32(m) * 0.001953125, ldexp(f32(8u + m), i32(e) - 10), e > 0u);
}
// 3·(v(c) + v(c+1)): six times the midpoint of two neighbouring E4M3 values, exact in f32
fn threshold(c: u32) -> f32 { return 3.0 * (e4m3Value(c) + e4m3Value(c + 1u)); }
fn scaleOf(amaxBits: u32) -> vec2<u32> {
  let amax = bitcast<f32>(amaxBits);
  var lo = 0u;
  var hi = 126u;
  loop {
    if (lo >= hi) { break; }
    let mid = (lo + hi) / 2u;
    if (threshold(mid) < amax) { lo = mid + 1u; } else { hi = mid; }
  }
  if (lo < 126u && (lo & 1u) == 1u && amax == threshold(lo)) { lo += 1u; }
  return vec2<u32>(bitcast<u32>(e4m3Value(lo)), NVFP4_INV[lo]);
}`;
  }
  // E8M0: 2^e as f32 bits, including 2^-127 (a subnormal) at the bottom of E8M0's range
  const exponent =
    rule === 'truncation-free'
      ? 'ex - 2 + select(0, 1, frac > 0x400000u)' // the smallest e with 6·2^e ≥ amax
      : 'ex - 2'; // ⌊log2 amax⌋ − 2 (E2M1's emax)
  return /* wgsl */ `
fn pow2Bits(e: i32) -> u32 { return select(0x00400000u, u32(e + 127) << 23u, e > -127); }
fn scaleOf(amaxBits: u32) -> vec2<u32> {
  // TetraJet's stand-in for a zero amax (quant/mxfp4.ts MX_ZERO_AMAX); its exponent is the same in f32
  let bits = select(amaxBits, bitcast<u32>(1e-8f), amaxBits == 0u);
  var ex: i32;
  var frac: u32;
  if ((bits >> 23u) == 0u) {
    let top = 31u - countLeadingZeros(bits);
    ex = i32(top) - 149;
    frac = (bits << (23u - top)) & 0x7fffffu;
  } else {
    ex = i32(bits >> 23u) - 127;
    frac = bits & 0x7fffffu;
  }
  let e = clamp(${exponent}, -127, 127);
  return vec2<u32>(pow2Bits(e), pow2Bits(-e));
}`;
}

const PARAMS_WGSL = /* wgsl */ `
struct U {
  batch: u32, heads: u32, tokens: u32, headDim: u32,
  tokenStride: u32, headStride: u32, batchStride: u32, groupsAlong: u32,
  groups: u32, elements: u32, meanRows: u32, meanBlock: u32,
  useMean: u32, nhd: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> P: U;`;

/** Shared helpers: the element's value after the mean, and the linear invocation index. */
function commonWgsl(input: 'f16' | 'f32'): string {
  return /* wgsl */ `${PARAMS_WGSL}
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> Mean: array<f32>;
${floatLoaderWgsl('ld', 'X', input)}
fn valueAt(b: u32, h: u32, n: u32, d: u32) -> f32 {
  let x = ld(b * P.batchStride + h * P.headStride + n * P.tokenStride + d);
  if (P.useMean == 0u) { return x; }
  let row = (b * P.heads + h) * P.meanRows + select(0u, n / max(P.meanBlock, 1u), P.meanBlock > 0u);
  return x - Mean[row * P.headDim + d];
}
fn linearId(gid: vec3<u32>, groups: vec3<u32>) -> u32 { return gid.x + gid.y * groups.x * ${THREADS}u; }`;
}

/** Pass 1: one invocation per group → Scales (f32 bits) and Inv (fround(1/scale) bits, 0: no codes). */
function scalesWgsl(
  input: 'f16' | 'f32',
  format: MicroscaleFormat,
  rule: MxScaleRule,
  axis: MicroscaleAxis,
): string {
  const g = microscaleGroupSize(format);
  // (b, h, token, channel) of element i of group q
  const locate =
    axis === 'channels'
      ? `let n = (q / P.groupsAlong) % P.tokens;
  let bh = q / (P.groupsAlong * P.tokens);
  let first = (q % P.groupsAlong) * ${g}u;
  let count = min(${g}u, P.headDim - first);`
      : `let d = q % P.headDim;
  let bh = q / (P.headDim * P.groupsAlong);
  let first = ((q / P.headDim) % P.groupsAlong) * ${g}u;
  let count = min(${g}u, P.tokens - first);`;
  const element =
    axis === 'channels'
      ? 'valueAt(bh / P.heads, bh % P.heads, n, first + i)'
      : 'valueAt(bh / P.heads, bh % P.heads, first + i, d)';
  return /* wgsl */ `${commonWgsl(input)}
@group(0) @binding(3) var<storage, read_write> Scales: array<u32>;
@group(0) @binding(4) var<storage, read_write> Inv: array<u32>;
${scaleWgsl(format, rule)}
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = linearId(gid, nwg);
  if (q >= P.groups) { return; }
  ${locate}
  var amaxBits = 0u;
  var finite = true;
  for (var i = 0u; i < count; i++) {
    let a = bitcast<u32>(${element}) & 0x7fffffffu;
    finite = finite && a < 0x7f800000u;
    amaxBits = max(amaxBits, a);
  }
  if (!finite) {
    Scales[q] = 0x7fc00000u;
    Inv[q] = 0u;
    return;
  }
  let s = scaleOf(amaxBits);
  Scales[q] = s.x;
  Inv[q] = s.y;
}`;
}

/** Pass 2: one invocation per word of four codes, in the input's storage order. */
function codesWgsl(input: 'f16' | 'f32', format: MicroscaleFormat, axis: MicroscaleAxis): string {
  const g = microscaleGroupSize(format);
  const group =
    axis === 'channels'
      ? `((b * P.heads + h) * P.tokens + n) * P.groupsAlong + d / ${g}u`
      : `((b * P.heads + h) * P.groupsAlong + n / ${g}u) * P.headDim + d`;
  return /* wgsl */ `${commonWgsl(input)}
@group(0) @binding(3) var<storage, read> Inv: array<u32>;
@group(0) @binding(4) var<storage, read_write> Codes: array<u32>;
// E2M1_RN_satfinite: the count of rounding thresholds below |y| (ties to the even code), sign from y
fn e2m1Code(y: f32) -> u32 {
  let a = abs(y);
  let c = select(0u, 1u, a > 0.25) + select(0u, 1u, a >= 0.75) + select(0u, 1u, a > 1.25) +
    select(0u, 1u, a >= 1.75) + select(0u, 1u, a > 2.5) + select(0u, 1u, a >= 3.5) + select(0u, 1u, a > 5.0);
  return c | ((bitcast<u32>(y) >> 28u) & 8u);
}
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = linearId(gid, nwg);
  if (w * 4u >= P.elements) { return; }
  var word = 0u;
  for (var i = 0u; i < 4u; i++) {
    let e = w * 4u + i;
    if (e < P.elements) {
      let d = e % P.headDim;
      let t = e / P.headDim;
      var b: u32;
      var h: u32;
      var n: u32;
      if (P.nhd != 0u) {
        h = t % P.heads;
        n = (t / P.heads) % P.tokens;
        b = t / (P.heads * P.tokens);
      } else {
        n = t % P.tokens;
        h = (t / P.tokens) % P.heads;
        b = t / (P.tokens * P.heads);
      }
      let inv = bitcast<f32>(Inv[${group}]);
      if (inv > 0.0) { word |= e2m1Code(valueAt(b, h, n, d) * inv) << (8u * i); }
    }
  }
  Codes[w] = word;
}`;
}

function dims(t: GpuTensor, layout: 'HND' | 'NHD') {
  const [b, x, y, d] = t.shape;
  return layout === 'HND' ? { B: b, H: x, N: y, D: d } : { B: b, H: y, N: x, D: d };
}

/**
 * Records microscaled FP4 quantization of x ([B,H,N,D] in `layout`, float16/float32); returns
 * float4_e2m1fn codes (one per byte, x's layout) and float32 scales in quantizeMicroscaled's layout.
 */
export function recordQuantizeFp4Gpu(
  x: GpuTensor,
  opts: GpuFp4QuantizeOptions,
  pass: GPUComputePassEncoder,
): { codes: GpuTensor<'float4_e2m1fn'>; scales: GpuTensor<'float32'>; release: () => void } {
  if (x.dtype !== 'float16' && x.dtype !== 'float32') {
    throw new DTypeError(`GPU FP4 quantization takes float16 or float32 tensors; got ${x.dtype}`);
  }
  if (opts.format !== 'nvfp4' && opts.format !== 'mxfp4') {
    throw new UnsupportedOptionError(`format must be 'nvfp4' or 'mxfp4'; got ${JSON.stringify(opts.format)}`);
  }
  if (opts.axis !== 'channels' && opts.axis !== 'tokens') {
    throw new UnsupportedOptionError(`axis must be 'channels' or 'tokens'; got ${JSON.stringify(opts.axis)}`);
  }
  const rule = opts.scaleRule ?? 'truncation-free';
  if (opts.format === 'nvfp4' && opts.scaleRule !== undefined) {
    throw new UnsupportedOptionError('scaleRule applies to MXFP4 only; NVFP4 scales are amax/6 in E4M3');
  }
  if (!MX_SCALE_RULES.includes(rule)) {
    throw new UnsupportedOptionError(
      `MXFP4 scaleRule must be 'truncation-free' or 'ocp'; got ${JSON.stringify(opts.scaleRule)}`,
    );
  }
  const { B, H, N, D } = dims(x, opts.layout);
  const g = microscaleGroupSize(opts.format);
  const groupsAlong = Math.ceil((opts.axis === 'channels' ? D : N) / g);
  const scaleShape = opts.axis === 'channels' ? [B, H, N, groupsAlong] : [B, H, groupsAlong, D];
  const groups = scaleShape.reduce((a, s) => a * s, 1);
  const meanBlock = opts.meanBlock ?? 0;
  const meanRows = meanBlock > 0 ? Math.ceil(N / meanBlock) : 1;
  if (opts.mean) {
    const want = meanBlock > 0 ? [B, H, meanRows, D] : [B, H, D];
    if (opts.mean.dtype !== 'float32' || opts.mean.shape.join() !== want.join()) {
      throw new UnsupportedOptionError(
        `mean must be float32 [${want.join(', ')}]; got ${opts.mean.dtype} [${opts.mean.shape.join(', ')}]`,
      );
    }
  }
  const runtime = x.runtime;
  const codes = emptyGpu(runtime, x.shape, 'float4_e2m1fn', 'fp4 codes', 512);
  const scales = emptyGpu(runtime, scaleShape, 'float32', 'fp4 scales');
  const inv = emptyGpu(runtime, scaleShape, 'float32', 'fp4 inverse scales');
  const st = layoutStrides(opts.layout, H, N, D);
  const params = uniformBuffer(
    runtime,
    new Uint32Array([
      B,
      H,
      N,
      D,
      st.token,
      st.head,
      st.batch,
      groupsAlong,
      groups,
      x.size,
      meanRows,
      meanBlock,
      opts.mean ? 1 : 0,
      opts.layout === 'NHD' ? 1 : 0,
      0,
      0,
    ]).buffer,
    'fp4 quantizer params',
  );
  const meanInput = optionalInput(runtime, opts.mean, 'no mean');
  const input = x.dtype === 'float16' ? 'f16' : 'f32';
  if (groups > 0) {
    recordDispatch(
      runtime,
      pass,
      scalesWgsl(input, opts.format, rule, opts.axis),
      [params, x.buffer, meanInput.buffer, scales.buffer, inv.buffer],
      Math.ceil(groups / THREADS),
    );
    recordDispatch(
      runtime,
      pass,
      codesWgsl(input, opts.format, opts.axis),
      [params, x.buffer, meanInput.buffer, inv.buffer, codes.buffer],
      Math.ceil(x.size / 4 / THREADS),
    );
  }
  return {
    codes,
    scales,
    release: () => {
      params.destroy();
      inv.destroy();
      meanInput.release();
    },
  };
}
