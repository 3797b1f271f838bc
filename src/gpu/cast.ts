/**
 * Element-type conversion on the GPU: float32 → float16 codes. Used when a kernel tier needs f16
 * operands and the caller passed float32 tensors. `pack2x16float` needs no shader-f16, so this runs on
 * every adapter. WGSL does not pin the rounding of this conversion (round-to-nearest-even on the
 * drivers sparq was tested on); bit-exact conversions are numerics' `encode` on the host.
 */
import { recordDispatch } from './dispatch.js';
import { emptyGpu, type GpuTensor } from './gpu-tensor.js';

const WG = 256;

const CAST_F32_F16 = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  let n = arrayLength(&src);
  if (2u * i >= n) { return; }
  let hi = select(0.0, src[min(2u * i + 1u, n - 1u)], 2u * i + 1u < n);
  dst[i] = pack2x16float(vec2<f32>(src[2u * i], hi));
}`;

/** A float16 tensor of `t`'s shape (buffer of at least `minBytes`), for `recordCastToFloat16`. */
export function emptyFloat16Like(t: GpuTensor, minBytes = 0): GpuTensor<'float16'> {
  return emptyGpu(t.runtime, t.shape, 'float16', 'cast f16', minBytes);
}

/** Records the conversion of a float32 tensor into a float16 tensor of the same shape. */
export function recordCastToFloat16(
  t: GpuTensor,
  out: GpuTensor<'float16'>,
  pass: GPUComputePassEncoder,
): void {
  const runtime = t.runtime;
  const words = Math.ceil(t.size / 2);
  if (words === 0) return;
  recordDispatch(
    runtime,
    pass,
    CAST_F32_F16,
    [{ buffer: t.buffer, size: t.size * 4 }, out.buffer],
    Math.ceil(words / WG),
  );
}
