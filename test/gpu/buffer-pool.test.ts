import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, POOL_MIN_BYTES, type PooledBuffer } from '../../src/gpu/buffer-pool.js';
import { download, emptyGpu, upload } from '../../src/gpu/gpu-tensor.js';
import { acquireGpu, type GpuRuntime } from '../../src/gpu/runtime.js';
import { Tensor } from '../../src/core/tensor.js';
import { attention } from '../../src/attention/dense.js';
import { testGpu } from './harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

class FakeBuffer implements PooledBuffer {
  destroyed = false;
  constructor(
    readonly size: number,
    readonly usage = 0x80,
  ) {}
  destroy(): void {
    this.destroyed = true;
  }
}

const MiB = 1 << 20;

test('the pool returns a released buffer only for the same size and usage, newest first', () => {
  const pool = new BufferPool<FakeBuffer>(64 * MiB);
  const [a, b, c] = [new FakeBuffer(4 * MiB), new FakeBuffer(4 * MiB), new FakeBuffer(4 * MiB, 0x88)];
  assert.equal(pool.take(4 * MiB, 0x80), undefined);
  pool.give(a);
  pool.give(b);
  pool.give(c);
  pool.give(b); // twice: kept once
  assert.deepEqual(pool.stats, { buffers: 3, bytes: 12 * MiB, hits: 0, misses: 1, limitBytes: 64 * MiB });
  assert.equal(pool.take(4 * MiB + 4, 0x80), undefined);
  assert.equal(pool.take(4 * MiB, 0x80), b);
  assert.equal(pool.take(4 * MiB, 0x80), a);
  assert.equal(pool.take(4 * MiB, 0x80), undefined);
  assert.equal(pool.take(4 * MiB, 0x88), c);
  assert.deepEqual(pool.stats, { buffers: 0, bytes: 0, hits: 3, misses: 3, limitBytes: 64 * MiB });
  assert.ok(![a, b, c].some((x) => x.destroyed));
});

test('the pool destroys small buffers at once and evicts the oldest beyond its limit', () => {
  const pool = new BufferPool<FakeBuffer>(10 * MiB);
  const small = new FakeBuffer(POOL_MIN_BYTES - 4);
  pool.give(small);
  assert.ok(small.destroyed);
  assert.equal(pool.stats.buffers, 0);
  const [x, y, z] = [new FakeBuffer(4 * MiB), new FakeBuffer(3 * MiB), new FakeBuffer(4 * MiB)];
  pool.give(x);
  pool.give(y);
  pool.give(z); // 11 MiB > 10: x, released first, goes
  assert.ok(x.destroyed && !y.destroyed && !z.destroyed);
  assert.equal(pool.stats.bytes, 7 * MiB);
  const huge = new FakeBuffer(11 * MiB);
  pool.give(huge);
  assert.ok(huge.destroyed, 'a buffer above the limit is never held');
  pool.clear();
  assert.ok(y.destroyed && z.destroyed);
  assert.deepEqual([pool.stats.buffers, pool.stats.bytes], [0, 0]);
  assert.throws(() => new BufferPool(-1), RangeError);
  assert.throws(() => new BufferPool(Number.NaN), RangeError);
  const off = new BufferPool<FakeBuffer>(0);
  const w = new FakeBuffer(4 * MiB);
  off.give(w);
  assert.ok(w.destroyed);
});

test(
  'a GPU tensor buffer released by destroy() is reused for the same byte size, zero-filled',
  { skip },
  async () => {
    rt.trimBufferPool();
    const n = (2 * MiB) / 4;
    const ones = upload(rt, new Tensor(new Float32Array(n).fill(1), [n], 'float32'));
    const buffer = ones.buffer;
    ones.destroy();
    assert.equal(rt.bufferPoolStats.buffers, 1);
    const before = rt.bufferPoolStats.hits;
    // same bytes, other shape and dtype: the same buffer, cleared
    const again = emptyGpu(rt, [2, n], 'float16');
    assert.equal(again.buffer, buffer);
    assert.equal(rt.bufferPoolStats.hits, before + 1);
    const back = await download(again);
    assert.ok(
      (back.data as Uint16Array).every((x) => x === 0),
      'a reused buffer reads as zeros',
    );
    // another size gets a new buffer
    const other = emptyGpu(rt, [n + 1], 'float32');
    assert.notEqual(other.buffer, buffer);
    again.destroy();
    // an upload may reuse the buffer (uncleared, since the copy writes every byte) and holds exactly its values
    const twos = upload(rt, new Tensor(new Float32Array(n).fill(2), [n], 'float32'));
    assert.equal(twos.buffer, buffer);
    assert.ok((await download(twos)).data.every((x) => x === 2));
    twos.destroy();
    other.destroy();
    again.destroy(); // a second destroy() is a no-op, not a second entry
    assert.equal(rt.bufferPoolStats.buffers, 2);
    rt.trimBufferPool();
    assert.equal(rt.bufferPoolStats.buffers, 0);
  },
);

test('repeated attention calls reuse their output buffers and give the same result', { skip }, async () => {
  rt.trimBufferPool();
  const shape = [1, 2, 1024, 128];
  const rand = (seed: number) => {
    const d = new Float32Array(shape.reduce((a, b) => a * b));
    let s = seed;
    for (let i = 0; i < d.length; i++) d[i] = ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    return upload(rt, new Tensor(d, shape, 'float32'));
  };
  const [q, k, v] = [1, 2, 3].map(rand);
  const first = attention(q, k, v);
  const a = await download(first);
  const firstBuffer = first.buffer;
  first.destroy();
  const hits = rt.bufferPoolStats.hits;
  const second = attention(q, k, v);
  assert.equal(second.buffer, firstBuffer, 'the released output buffer (1 MiB) is reused');
  assert.ok(rt.bufferPoolStats.hits > hits);
  const b = await download(second);
  assert.deepEqual(b.data, a.data);
  for (const t of [second, q, k, v]) t.destroy();
  rt.trimBufferPool();
});

test(
  "pool limits: 2 GiB for a Dawn device sparq creates, 512 MiB for a caller's device, 0 turns reuse off",
  { skip },
  async () => {
    assert.equal(rt.bufferPoolStats.limitBytes, 2 ** 31);
    const shared = await acquireGpu({ device: rt.device });
    assert.equal(shared.bufferPoolStats.limitBytes, 2 ** 29);
    shared.release();
    const borrowed = await acquireGpu({ device: rt.device, bufferPoolBytes: 0 });
    const t = emptyGpu(borrowed, [MiB], 'float32');
    t.destroy();
    assert.equal(borrowed.bufferPoolStats.buffers, 0);
    const u = emptyGpu(borrowed, [MiB], 'float32');
    assert.notEqual(u.buffer, t.buffer);
    u.destroy();
    borrowed.release();
    await assert.rejects(acquireGpu({ device: rt.device, bufferPoolBytes: -5 }), RangeError);
  },
);
