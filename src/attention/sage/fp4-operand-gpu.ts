/**
 * Microscaled FP4 Q and K as operands of the f16 attention kernels: WGSL has no FP4 types and Dawn's
 * subgroup matrices none either (shared/research/ts_webgpu_ecosystem.md §1), so the codes are decoded
 * to f16 with their group scale applied, once per call. The kernels' f16 Q·Kᵀ then sums exactly the
 * terms q̂·k̂ of the CPU kernel's per-group sums (kernel-cpu.ts), in f32:
 * - NVFP4: an E2M1 value times its E4M3 scale has at most 6 significant bits in [2^-10, 2688], so
 *   code·scale is exact in f16 (flash-wgsl-formats.ts FP4_WGSL); the token factors are 1.
 * - MXFP4: E8M0 scales span 2^±127, beyond f16. Each token keeps the power of two of its largest
 *   group, 2^E, as a per-token factor (the kernels multiply logits by it, as they do INT8 scales), and
 *   its elements become code·2^(e_g − E), exact in f16 while e_g − E ≥ −23; elements of a group
 *   2^24 or more below the token's largest scale (2^−23 of the token's scale or less) become 0.
 *
 * Decoding K once rather than while staging each key tile saves the per-Q-block decode work (K is
 * staged ⌈Nq/blockQ⌉ times) at the price of reading 2 bytes per K element instead of 1. Decoding Q
 * while loading is not possible on the tensor-core tier, whose Q fragments are loaded from global
 * memory straight into subgroup matrices.
 */
import { DTypeError, ShapeError } from '../../core/errors.js';
import { recordDispatch, uniformBuffer } from '../../gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../../gpu/gpu-tensor.js';
import { MXFP4_GROUP_SIZE } from '../../quant/mxfp4.js';
import { NVFP4_GROUP_SIZE } from '../../quant/nvfp4.js';
import { FP4_WGSL } from '../flash-wgsl-formats.js';

const THREADS = 64;

export type Fp4QKFormat = 'nvfp4' | 'mxfp4';

export interface Fp4Operand {
  /** float4_e2m1fn codes (one per byte) in the attention layout. */
  codes: GpuTensor;
  /** Group scales [B, H, N, ⌈D/16⌉] (NVFP4) or [B, H, N, ⌈D/32⌉] (MXFP4), float32. */
  scales: GpuTensor;
}

/** One invocation per f16 pair (two channels of one token). */
function decodeWgsl(format: Fp4QKFormat, groups: number): string {
  const g = format === 'nvfp4' ? NVFP4_GROUP_SIZE : MXFP4_GROUP_SIZE;
  const mx = format === 'mxfp4';
  return /* wgsl */ `
struct U { heads: u32, tokens: u32, headDim: u32, nhd: u32, words: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> Codes: array<u32>;
@group(0) @binding(2) var<storage, read> Scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> Out: array<u32>;
@group(0) @binding(4) var<storage, read_write> Factors: array<f32>;${
    mx
      ? `
// the exponent field of a power-of-two scale; 2^-127 is the subnormal 0x00400000
fn expOf(s: f32) -> i32 { let b = bitcast<u32>(s); return select(i32(b >> 23u) - 127, -127, b == 0x00400000u); }`
      : ''
  }
${FP4_WGSL}
fn codeAt(e: u32) -> u32 { return (Codes[e >> 2u] >> (8u * (e & 3u))) & 0xfu; }
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = gid.x + gid.y * nwg.x * ${THREADS}u;
  if (w >= P.words) { return; }
  let e = 2u * w;
  let d = e % P.headDim;
  let t = e / P.headDim;
  // the token's (b, h, n): scales are in [B, H, N, groups] order whatever the layout
  var bhn: u32;
  if (P.nhd != 0u) {
    let h = t % P.heads;
    let bn = t / P.heads;
    bhn = ((bn / P.tokens) * P.heads + h) * P.tokens + bn % P.tokens;
  } else {
    bhn = t;
  }
  let s0 = bhn * ${groups}u;${
    mx
      ? `
  var top = -127;
  // a non-finite group's scale is NaN (the quantizer's mark); it poisons the whole token, as on the CPU
  var poison = 0.0;
  var finite = true;
  for (var i = 0u; i < ${groups}u; i++) {
    let s = Scales[s0 + i];
    if ((bitcast<u32>(s) & 0x7f800000u) == 0x7f800000u) {
      finite = false;
      poison = s;
    }
    top = max(top, expOf(s));
  }
  if (d == 0u) { Factors[bhn] = select(poison, ldexp(1.0, top), finite); }
  let f0 = select(poison, ldexp(1.0, expOf(Scales[s0 + d / ${g}u]) - top), finite);
  let f1 = select(poison, ldexp(1.0, expOf(Scales[s0 + (d + 1u) / ${g}u]) - top), finite);`
      : `
  if (d == 0u) { Factors[bhn] = 1.0; }
  let f0 = Scales[s0 + d / ${g}u];
  let f1 = Scales[s0 + (d + 1u) / ${g}u];`
  }
  Out[w] = pack2x16float(vec2<f32>(decodeFp4(codeAt(e)) * f0, decodeFp4(codeAt(e + 1u)) * f1));
}`;
}

