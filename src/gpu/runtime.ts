/**
 * The WebGPU runtime: acquiring a device (Node through Dawn's `webgpu` package, a browser's
 * `navigator.gpu`, or a GPUDevice the caller owns), the capability record, buffers with typed errors,
 * a pipeline cache keyed by generated WGSL, error capture and a clean release so Node can exit.
 */
import { DeviceLostError, GpuError, GpuOutOfMemoryError, NoAdapterError } from '../core/errors.js';
import {
  BufferPool,
  DEFAULT_POOL_BYTES,
  DEFAULT_SHARED_POOL_BYTES,
  type BufferPoolStats,
} from './buffer-pool.js';
import { type GpuCapabilities, SUBGROUP_MATRIX_FEATURE, readCapabilities } from './capabilities.js';

/** Dawn toggles sparq always enables in Node: experimental features (subgroup matrices) and f16 on NVIDIA. */
export const DAWN_ENABLE_TOGGLES = Object.freeze(['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia']);
/** Toggle disabled for timing: Dawn quantizes timestamps to ~65 µs by default. */
export const DAWN_TIMING_DISABLE_TOGGLES = Object.freeze(['timestamp_quantization']);

/** Features requested when the adapter offers them. */
const WANTED_FEATURES = ['shader-f16', 'subgroups', SUBGROUP_MATRIX_FEATURE, 'timestamp-query'] as const;

export interface AcquireOptions {
  /** Use this device (and optionally its adapter) instead of creating one; sparq never destroys it. */
  device?: GPUDevice;
  adapter?: GPUAdapter;
  /** Disable Dawn's timestamp quantization (Node only), for benchmarks. */
  timing?: boolean;
  /** Extra Dawn toggles to enable or disable (Node only); merged into one flag string each. */
  enableToggles?: readonly string[];
  disableToggles?: readonly string[];
  /** Other dawn.node flags, e.g. 'adapter=NVIDIA' or 'backend=vulkan'. */
  dawnFlags?: readonly string[];
  powerPreference?: GPUPowerPreference;
  /**
   * Bytes of released tensor buffers (≥ 1 MiB each) the runtime keeps for reuse (default 2 GiB for a
   * device sparq creates through Dawn, 512 MiB in a browser or for a caller's `device`; 0 turns reuse
   * off). See buffer-pool.ts.
   */
  bufferPoolBytes?: number;
}

/**
 * dawn.node crashes at random (segfaults, futex errors, hangs) when V8 collects the object `create()`
 * returned while a device from it lives. Every such object is held here until its runtime is released.
 */
const liveInstances = new Set<GPU>();
(globalThis as Record<symbol, unknown>)[Symbol.for('sparq.liveGpuInstances')] = liveInstances;

/** Builds dawn.node's flag list. A second `enable-dawn-features=` entry would silently replace the first. */
export function dawnFlags(opts: AcquireOptions = {}): string[] {
  const enable = [...new Set([...DAWN_ENABLE_TOGGLES, ...(opts.enableToggles ?? [])])];
  const disable = [
    ...new Set([...(opts.timing ? DAWN_TIMING_DISABLE_TOGGLES : []), ...(opts.disableToggles ?? [])]),
  ];
  const flags = [`enable-dawn-features=${enable.join(',')}`];
  if (disable.length > 0) flags.push(`disable-dawn-features=${disable.join(',')}`);
  for (const f of opts.dawnFlags ?? []) {
    if (f.startsWith('enable-dawn-features=') || f.startsWith('disable-dawn-features=')) {
      throw new GpuError(`pass Dawn toggles through enableToggles/disableToggles, not as raw flag '${f}'`);
    }
    flags.push(f);
  }
  return flags;
}

async function nodeGpu(flags: string[]): Promise<GPU> {
  let mod: { create: (flags: string[]) => GPU; globals: object };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new NoAdapterError(
      `the 'webgpu' package (Dawn for Node) could not be loaded: ${(e as Error).message}. ` +
        `Install it with 'npm install webgpu@0.6.2' or use the CPU backend.`,
    );
  }
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return mod.create(flags);
}

