/**
 * Small helpers every one-off compute kernel shares: a uniform buffer from bytes, one recorded
 * dispatch with its buffers bound in order, and the WGSL that reads a float16 or float32 element.
 */
import { BUFFER_USAGE } from './gpu-tensor.js';
import type { GpuRuntime } from './runtime.js';

/** A uniform buffer holding `data` (destroy it once the work that reads it is submitted). */
export function uniformBuffer(runtime: GpuRuntime, data: ArrayBuffer, label: string): GPUBuffer {
  const buf = runtime.createBuffer(data.byteLength, BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST, label);
  runtime.device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/**
 * The buffer to bind for an optional input: `t`'s buffer, or a small placeholder (for a binding the
 * shader declares but, by a uniform flag, never reads; it must not alias a buffer the dispatch
 * writes). `release` frees the placeholder, if one was made.
 */
export function optionalInput(
  runtime: GpuRuntime,
  t: { buffer: GPUBuffer } | undefined,
  label: string,
): { buffer: GPUBuffer; release: () => void } {
  if (t) return { buffer: t.buffer, release: () => undefined };
  const buffer = runtime.createBuffer(16, BUFFER_USAGE.STORAGE, label);
  return { buffer, release: () => buffer.destroy() };
}

/**
 * Records one dispatch of `code` (entry point `main`) with `buffers` (whole buffers, or bindings with
 * an offset and size) bound to bindings 0, 1, … of group 0. A single workgroup count is spread over x and y when it exceeds the per-dimension limit
 * (kernels then index with gid.x + gid.y · num_workgroups.x · size).
 */
export function recordDispatch(
  runtime: GpuRuntime,
  pass: GPUComputePassEncoder,
  code: string,
  buffers: readonly (GPUBuffer | GPUBufferBinding)[],
  workgroups: number | readonly [number, number, number],
): void {
  const pipeline = runtime.pipeline(code);
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    runtime.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((b, binding) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } })),
    }),
  );
  if (typeof workgroups === 'number') {
    const x = Math.min(workgroups, runtime.caps.limits.maxComputeWorkgroupsPerDimension);
    pass.dispatchWorkgroups(x, Math.ceil(workgroups / x));
  } else {
    pass.dispatchWorkgroups(...workgroups);
  }
}

/** Records `record` into one compute pass of a new command encoder and submits it. */
export function submitComputePass(runtime: GpuRuntime, record: (pass: GPUComputePassEncoder) => void): void {
  const enc = runtime.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  runtime.device.queue.submit([enc.finish()]);
}

/**
 * WGSL `fn <name>(e: u32) -> f32` reading element e of `array`, which holds f32 values or f16 values
 * two to a u32 word (element e in the low half when e is even; no shader-f16 needed).
 */
export function floatLoaderWgsl(name: string, array: string, input: 'f16' | 'f32'): string {
  return input === 'f16'
    ? `fn ${name}(e: u32) -> f32 { let w = unpack2x16float(${array}[e >> 1u]); return select(w.x, w.y, (e & 1u) == 1u); }`
    : `fn ${name}(e: u32) -> f32 { return ${array}[e]; }`;
}

/** The WGSL storage element type that `floatLoaderWgsl` expects for an input. */
export function floatArrayElement(input: 'f16' | 'f32'): string {
  return input === 'f16' ? 'u32' : 'f32';
}
