/**
 * Copies a tensor into one whose last dimension is a different size, as float32: zero-padding (for
 * kernels that need head dims of a given multiple, keeping the true softmax scale) or slicing back.
 * Reads float16 or float32; writes float32.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { floatArrayElement, floatLoaderWgsl, recordDispatch, uniformBuffer } from './dispatch.js';
import { emptyGpu, type GpuTensor } from './gpu-tensor.js';

const WG = 256;

function padWgsl(input: 'f16' | 'f32'): string {
  return /* wgsl */ `
struct U { rows: u32, srcD: u32, dstD: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> X: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${floatLoaderWgsl('ld', 'X', input)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = gid.x + gid.y * n.x * ${WG}u;
  if (i >= P.rows * P.dstD) { return; }
  let row = i / P.dstD;
  let d = i % P.dstD;
  Y[i] = select(0.0, ld(row * P.srcD + d), d < P.srcD);
}`;
}

/** Records the copy of t into a new float32 tensor whose last dimension is `size`; returns it and a release. */
export function recordResizeLastDim(
  t: GpuTensor,
  size: number,
  pass: GPUComputePassEncoder,
): { out: GpuTensor<'float32'>; release: () => void } {
  if (t.dtype !== 'float16' && t.dtype !== 'float32') {
    throw new UnsupportedOptionError(`resizing the last dimension takes float16 or float32; got ${t.dtype}`);
  }
  const runtime = t.runtime;
  const srcD = t.shape[t.shape.length - 1];
  const rows = srcD === 0 ? 0 : t.size / srcD;
  const out = emptyGpu(runtime, [...t.shape.slice(0, -1), size], 'float32', 'resized');
  const params = uniformBuffer(runtime, new Uint32Array([rows, srcD, size, 0]).buffer, 'resize params');
  const total = rows * size;
  if (total > 0) {
    const code = padWgsl(t.dtype === 'float16' ? 'f16' : 'f32');
    recordDispatch(runtime, pass, code, [params, t.buffer, out.buffer], Math.ceil(total / WG));
  }
  return { out, release: () => params.destroy() };
}