/** A decode of an FP4 Q or K operand, re-recordable (benchmarks record a plan many times). */
export interface Fp4DecodePlan {
  /** The float16 values, in the codes' shape and layout. */
  values: GpuTensor<'float16'>;
  /** The per-token factors [B, H, N] the logits must be multiplied by: 2^E (MXFP4), 1 (NVFP4). */
  factors: GpuTensor<'float32'>;
  record(pass: GPUComputePassEncoder): void;
  /** Frees the parameters and both outputs. */
  destroy(): void;
}

/**
 * Plans the decode of an FP4 Q or K operand (nothing is recorded yet). `minBytes` sizes the values'
 * buffer for kernels whose loads reach past the last row (dense-gpu.ts).
 */
export function planDecodeFp4Gpu(
  x: Fp4Operand,
  format: Fp4QKFormat,
  layout: 'HND' | 'NHD',
  minBytes = 0,
): Fp4DecodePlan {
  if (x.codes.dtype !== 'float4_e2m1fn') {
    throw new DTypeError(`${format} Q/K codes must be float4_e2m1fn; got ${x.codes.dtype}`);
  }
  const [b0, a, c0, D] = x.codes.shape;
  const [B, H, N] = layout === 'HND' ? [b0, a, c0] : [b0, c0, a];
  const groups = Math.ceil(D / (format === 'nvfp4' ? NVFP4_GROUP_SIZE : MXFP4_GROUP_SIZE));
  if (x.scales.dtype !== 'float32' || x.scales.shape.join() !== [B, H, N, groups].join()) {
    throw new ShapeError(
      `${format} scales for codes [${x.codes.shape.join(', ')}] (layout '${layout}') must be float32 ` +
        `[${[B, H, N, groups].join(', ')}]; got ${x.scales.dtype} [${x.scales.shape.join(', ')}]`,
    );
  }
  if (D % 2 !== 0) throw new ShapeError(`FP4 Q/K need an even head dim on the GPU; got ${D}`);
  const runtime = x.codes.runtime;
  const values = emptyGpu(runtime, x.codes.shape, 'float16', `${format} operand`, minBytes);
  const factors = emptyGpu(runtime, [B, H, N], 'float32', `${format} token factors`);
  const words = x.codes.size / 2;
  const params = uniformBuffer(
    runtime,
    new Uint32Array([H, N, D, layout === 'NHD' ? 1 : 0, words, 0, 0, 0]).buffer,
    'fp4 decode params',
  );
  const code = decodeWgsl(format, groups);
  return {
    values,
    factors,
    record(pass) {
      if (words === 0) return;
      recordDispatch(
        runtime,
        pass,
        code,
        [params, x.codes.buffer, x.scales.buffer, values.buffer, factors.buffer],
        Math.ceil(words / THREADS),
      );
    },
    destroy() {
      params.destroy();
      values.destroy();
      factors.destroy();
    },
  };
}

