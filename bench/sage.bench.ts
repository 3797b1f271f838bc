/**
 * SageAttention kernel speed on the best WebGPU adapter: the presets' kernels (INT8 QKᵀ with fp16 or
 * E4M3 P and V; sage3's NVFP4 Q/K with ΔS, two-level NVFP4 P and NVFP4 V) from already-quantized
 * operands, against sparq's dense f16 kernel on the same inputs' shapes in the same run. TOPS =
 * 4·B·H·N²·D / t, halved for causal; kernel time only (quantization excluded, as the reference
 * benchmarks do, sageattention.md §10; sage3's kernel step includes decoding its FP4 Q/K codes to f16,
 * sage/fp4-operand-gpu.ts), then end to end from float16 GPU tensors.
 */
import { planAttentionGpu } from '../src/attention/dense-gpu.js';
import { planSageKernelGpu, scaleGroupRules } from '../src/attention/sage/kernel-gpu.js';
import type { QKGranularity } from '../src/quant/types.js';
import { describeAdapter } from '../src/gpu/capabilities.js';
import { GpuTensor, emptyGpu, upload } from '../src/gpu/gpu-tensor.js';
import { Tensor } from '../src/core/tensor.js';
import { acquireGpu, type GpuRuntime } from '../src/gpu/runtime.js';
import { timeCompute } from '../src/gpu/timing.js';
import type { GpuAttentionPlan } from '../src/attention/dense-gpu.js';
import { randomGpu } from './gpu-data.js';
import { median, type BenchContext, type BenchModule, type BenchRow } from './harness.js';
import { sageAttention } from '../src/attention/sage/sage-attention.js';

function scaleTensor(rt: GpuRuntime, shape: number[], value: number): GpuTensor<'float32'> {
  return upload(
    rt,
    new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape, 'float32'),
  );
}

async function time(rt: GpuRuntime, plan: GpuAttentionPlan, quick: boolean) {
  const prime = rt.device.createCommandEncoder();
  const pass = prime.beginComputePass();
  plan.record(pass);
  pass.end();
  rt.device.queue.submit([prime.finish()]);
  try {
    return await timeCompute(rt, (p) => plan.recordKernel(p), { batches: quick ? 3 : 5 });
  } finally {
    plan.destroyTemporaries();
    plan.out.destroy();
    plan.lse.destroy();
  }
}

