/**
 * Reuse of large tensor buffers across calls. On NVIDIA through Dawn/Vulkan creating a storage buffer
 * of 64 MiB or more costs 3–5 ms of host time (measured on an H200, tools/probe-host-overhead.ts), so
 * an attention call at N = 16k spent 16–40 ms creating its output and scratch before submitting
 * anything. The pool keeps buffers that tensors released and hands one of the exact same byte size
 * back to the next request; the runtime clears it to zero first, so a reused buffer is
 * indistinguishable from a new one (same size, same usage, zero contents, the same arrayLength() in
 * shaders).
 *
 * Buffers are matched by size and usage. Only buffers of at least `POOL_MIN_BYTES` are pooled (smaller ones cost ~0.02 ms to create, less
 * than the clear), and the pool holds at most `limitBytes`, dropping the buffers released longest ago
 * first. Reuse is safe because a queue runs its submissions in order: a buffer is released after the
 * work that reads it was submitted, and the clear and the next user are submitted after that.
 */

/** Smallest buffer the pool keeps (bytes). */
export const POOL_MIN_BYTES = 1 << 20;

/** Default cap on the bytes the pool holds for a device sparq creates in Node (acquireGpu's `bufferPoolBytes`). */
export const DEFAULT_POOL_BYTES = 2 ** 31;

/**
 * Default cap in a browser and for a caller's device, whose memory sparq cannot judge (integrated GPUs
 * share a few GiB with the page).
 */
export const DEFAULT_SHARED_POOL_BYTES = 2 ** 29;

/** The part of a GPUBuffer the pool needs (tests pass plain objects). */
export interface PooledBuffer {
  readonly size: number;
  readonly usage: number;
  destroy(): void;
}

export interface BufferPoolStats {
  /** Buffers and bytes held now. */
  buffers: number;
  bytes: number;
  /** Requests served from the pool, and requests of a poolable size that were not. */
  hits: number;
  misses: number;
  limitBytes: number;
}

export class BufferPool<B extends PooledBuffer = GPUBuffer> {
  /** Free buffers by size and usage, oldest release first. */
  private readonly free = new Map<string, B[]>();
  /** Every free buffer in release order (for eviction). */
  private readonly order: B[] = [];
  private held = 0;
  private hits = 0;
  private misses = 0;

  constructor(readonly limitBytes: number) {
    if (!(limitBytes >= 0) || !Number.isFinite(limitBytes)) {
      throw new RangeError(`bufferPoolBytes must be a finite number ≥ 0; got ${limitBytes}`);
    }
  }

  /** Whether a buffer of this size would be pooled at all. */
  accepts(size: number): boolean {
    return size >= POOL_MIN_BYTES && size <= this.limitBytes;
  }

  /** A free buffer of exactly `size` bytes and this usage (the most recently released), or undefined. */
  take(size: number, usage: number): B | undefined {
    if (!this.accepts(size)) return undefined;
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    const buf = list?.pop();
    if (!buf) {
      this.misses++;
      return undefined;
    }
    if (list!.length === 0) this.free.delete(key);
    this.order.splice(this.order.lastIndexOf(buf), 1);
    this.held -= size;
    this.hits++;
    return buf;
  }

  /**
   * Keeps a released buffer for reuse, evicting the oldest ones beyond the limit; destroys it at once
   * when it is too small or too large to pool. A buffer given twice is kept once.
   */
  give(buf: B): void {
    if (!this.accepts(buf.size)) {
      buf.destroy();
      return;
    }
    const key = `${buf.usage}:${buf.size}`;
    const list = this.free.get(key) ?? [];
    if (list.includes(buf)) return;
    list.push(buf);
    this.free.set(key, list);
    this.order.push(buf);
    this.held += buf.size;
    while (this.held > this.limitBytes) this.evictOldest();
  }

  /** Destroys every buffer held. */
  clear(): void {
    while (this.order.length > 0) this.evictOldest();
  }

  get stats(): BufferPoolStats {
    return {
      buffers: this.order.length,
      bytes: this.held,
      hits: this.hits,
      misses: this.misses,
      limitBytes: this.limitBytes,
    };
  }

  private evictOldest(): void {
    const buf = this.order.shift()!;
    const key = `${buf.usage}:${buf.size}`;
    const list = this.free.get(key)!;
    list.splice(list.indexOf(buf), 1);
    if (list.length === 0) this.free.delete(key);
    this.held -= buf.size;
    buf.destroy();
  }
}
