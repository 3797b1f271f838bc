/**
 * Buffer-to-buffer copy as a compute dispatch, so it can be recorded inside a compute pass together
 * with the kernels that need it (copyBufferToBuffer cannot be recorded in a pass).
 */
import { recordDispatch } from './dispatch.js';
import type { GpuRuntime } from './runtime.js';

const WG = 256;

const COPY_WORDS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i < arrayLength(&src) && i < arrayLength(&dst)) { dst[i] = src[i]; }
}`;

/** Records a copy of the first `bytes` bytes (rounded up to 4) of `src` into `dst`. */
export function recordCopy(
  runtime: GpuRuntime,
  src: GPUBuffer,
  dst: GPUBuffer,
  bytes: number,
  pass: GPUComputePassEncoder,
): void {
  const words = Math.ceil(bytes / 4);
  if (words === 0) return;
  recordDispatch(runtime, pass, COPY_WORDS, [{ buffer: src, size: words * 4 }, dst], Math.ceil(words / WG));
}
