/**
 * Tensors that live in a GPU buffer. The buffer holds exactly the host storage bytes (codes for
 * low-bit formats), padded to a multiple of 4 bytes as WebGPU requires.
 */
import { type DType, type TypedArray, bytesPerElement, storageOf } from '../core/dtype.js';
import { DeviceLostError, ShapeError } from '../core/errors.js';
import { Tensor, formatShape, shapeSize, type Shape } from '../core/tensor.js';
import type { GpuRuntime } from './runtime.js';

export const STORAGE_USAGE =
  GPUBufferUsageFlags().STORAGE | GPUBufferUsageFlags().COPY_SRC | GPUBufferUsageFlags().COPY_DST;

/** GPUBufferUsage is a global only once a WebGPU implementation is loaded; read it lazily. */
function GPUBufferUsageFlags(): {
  STORAGE: number;
  COPY_SRC: number;
  COPY_DST: number;
  MAP_READ: number;
  UNIFORM: number;
} {
  const g = (globalThis as unknown as { GPUBufferUsage?: Record<string, number> }).GPUBufferUsage;
  // The WebGPU specification fixes these bit values; they are used only if the global is missing.
  return {
    STORAGE: g?.STORAGE ?? 0x80,
    COPY_SRC: g?.COPY_SRC ?? 0x04,
    COPY_DST: g?.COPY_DST ?? 0x08,
    MAP_READ: g?.MAP_READ ?? 0x01,
    UNIFORM: g?.UNIFORM ?? 0x40,
  };
}

export const BUFFER_USAGE = GPUBufferUsageFlags();

export class GpuTensor<D extends DType = DType> {
  readonly kind = 'gpu' as const;
  readonly shape: Shape;
  readonly dtype: D;
  readonly buffer: GPUBuffer;
  readonly runtime: GpuRuntime;
  private destroyed = false;
  /** Whether destroy() hands the buffer back to the runtime's pool (buffers from emptyGpu). */
  private readonly pooled: boolean;

  constructor(
    runtime: GpuRuntime,
    buffer: GPUBuffer,
    shape: Shape,
    dtype: D,
    opts: { pooled?: boolean } = {},
  ) {
    this.runtime = runtime;
    this.buffer = buffer;
    this.pooled = opts.pooled ?? false;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    const need = shapeSize(shape) * bytesPerElement(dtype);
    if (buffer.size < need) {
      throw new ShapeError(
        `a GPU buffer of ${buffer.size} bytes cannot hold ${formatShape(shape)} ${dtype} (${need} bytes)`,
      );
    }
  }

  get size(): number {
    return shapeSize(this.shape);
  }

  /** Bytes of tensor data (without the padding to 4 bytes). */
  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  /**
   * Frees the GPU memory now rather than when the buffer is collected — or, for a tensor from
   * emptyGpu/upload of at least 1 MiB, hands its buffer to the runtime's pool for the next tensor of
   * the same byte size (buffer-pool.ts; `runtime.trimBufferPool()` frees what the pool holds). Call
   * it only after the work that reads the tensor was submitted, and never keep using `buffer`.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.pooled) this.runtime.recycleTensorBuffer(this.buffer);
    else this.buffer.destroy();
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

/**
 * Allocates a GPU tensor (zero-filled, as WebGPU buffers are; the buffer may be a pooled one).
 * `minBytes` asks for a larger buffer than the data needs (for
 * kernels whose subgroup-matrix loads may reach past the last row; see dense-gpu.ts).
 */
export function emptyGpu<D extends DType>(
  runtime: GpuRuntime,
  shape: Shape,
  dtype: D,
  label?: string,
  minBytes = 0,
): GpuTensor<D> {
  return allocate(runtime, shape, dtype, label, minBytes, false);
}

function allocate<D extends DType>(
  runtime: GpuRuntime,
  shape: Shape,
  dtype: D,
  label: string | undefined,
  minBytes: number,
  overwritten: boolean,
): GpuTensor<D> {
  const bytes = Math.max(shapeSize(shape) * bytesPerElement(dtype), minBytes);
  const buffer = runtime.tensorBuffer(bytes, STORAGE_USAGE, label, overwritten);
  return new GpuTensor(runtime, buffer, shape, dtype, { pooled: true });
}

/** Copies a host tensor to the GPU (a reused buffer is not cleared first: the copy writes every byte). */
export function upload<D extends DType>(runtime: GpuRuntime, t: Tensor<D>, label?: string): GpuTensor<D> {
  const g = allocate(runtime, t.shape, t.dtype, label, 0, true);
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const padded = bytes.byteLength % 4 === 0 ? bytes : copyPadded(bytes);
  if (padded.byteLength > 0) {
    runtime.device.queue.writeBuffer(
      g.buffer,
      0,
      padded.buffer as ArrayBuffer,
      padded.byteOffset,
      padded.byteLength,
    );
  }
  return g;
}

function copyPadded(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}

/** Copies a GPU tensor to a new host tensor; rethrows any WebGPU error raised by the work before it. */
export async function download<D extends DType>(g: GpuTensor<D>): Promise<Tensor<D>> {
  const runtime = g.runtime;
  if (g.isDestroyed) throw new DeviceLostError('this GPU tensor was destroyed; it can no longer be read');
  runtime.assertAlive();
  const padded = Math.max(4, Math.ceil(g.byteLength / 4) * 4);
  const staging = runtime.createBuffer(
    padded,
    BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
    'download staging',
  );
  try {
    const enc = runtime.device.createCommandEncoder();
    enc.copyBufferToBuffer(g.buffer, 0, staging, 0, padded);
    runtime.device.queue.submit([enc.finish()]);
    await runtime.sync();
    await staging.mapAsync(BUFFER_USAGE.MAP_READ);
    const Storage = storageOf(g.dtype);
    const data = new Storage(g.size) as TypedArray;
    new Uint8Array(data.buffer).set(new Uint8Array(staging.getMappedRange(), 0, g.byteLength));
    staging.unmap();
    return new Tensor(data, g.shape, g.dtype);
  } finally {
    staging.destroy();
  }
}

/** Whether a value is a GPU tensor (as opposed to a host Tensor). */
export function isGpuTensor(x: unknown): x is GpuTensor {
  return x instanceof GpuTensor;
}