/** One invocation per f16 pair of V (two channels of one token), each times its 16-token scale. */
function decodeVWgsl(): string {
  return /* wgsl */ `
struct U { heads: u32, tokens: u32, headDim: u32, nhd: u32, words: u32, groups: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> Codes: array<u32>;
@group(0) @binding(2) var<storage, read> Scales: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> Out: array<u32>;
${FP4_WGSL}
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = gid.x + gid.y * nwg.x * ${THREADS}u;
  if (w >= P.words) { return; }
  let e = 2u * w;
  let d = e % P.headDim;
  let t = e / P.headDim;
  // the token's (b·H + h, n): scales are [B, H, ⌈N/16⌉, D] whatever the layout
  var bh: u32;
  var n: u32;
  if (P.nhd != 0u) {
    let bn = t / P.heads;
    bh = (bn / P.tokens) * P.heads + t % P.heads;
    n = bn % P.tokens;
  } else {
    bh = t / P.tokens;
    n = t % P.tokens;
  }
  let s = Scales[((bh * P.groups + n / ${NVFP4_GROUP_SIZE}u) * P.headDim + d) / 2u];
  let c = Codes[e >> 2u] >> (8u * (e & 3u));
  Out[w] = pack2x16float(vec2<f32>(decodeFp4(c) * s.x, decodeFp4(c >> 8u) * s.y));
}`;
}

/** A decode of NVFP4 V (scales per 16 tokens and channel) to f16, re-recordable. */
export interface Fp4VDecodePlan {
  /** code·scale as float16 (exact, FP4_WGSL), in the codes' shape and layout. */
  values: GpuTensor<'float16'>;
  record(pass: GPUComputePassEncoder): void;
  /** Frees the parameters and the values. */
  destroy(): void;
}

/**
 * Plans decoding NVFP4 V codes with their scales [B, H, ⌈N/16⌉, D] (SA3 §7.2: groups of 16 tokens
 * per channel) to f16 once per call, so that the tensor-core kernel stages V as f16 like dense
 * attention instead of decoding every code and loading its scale in each of the ⌈Nq/BQ⌉ workgroups
 * that stage it (the same trade as Q and K above: 2 bytes staged per element instead of 1). The
 * values equal the kernel's own staging decode bit for bit (code·scale is exact in f16). `minBytes`
 * sizes the values' buffer for the tensor-core tier's minimum binding (dense-gpu.ts).
 */
export function planDecodeFp4VGpu(x: Fp4Operand, layout: 'HND' | 'NHD', minBytes = 0): Fp4VDecodePlan {
  if (x.codes.dtype !== 'float4_e2m1fn') {
    throw new DTypeError(`NVFP4 V codes must be float4_e2m1fn; got ${x.codes.dtype}`);
  }
  const [b0, a, c0, D] = x.codes.shape;
  const [B, H, N] = layout === 'HND' ? [b0, a, c0] : [b0, c0, a];
  const groups = Math.ceil(N / NVFP4_GROUP_SIZE);
  if (x.scales.dtype !== 'float32' || x.scales.shape.join() !== [B, H, groups, D].join()) {
    throw new ShapeError(
      `NVFP4 V scales for codes [${x.codes.shape.join(', ')}] (layout '${layout}') must be float32 ` +
        `[${[B, H, groups, D].join(', ')}]; got ${x.scales.dtype} [${x.scales.shape.join(', ')}]`,
    );
  }
  if (D % 2 !== 0) throw new ShapeError(`NVFP4 V needs an even head dim on the GPU; got ${D}`);
  const runtime = x.codes.runtime;
  const values = emptyGpu(runtime, x.codes.shape, 'float16', 'nvfp4 V values', minBytes);
  const words = x.codes.size / 2;
  const params = uniformBuffer(
    runtime,
    new Uint32Array([H, N, D, layout === 'NHD' ? 1 : 0, words, groups, 0, 0]).buffer,
    'fp4 V decode params',
  );
  const code = decodeVWgsl();
  return {
    values,
    record(pass) {
      if (words === 0) return;
      recordDispatch(
        runtime,
        pass,
        code,
        [params, x.codes.buffer, x.scales.buffer, values.buffer],
        Math.ceil(words / THREADS),
      );
    },
    destroy() {
      params.destroy();
      values.destroy();
    },
  };
}