async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rt = await acquireGpu({ timing: true });
  const device = describeAdapter(rt.caps);
  const rows: BenchRow[] = [];
  const want = (name: string) => ctx.filter.length === 0 || ctx.filter.some((f) => name.includes(f));
  const tiles = { blockQ: 128, warpQ: 32, blockK: 64, warpK: 64 };
  try {
    for (const tokens of ctx.quick ? [1024] : [1024, 4096, 16384, 32768])
      for (const headDim of [64, 128])
        for (const causal of [false, true]) {
          const [B, H] = ctx.quick ? [1, 4] : [2, 16];
          const shape = [B, H, tokens, headDim];
          const flops = (4 * B * H * tokens * tokens * headDim) / (causal ? 2 : 1);
          const label = `B${B} H${H} N${tokens} D${headDim}${causal ? ' causal' : ''}`;
          if (!want(label)) continue;
          const q16 = randomGpu(rt, shape, 'float16', 1);
          const k16 = randomGpu(rt, shape, 'float16', 2);
          const v16 = randomGpu(rt, shape, 'float16', 3);
          const qc = randomGpu(rt, shape, 'int8', 4);
          const kc = randomGpu(rt, shape, 'int8', 5);
          // random bytes as E4M3 V codes (timing only)
          const vc = new GpuTensor(rt, randomGpu(rt, shape, 'int8', 8).buffer, shape, 'float8_e4m3fn');
          const densePlan = planAttentionGpu(q16, k16, v16, { causal });
          const denseTier = densePlan.tier;
          const dense = await time(rt, densePlan, ctx.quick);
          const denseTops = flops / (dense.kernelMs * 1e-3) / 1e12;
          rows.push({
            area: 'sage',
            name: `dense f16 ${label} kernel`,
            value: denseTops,
            unit: 'TFLOPS',
            backend: 'webgpu',
            tier: denseTier,
            device,
            notes: `${dense.kernelMs.toFixed(3)} ms (${dense.method}); baseline of the rows below`,
          });
          // the presets' GPU kernels: SA1 (per-block INT8 QK, fp16 P and V) and SA2 / SA2++ (per-thread
          // INT8 QK, E4M3 P, per-channel E4M3 V; the two differ only in V's range and in accumulators the
          // GPU does not emulate, so they run the same kernel)
          const presets = [
            {
              preset: 'sage1',
              granularity: 'per-block' as QKGranularity,
              pFormat: 'fp16' as const,
              vCodes: false,
            },
            {
              preset: 'sage2/sage2++',
              granularity: 'per-thread' as QKGranularity,
              pFormat: 'float8_e4m3fn' as const,
              vCodes: true,
            },
          ];
          let kernelTier = '';
          for (const cfg of presets) {
            const { granularity } = cfg;
            const rules = scaleGroupRules(granularity, tokens, tokens, tiles);
            // scales that give logits of std ≈ 1.5 in log2 units (as unit-variance q, k at σ = 1/√D do) for
            // uniform random codes (std ≈ 73): δ² · 73² · √D · σ·log2e = 1.5; per-block Q scales fold σ·log2e
            const sigmaLog2e = Math.LOG2E / Math.sqrt(headDim);
            const delta = Math.sqrt(1.5 / (sigmaLog2e * 73 * 73 * Math.sqrt(headDim)));
            const qFold = granularity === 'per-block' ? sigmaLog2e : 1;
            const qs = scaleTensor(rt, [B, H, rules.q.groups], delta * qFold);
            const ks = scaleTensor(rt, [B, H, rules.k.groups], delta);
            const vScales = scaleTensor(rt, [B, H, headDim], 1 / 128);
            const v = cfg.vCodes ? { codes: vc, scales: vScales } : v16;
            const plan = planSageKernelGpu({ codes: qc, scales: qs }, { codes: kc, scales: ks }, v, {
              causal,
              granularity,
              pFormat: cfg.pFormat,
            });
            const tier = plan.tier;
            kernelTier = tier;
            const t = await time(rt, plan, ctx.quick);
            const tops = flops / (t.kernelMs * 1e-3) / 1e12;
            console.error(
              `${label} ${cfg.preset} [${tier}] ${t.kernelMs.toFixed(3)} ms ${tops.toFixed(1)} TOPS (dense ${denseTops.toFixed(1)})`,
            );
            rows.push({
              area: 'sage',
              name: `${cfg.preset} kernel (INT8 ${granularity} QK, ${cfg.pFormat} P, ${cfg.vCodes ? 'E4M3' : 'f16'} V) ${label}`,
              value: tops,
              unit: 'TOPS',
              backend: 'webgpu',
              tier,
              device,
              notes: `${t.kernelMs.toFixed(3)} ms (${t.method}); ${(tops / denseTops).toFixed(2)}× sparq dense f16 in the same run`,
            });
            for (const x of [qs, ks, vScales]) x.destroy();
          }
          {
            // sage3: random bytes as E2M1 codes (the kernels read the low nibble: values of std ≈ 2.93),
            // NVFP4 scales that give logits of std ≈ 1.5 in log2 units and V of std ≈ 1, and a ΔS of zeros
            // [B, H, N/128, N] (its reads are what costs, not its values)
            const fp4 = (t: GpuTensor) => new GpuTensor(rt, t.buffer, shape, 'float4_e2m1fn');
            const sigmaLog2e = Math.LOG2E / Math.sqrt(headDim);
            const delta = Math.sqrt(1.5 / (sigmaLog2e * 8.56 * Math.sqrt(headDim)));
            const qs = scaleTensor(rt, [B, H, tokens, headDim / 16], delta);
            const ks = scaleTensor(rt, [B, H, tokens, headDim / 16], delta);
            const vs = scaleTensor(rt, [B, H, Math.ceil(tokens / 16), headDim], 1 / 2.93);
            const deltaS = emptyGpu(rt, [B, H, Math.ceil(tokens / 128), tokens], 'float32', 'bench ΔS');
            const plan = planSageKernelGpu(
              { codes: fp4(qc), scales: qs },
              { codes: fp4(kc), scales: ks },
              { codes: fp4(vc), scales: vs },
              { causal, qkFormat: 'nvfp4', pFormat: 'nvfp4', deltaS, blockQ: 128, blockK: 128 },
            );
            const tier = plan.tier;
            const t = await time(rt, plan, ctx.quick);
            const tops = flops / (t.kernelMs * 1e-3) / 1e12;
            console.error(
              `${label} sage3 [${tier}] ${t.kernelMs.toFixed(3)} ms ${tops.toFixed(1)} TOPS (dense ${denseTops.toFixed(1)})`,
            );
            rows.push({
              area: 'sage',
              name: `sage3 kernel (NVFP4 Q/K decoded to f16, ΔS, two-level NVFP4 P, NVFP4 V) ${label}`,
              value: tops,
              unit: 'TOPS',
              backend: 'webgpu',
              tier,
              device,
              notes: `${t.kernelMs.toFixed(3)} ms (${t.method}) including the Q/K FP4 → f16 decode; ${(tops / denseTops).toFixed(2)}× sparq dense f16 in the same run`,
            });
            for (const x of [qs, ks, vs, deltaS]) x.destroy();
          }
          // end to end from float16 q, k, v on the GPU: smoothing, quantization, kernel (wall clock)
          const steps: Record<string, string> = {
            sage1: 'K mean, INT8 Q/K quantization, kernel',
            sage2: 'K mean, INT8 Q/K and FP8 V quantization, kernel',
            sage3: 'K mean, Q block means and ΔS, NVFP4 Q/K/V quantization, FP4 decode, kernel',
          };
          for (const preset of ['sage1', 'sage2', 'sage3'] as const) {
            const e2e: number[] = [];
            for (let i = 0; i < (ctx.quick ? 2 : 4); i++) {
              const t0 = performance.now();
              const out = sageAttention(q16, k16, v16, { preset, causal });
              await rt.sync();
              e2e.push(performance.now() - t0);
              out.destroy();
            }
            const ms = median(e2e.slice(1));
            rows.push({
              area: 'sage',
              name: `sageAttention ${preset} end-to-end ${label}`,
              value: flops / (ms * 1e-3) / 1e12,
              unit: 'TOPS',
              backend: 'webgpu',
              tier: kernelTier,
              device,
              notes: `${ms.toFixed(2)} ms wall from float16 GPU tensors (${steps[preset]}), median after a warm-up`,
            });
            console.error(`${label} ${preset} end-to-end ${ms.toFixed(2)} ms`);
          }
          for (const x of [q16, k16, v16, qc, kc, vc]) x.destroy();
        }
  } finally {
    rt.release();
  }
  return rows;
}

const module: BenchModule = { area: 'sage', run };
export default module;