function browserGpu(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

export class GpuRuntime {
  readonly device: GPUDevice;
  readonly caps: GpuCapabilities;
  /** Whether timestamps are exact (Dawn's quantization disabled); false in browsers and for caller devices. */
  readonly exactTimestamps: boolean;
  private readonly gpu: GPU | undefined;
  private readonly ownsDevice: boolean;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly pendingErrors: Error[] = [];
  private readonly pool: BufferPool;
  private lostReason: string | undefined;
  private released = false;

  constructor(args: {
    gpu: GPU | undefined;
    device: GPUDevice;
    caps: GpuCapabilities;
    ownsDevice: boolean;
    exactTimestamps: boolean;
    bufferPoolBytes?: number;
  }) {
    this.pool = new BufferPool(args.bufferPoolBytes ?? DEFAULT_POOL_BYTES);
    this.gpu = args.gpu;
    this.device = args.device;
    this.caps = args.caps;
    this.ownsDevice = args.ownsDevice;
    this.exactTimestamps = args.exactTimestamps;
    if (this.gpu) liveInstances.add(this.gpu);
    this.device.lost.then((info) => {
      if (!this.released) this.lostReason = `${info.reason}: ${info.message}`;
    });
    this.device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.pendingErrors.push(
        err instanceof GPUOutOfMemoryError
          ? new GpuOutOfMemoryError(
              `GPU out of memory: ${err.message}. Use smaller shapes or free GPU tensors.`,
            )
          : new GpuError(`WebGPU error: ${err.message}`),
      );
    });
  }

  /** Throws if the device is lost or released. */
  assertAlive(): void {
    if (this.released)
      throw new DeviceLostError('this GPU runtime was released; acquire a new one with acquireGpu()');
    if (this.lostReason !== undefined) {
      throw new DeviceLostError(
        `the GPU device was lost (${this.lostReason}); acquire a new one with acquireGpu()`,
      );
    }
  }

  /** Creates a buffer, checking the size against the device limits first. */
  createBuffer(size: number, usage: number, label?: string): GPUBuffer {
    this.assertAlive();
    const max = this.caps.limits.maxBufferSize;
    if (size > max) {
      throw new GpuOutOfMemoryError(
        `a buffer of ${size} bytes${label ? ` (${label})` : ''} exceeds this device's maxBufferSize of ${max} bytes; ` +
          `use smaller shapes or the CPU backend`,
      );
    }
    return this.device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage, label });
  }

  /**
   * A buffer for a tensor: a released one of the same size and usage from the pool, cleared to zero
   * (as WebGPU clears a new buffer) by a command submitted now — unless `overwritten`, when the caller
   * writes every byte next (an upload) —, or a new one. Give it back with `recycleTensorBuffer` once
   * the work that uses it has been submitted.
   */
  tensorBuffer(size: number, usage: number, label?: string, overwritten = false): GPUBuffer {
    this.assertAlive();
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    const reused = this.pool.take(bytes, usage);
    if (!reused) return this.createBuffer(size, usage, label);
    if (overwritten) return reused;
    const enc = this.device.createCommandEncoder();
    enc.clearBuffer(reused);
    this.device.queue.submit([enc.finish()]);
    return reused;
  }

  /** Returns a buffer from `tensorBuffer` for reuse (or destroys it: too small, pool full, runtime gone). */
  recycleTensorBuffer(buffer: GPUBuffer): void {
    if (this.released || this.lostReason !== undefined) buffer.destroy();
    else this.pool.give(buffer);
  }

  /** Destroys the buffers held for reuse (GPU memory goes back to the system). */
  trimBufferPool(): void {
    this.pool.clear();
  }

  /** What the buffer pool holds and how often it served a request. */
  get bufferPoolStats(): BufferPoolStats {
    return this.pool.stats;
  }

  /** A compute pipeline for WGSL source, compiled once per distinct source text. */
  pipeline(code: string, entryPoint = 'main'): GPUComputePipeline {
    this.assertAlive();
    const key = `${entryPoint}\n${code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Number of distinct pipelines compiled so far (for tests of the cache). */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /**
   * Waits for all submitted work, then throws the first WebGPU error raised since the last call
   * (typed: GpuOutOfMemoryError, GpuError) or DeviceLostError.
   */
  async sync(): Promise<void> {
    this.assertAlive();
    await this.device.queue.onSubmittedWorkDone();
    this.assertAlive();
    const err = this.pendingErrors.shift();
    this.pendingErrors.length = 0;
    if (err) throw err;
  }

  /** Destroys the device (if sparq created it) and drops the reference that keeps Dawn alive. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.pipelines.clear();
    this.pool.clear();
    if (this.ownsDevice) this.device.destroy();
    if (this.gpu) liveInstances.delete(this.gpu);
  }

  get isReleased(): boolean {
    return this.released;
  }
}

/**
 * Acquires a WebGPU device: the caller's `device` if given; else `navigator.gpu` in a browser; else
 * Dawn's `webgpu` package in Node, with sparq's toggles. Requests shader-f16, subgroups, subgroup
 * matrices and timestamps where offered, and the adapter's own limits (WebGPU's defaults are far
 * below what GPUs allow: 128 MiB storage bindings, 16 KiB workgroup memory).
 */
export async function acquireGpu(opts: AcquireOptions = {}): Promise<GpuRuntime> {
  if (opts.device) {
    const device = opts.device;
    const caps = readCapabilities(
      opts.adapter ?? ({ info: device.adapterInfo } as unknown as GPUAdapter),
      device,
      undefined,
    );
    return new GpuRuntime({
      gpu: undefined,
      device,
      caps,
      ownsDevice: false,
      exactTimestamps: false,
      bufferPoolBytes: opts.bufferPoolBytes ?? DEFAULT_SHARED_POOL_BYTES,
    });
  }
  const inBrowser = browserGpu();
  const gpu = inBrowser ?? (await nodeGpu(dawnFlags(opts)));
  liveInstances.add(gpu);
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
    if (!adapter) {
      throw new NoAdapterError(
        'no WebGPU adapter was found. On Linux install a Vulkan driver (for CPU-only machines Mesa lavapipe: ' +
          "'apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1'); the CPU backend keeps working.",
      );
    }
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    const requiredLimits: Record<string, number> = {};
    for (const name of [
      'maxBufferSize',
      'maxStorageBufferBindingSize',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupSizeX',
      'maxStorageBuffersPerShaderStage',
    ]) {
      requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name];
    }
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    const caps = readCapabilities(
      adapter,
      device,
      (gpu as { wgslLanguageFeatures?: Iterable<string> }).wgslLanguageFeatures,
    );
    return new GpuRuntime({
      gpu,
      device,
      caps,
      ownsDevice: true,
      exactTimestamps: !inBrowser && Boolean(opts.timing),
      bufferPoolBytes: opts.bufferPoolBytes ?? (inBrowser ? DEFAULT_SHARED_POOL_BYTES : DEFAULT_POOL_BYTES),
    });
  } catch (e) {
    liveInstances.delete(gpu);
    throw e;
  }
}

let defaultRuntime: Promise<GpuRuntime> | undefined;

/** A shared runtime created on first use (Node: default toggles). */
export function defaultGpu(): Promise<GpuRuntime> {
  defaultRuntime ??= acquireGpu().catch((e) => {
    defaultRuntime = undefined;
    throw e;
  });
  return defaultRuntime;
}

/** Releases the shared runtime, if any, so the process can exit. */
export async function releaseDefaultGpu(): Promise<void> {
  const r = defaultRuntime;
  defaultRuntime = undefined;
  if (r) (await r.catch(() => undefined))?.release();
}
