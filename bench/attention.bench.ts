/**
 * Dense attention speed on the best WebGPU adapter: TFLOPS = 4·B·H·Nq·Nk·D / t, halved for causal
 * (ARCHITECTURE.md "Measuring"). Kernel time comes from timestamp queries around back-to-back dispatches
 * (Dawn's timestamp quantization disabled); end-to-end time adds uploading q, k, v from host memory
 * and reading the output back. Inputs are float16 with unit variance, generated on the GPU.
 */
import { planAttentionGpu } from '../src/attention/dense-gpu.js';
import { defaultMmaConfig, type MmaFlashConfig } from '../src/attention/flash-wgsl-mma.js';
import { describeAdapter, type GpuTier } from '../src/gpu/capabilities.js';
import { download, type GpuTensor } from '../src/gpu/gpu-tensor.js';
import { acquireGpu, type GpuRuntime } from '../src/gpu/runtime.js';
import { timeCompute } from '../src/gpu/timing.js';
import type { BenchContext, BenchModule, BenchRow } from './harness.js';
import { randomGpu } from './gpu-data.js';

interface Shape {
  batch: number;
  heads: number;
  tokens: number;
  headDim: number;
  causal: boolean;
}

function flops(s: Shape): number {
  return (4 * s.batch * s.heads * s.tokens * s.tokens * s.headDim) / (s.causal ? 2 : 1);
}

/** Tile variants of the tensor-core kernel swept by `--filter sweep`. */
const SWEEP: Partial<MmaFlashConfig>[] = [
  {},
  { tau: 8 },
  { staging: 'direct', aliasP: true, warps: 8 },
  { staging: 'prefetch', aliasP: true, warps: 12 },
];

async function endToEnd(rt: GpuRuntime, s: Shape, tier: GpuTier, host: Uint16Array[], ts: GpuTensor[]) {
  // upload the three inputs, run, read the output back: what a caller holding host f16 data pays
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) rt.device.queue.writeBuffer(ts[i].buffer, 0, host[i]);
  const plan = planAttentionGpu(ts[0], ts[1], ts[2], { causal: s.causal, tier });
  const enc = rt.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  plan.record(pass);
  pass.end();
  rt.device.queue.submit([enc.finish()]);
  await download(plan.out);
  const ms = performance.now() - t0;
  plan.destroyTemporaries();
  plan.out.destroy();
  plan.lse.destroy();
  return ms;
}

async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rt = await acquireGpu({ timing: true });
  const device = describeAdapter(rt.caps);
  const rows: BenchRow[] = [];
  // '--filter sweep' adds the tile variants; other filter words select shapes by label
  const sweep = ctx.filter.includes('sweep');
  const words = ctx.filter.filter((f) => f !== 'sweep');
  const want = (name: string) => words.length === 0 || words.some((f) => name.includes(f));
  const shapes: Shape[] = [];
  for (const tokens of ctx.quick ? [1024] : [4096, 16384])
    for (const headDim of [64, 128])
      for (const causal of [false, true])
        shapes.push({ batch: ctx.quick ? 1 : 2, heads: ctx.quick ? 4 : 16, tokens, headDim, causal });
  try {
    for (const s of shapes) {
      const shape = [s.batch, s.heads, s.tokens, s.headDim];
      const ts = [1, 2, 3].map((seed) => randomGpu(rt, shape, 'float16', seed));
      const host = await Promise.all(ts.map(async (t) => (await download(t)).data as Uint16Array));
      const tiers = rt.caps.tiers.filter(
        (t) => t !== 'f32' && (t !== 'f16' || s.tokens <= 4096 || ctx.quick),
      );
      for (const tier of tiers) {
        const variants: Partial<MmaFlashConfig>[] = tier === 'subgroup-matrix' && sweep ? SWEEP : [{}];
        for (const mma of variants) {
          const label = `dense B${s.batch} H${s.heads} N${s.tokens} D${s.headDim}${s.causal ? ' causal' : ''}${
            Object.keys(mma).length ? ' ' + JSON.stringify(mma) : ''
          }`;
          if (!want(label)) continue;
          let plan;
          try {
            plan = planAttentionGpu(ts[0], ts[1], ts[2], { causal: s.causal, tier, mma });
          } catch (e) {
            console.error(`${label}: ${(e as Error).message}`);
            continue;
          }
          let t;
          try {
            // one full run fills the plan's converted or padded copies of q, k, v, which the
            // kernel-only timing then reads
            const prime = rt.device.createCommandEncoder();
            const primePass = prime.beginComputePass();
            plan.record(primePass);
            primePass.end();
            rt.device.queue.submit([prime.finish()]);
            t = await timeCompute(rt, (pass) => plan.recordKernel(pass), { batches: ctx.quick ? 3 : 5 });
          } catch (e) {
            console.error(`${label} [${tier}]: ${(e as Error).message.split('\n')[0]}`);
            continue;
          } finally {
            plan.destroyTemporaries();
            plan.out.destroy();
            plan.lse.destroy();
          }
          const tflops = flops(s) / (t.kernelMs * 1e-3) / 1e12;
          const cfg =
            tier === 'subgroup-matrix'
              ? ` tiles ${JSON.stringify({ ...defaultMmaConfig(s.headDim), ...mma, headDim: undefined })}`
              : '';
          console.error(`${label} [${tier}] ${t.kernelMs.toFixed(3)} ms ${tflops.toFixed(1)} TFLOPS`);
          rows.push({
            area: 'attention',
            name: `${label} kernel`,
            value: tflops,
            unit: 'TFLOPS',
            backend: 'webgpu',
            tier,
            device,
            notes: `${t.kernelMs.toFixed(3)} ms (${t.method}, median of batches of ${t.iterations})${cfg}`,
          });
          if (Object.keys(mma).length === 0) {
            const e2e: number[] = [];
            for (let i = 0; i < 3; i++) e2e.push(await endToEnd(rt, s, tier, host, ts));
            const ms = e2e.sort((a, b) => a - b)[1];
            rows.push({
              area: 'attention',
              name: `${label} end-to-end`,
              value: flops(s) / (ms * 1e-3) / 1e12,
              unit: 'TFLOPS',
              backend: 'webgpu',
              tier,
              device,
              notes: `${ms.toFixed(2)} ms wall: upload q,k,v (f16) + kernel + read back O (f32), median of 3`,
            });
          }
        }
      }
      for (const t of ts) t.destroy();
    }
  } finally {
    rt.release();
  }
  return rows;
}

const module: BenchModule = { area: 'attention', run };
export default module;
