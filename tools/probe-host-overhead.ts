/**
 * Where the host time of one attention call goes on a WebGPU device: wraps the device's calls
 * (createBuffer — split by size —, buffer destroy, bind groups, pipelines, writes, submit) with timers
 * and prints, per method, the host time until `attention`/`sageAttention` returns, the time inside
 * those calls, and the wall time until the queue is done. Diagnostic, not a benchmark.
 * Usage: [SPARQ_POOL_BYTES=0] node --import tsx tools/probe-host-overhead.ts [N] [D] [B] [H]
 */
import { attention } from '../src/attention/dense.js';
import { sageAttention } from '../src/attention/sage/sage-attention.js';
import { acquireGpu } from '../src/gpu/runtime.js';
import { randomGpu } from '../bench/gpu-data.js';

type Fn = (...args: unknown[]) => unknown;
const totals = new Map<string, { ms: number; calls: number }>();
function add(label: string, ms: number): void {
  const e = totals.get(label) ?? { ms: 0, calls: 0 };
  e.ms += ms;
  e.calls++;
  totals.set(label, e);
}
function timed(obj: Record<string, unknown>, name: string, label: (args: unknown[]) => string): void {
  const f = (obj[name] as Fn).bind(obj);
  obj[name] = (...args: unknown[]) => {
    const t = performance.now();
    const r = f(...args);
    add(label(args), performance.now() - t);
    return r;
  };
}

const [N, D, B, H] = process.argv.slice(2).map(Number);
const shape = [B || 2, H || 16, N || 16384, D || 128];
// SPARQ_POOL_BYTES=0 measures without buffer reuse
const poolBytes = process.env.SPARQ_POOL_BYTES;
const rt = await acquireGpu({ timing: true, bufferPoolBytes: poolBytes ? Number(poolBytes) : undefined });
const device = rt.device as unknown as Record<string, unknown>;
const createBuffer = (device.createBuffer as Fn).bind(device);
device.createBuffer = (desc: unknown) => {
  const size = (desc as { size: number }).size;
  const bucket = size >= 64 << 20 ? '≥64MiB' : size >= 1 << 20 ? '1–64MiB' : '<1MiB';
  const t = performance.now();
  const buf = createBuffer(desc) as Record<string, unknown>;
  add(`createBuffer ${bucket}`, performance.now() - t);
  timed(buf, 'destroy', () => `destroy ${bucket}`);
  return buf;
};
for (const n of ['createBindGroup', 'createCommandEncoder']) timed(device, n, () => n);
timed(rt as unknown as Record<string, unknown>, 'pipeline', () => 'pipeline (cached lookup or compile)');
const queue = device.queue as Record<string, unknown>;
timed(queue, 'writeBuffer', () => 'queue.writeBuffer');
timed(queue, 'submit', () => 'queue.submit');

const [q, k, v] = [1, 2, 3].map((s) => randomGpu(rt, shape, 'float16', s));
await rt.sync();
console.log(`shape ${shape.join('×')} on ${rt.caps.adapter.vendor} ${rt.caps.adapter.architecture}`);
for (const method of ['dense', 'sage1', 'sage2', 'sage3'] as const) {
  for (let i = 0; i < 4; i++) {
    totals.clear();
    const t0 = performance.now();
    const out = method === 'dense' ? attention(q, k, v) : sageAttention(q, k, v, { preset: method });
    const hostMs = performance.now() - t0;
    await rt.sync();
    const wallMs = performance.now() - t0;
    const t1 = performance.now();
    out.destroy();
    const destroyOutMs = performance.now() - t1;
    if (i === 0) continue; // pipelines compile on the first call
    const inCalls = [...totals.values()].reduce((a, e) => a + e.ms, 0);
    const parts = [...totals].map(([n, e]) => `${n} ${e.ms.toFixed(2)}/${e.calls}`).join(', ');
    console.log(
      `${method} host ${hostMs.toFixed(2)} ms (in calls ${inCalls.toFixed(2)}: ${parts}); wall ${wallMs.toFixed(2)} ms; out.destroy ${destroyOutMs.toFixed(2)} ms; pool ${JSON.stringify(rt.bufferPoolStats)}`,
    );
  }
}
rt.release();
