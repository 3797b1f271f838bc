/**
 * GPU timing. Kernel time comes from timestamp queries written at the start and end of one compute
 * pass holding many back-to-back dispatches (so launch gaps are averaged in, as CUDA event timing
 * does); wall time is measured to `onSubmittedWorkDone`. With Dawn, exact timestamps need the runtime
 * acquired with `timing: true` (Dawn otherwise rounds them to ~65 µs).
 */
import { median } from './stats.js';
import type { GpuRuntime } from './runtime.js';
import { BUFFER_USAGE } from './gpu-tensor.js';

export interface TimingOptions {
  /** Dispatch batches measured (the median is reported). Default 5. */
  batches?: number;
  /** Target duration of one batch in ms; the dispatch count per batch is chosen to reach it. Default 40. */
  batchMs?: number;
  /** Minimum warm-up in ms before measuring, so GPU clocks have ramped up. Default 300. */
  warmupMs?: number;
}

export interface TimingResult {
  /** Median GPU time per dispatch-group from timestamps (ms); NaN if timestamps are unavailable. */
  kernelMs: number;
  /** Median wall time per dispatch-group to queue completion (ms). */
  wallMs: number;
  /** Dispatch-groups per batch. */
  iterations: number;
  /** Where kernelMs came from. */
  method: 'timestamp-query' | 'wall-clock';
}

/**
 * Times `record`, which encodes one logical operation (one or more dispatches) into a compute pass.
 */
export async function timeCompute(
  runtime: GpuRuntime,
  record: (pass: GPUComputePassEncoder) => void,
  opts: TimingOptions = {},
): Promise<TimingResult> {
  const device = runtime.device;
  const useTimestamps = runtime.caps.timestamps;
  const querySet = useTimestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const resolve = useTimestamps
    ? runtime.createBuffer(16, BUFFER_USAGE.COPY_SRC | 0x200 /* QUERY_RESOLVE */)
    : undefined;
  const read = useTimestamps
    ? runtime.createBuffer(16, BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST)
    : undefined;

  const runBatch = async (n: number): Promise<{ gpu: number; wall: number }> => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(
      querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
    );
    for (let i = 0; i < n; i++) record(pass);
    pass.end();
    if (querySet && resolve && read) {
      enc.resolveQuerySet(querySet, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wall = performance.now() - t0;
    let gpu = NaN;
    if (read) {
      await read.mapAsync(BUFFER_USAGE.MAP_READ);
      const ts = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      gpu = Number(ts[1] - ts[0]) / 1e6;
    }
    return { gpu, wall };
  };

  try {
    const warmupMs = opts.warmupMs ?? 300;
    const batchMs = opts.batchMs ?? 40;
    let n = 1;
    let spent = 0;
    let last = await runBatch(1);
    spent += last.wall;
    // grow the batch until it takes batchMs, warming the GPU up on the way
    while (spent < warmupMs || last.wall < batchMs) {
      const per = Math.max(1e-3, (Number.isNaN(last.gpu) ? last.wall : last.gpu) / n);
      n = Math.max(1, Math.min(10000, Math.ceil(batchMs / per)));
      last = await runBatch(n);
      spent += last.wall;
      if (n === 10000) break;
    }
    const gpus: number[] = [];
    const walls: number[] = [];
    for (let b = 0; b < (opts.batches ?? 5); b++) {
      const r = await runBatch(n);
      gpus.push(r.gpu / n);
      walls.push(r.wall / n);
    }
    await runtime.sync();
    return {
      kernelMs: useTimestamps ? median(gpus) : median(walls),
      wallMs: median(walls),
      iterations: n,
      method: useTimestamps ? 'timestamp-query' : 'wall-clock',
    };
  } finally {
    querySet?.destroy();
    resolve?.destroy();
    read?.destroy();
  }
}
