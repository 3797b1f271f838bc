// Run by runtime.test.ts in a child process with --expose-gc: acquires a device, drops every reference
// the caller holds to Dawn's GPU object, and forces garbage collection between GPU round trips. dawn.node
// crashes (segfault, futex error or hang) when V8 collects the object create() returned while a device
// lives; sparq's runtime must keep it alive.
import { acquireGpu } from '../../src/gpu/runtime.js';
import { download, upload } from '../../src/gpu/gpu-tensor.js';
import { attention } from '../../src/attention/dense.js';
import { randn } from '../../src/core/tensor.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const rt = await acquireGpu();
for (let i = 0; i < 40; i++) {
  const x = randn([1, 1, 16, 8], { seed: i });
  const g = upload(rt, x);
  const out = await download(attention(g, g, g, { tier: 'f32' }));
  if (out.size !== 128) throw new Error('bad size');
  g.destroy();
  // churn the heap so a full collection has work to do
  const junk = Array.from({ length: 20000 }, (_, j) => ({ j, s: 'x'.repeat(j % 7) }));
  if (junk.length < 0) console.log(junk);
  gc();
  await new Promise((r) => setTimeout(r, 5));
}
rt.release();
console.log('gc-stress ok');
