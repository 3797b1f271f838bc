/**
 * SageAttention kernel speed on the best WebGPU adapter: the presets' kernels (INT8 QKᵀ with fp16 or
 * E4M3 P and V; sage3's NVFP4 Q/K with ΔS, two-level NVFP4 P and NVFP4 V) from already-quantized
 * operands, against sparq's dense f16 kernel on the same inputs' shapes in the same run. TOPS =
 * 4·B·H·N²·D / t, halved for causal; kernel time only (quantization excluded, as the reference
 * benchmarks do, sageattention.md §10; sage3's kernel step includes decoding its FP4 Q/K codes to f16,
 * sage/fp4-operand-gpu.ts), then end to end from float16 GPU tensors.
 *
 * `--filter sage3-variants` (other filters then select among its labels, e.g. `--filter N16384`) times
 * instead, in one run at N = 16k (1k with --quick), D 64 and 128, causal and not: the dense kernel,
 * the sage3 kernel of 2026-12-01 ('baseline': ΔS read from storage per element, unit Q/K factors
 * multiplied, NVFP4 V decoded while staging), each change alone on top of it, the default (all three),
 * the default with the softmax or the K/V staging ablated (wrong output: what is left), and each
 * preset end to end with a GPU-time breakdown per step (timestamps around one pass per step) and the
 * host time until the work is submitted (allocation, WGSL, recording). Predictions (H200, N = 16k,
 * D = 128, baseline 84 ms): ΔS staged −8..−15 ms, unit factors −2..−4 ms, V decoded once −5..−10 ms
 * (+0.3 ms decode), default ≈ 50–60 ms (≈ 0.65× dense); D = 64 proportionally (baseline 53 ms →
 * 33–38 ms).
 */
import { planAttentionGpu } from '../src/attention/dense-gpu.js';
import { planSageKernelGpu, scaleGroupRules } from '../src/attention/sage/kernel-gpu.js';
import type { QKGranularity } from '../src/quant/types.js';
import { describeAdapter } from '../src/gpu/capabilities.js';
import { GpuTensor, emptyGpu, upload } from '../src/gpu/gpu-tensor.js';
import { Tensor } from '../src/core/tensor.js';
import { acquireGpu, type GpuRuntime } from '../src/gpu/runtime.js';
import { randomGpu } from './gpu-data.js';
import { median, timePlan, type BenchContext, type BenchModule, type BenchRow } from './harness.js';
import { sageAttention } from '../src/attention/sage/sage-attention.js';
import { sageAttentionGpu } from '../src/attention/sage/sage-attention-gpu.js';
import { resolveSageOptions } from '../src/attention/sage/options.js';
import type { SageKernelGpuOptions } from '../src/attention/sage/kernel-gpu.js';

function scaleTensor(rt: GpuRuntime, shape: number[], value: number): GpuTensor<'float32'> {
  return upload(
    rt,
    new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape, 'float32'),
  );
}

/** The sage3 kernel variants of the A/B run, by name (options on top of the common sage3 ones). */
const SAGE3_VARIANTS: [string, SageKernelGpuOptions][] = [
  ['baseline', { vDecode: 'staging', mma: { deltaSStaging: 'global', qkScales: true } }],
  ['baseline + ΔS staged', { vDecode: 'staging', mma: { qkScales: true } }],
  ['baseline + unit factors', { vDecode: 'staging', mma: { deltaSStaging: 'global' } }],
  ['baseline + V decoded once', { mma: { deltaSStaging: 'global', qkScales: true } }],
  ['default', {}],
  ['default, no softmax (wrong output)', { mma: { ablate: 'no-softmax' } }],
  ['default, no K/V staging (wrong output)', { mma: { ablate: 'no-staging' } }],
];

/**
 * sage3 kernel operands: random bytes as E2M1 codes (the kernels read the low nibble: values of std ≈
 * 2.93), NVFP4 scales that give logits of std ≈ 1.5 in log2 units and V of std ≈ 1, and a ΔS of zeros
 * [B, H, N/128, N] (its reads are what costs, not its values).
 */
function sage3Operands(rt: GpuRuntime, shape: number[], codes: [GpuTensor, GpuTensor, GpuTensor]) {
  const [B, H, tokens, headDim] = shape;
  const fp4 = (t: GpuTensor) => new GpuTensor(rt, t.buffer, shape, 'float4_e2m1fn');
  const sigmaLog2e = Math.LOG2E / Math.sqrt(headDim);
  const delta = Math.sqrt(1.5 / (sigmaLog2e * 8.56 * Math.sqrt(headDim)));
  const qs = scaleTensor(rt, [B, H, tokens, headDim / 16], delta);
  const ks = scaleTensor(rt, [B, H, tokens, headDim / 16], delta);
  const vs = scaleTensor(rt, [B, H, Math.ceil(tokens / 16), headDim], 1 / 2.93);
  const deltaS = emptyGpu(rt, [B, H, Math.ceil(tokens / 128), tokens], 'float32', 'bench ΔS');
  return {
    q: { codes: fp4(codes[0]), scales: qs },
    k: { codes: fp4(codes[1]), scales: ks },
    v: { codes: fp4(codes[2]), scales: vs },
    deltaS,
    destroy: () => [qs, ks, vs, deltaS].forEach((x) => x.destroy()),
  };
}

/**
 * One end-to-end call with a pass per step between timestamp writes: GPU ms per step, host ms until
 * submission, wall ms until the queue is done.
 */
async function profileEndToEnd(
  rt: GpuRuntime,
  [q, k, v]: GpuTensor[],
  opts: { preset: 'sage1' | 'sage2' | 'sage3'; causal: boolean },
): Promise<{ steps: Map<string, number>; hostMs: number; wallMs: number }> {
  const device = rt.device;
  const slots = 32;
  const querySet = device.createQuerySet({ type: 'timestamp', count: slots });
  const resolve = rt.createBuffer(8 * slots, 0x0004 /* COPY_SRC */ | 0x0200 /* QUERY_RESOLVE */);
  const read = rt.createBuffer(8 * slots, 0x0001 /* MAP_READ */ | 0x0008 /* COPY_DST */);
  const names: string[] = [];
  try {
    const t0 = performance.now();
    const out = sageAttentionGpu(q, k, v, resolveSageOptions(q, k, v, opts), {
      pass(step) {
        const i = names.push(step) - 1;
        return {
          timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        };
      },
      finish(enc) {
        enc.resolveQuerySet(querySet, 0, 2 * names.length, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * names.length);
      },
    });
    const hostMs = performance.now() - t0;
    await rt.sync();
    const wallMs = performance.now() - t0;
    ('out' in out ? out.out : out).destroy();
    await read.mapAsync(0x0001);
    const ts = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    const steps = new Map<string, number>();
    names.forEach((n, i) => steps.set(n, Number(ts[2 * i + 1] - ts[2 * i]) / 1e6));
    return { steps, hostMs, wallMs };
  } finally {
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
}

async function runSage3Variants(ctx: BenchContext, rt: GpuRuntime, device: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const filters = ctx.filter.filter((f) => f !== 'sage3-variants');
  const want = (name: string) => filters.length === 0 || filters.some((f) => name.includes(f));
  const tokens = ctx.quick ? 1024 : 16384;
  const [B, H] = ctx.quick ? [1, 4] : [2, 16];
  for (const headDim of [64, 128])
    for (const causal of [false, true]) {
      const label = `B${B} H${H} N${tokens} D${headDim}${causal ? ' causal' : ''}`;
      if (!want(label)) continue;
      const shape = [B, H, tokens, headDim];
      const flops = (4 * B * H * tokens * tokens * headDim) / (causal ? 2 : 1);
      const f16 = [1, 2, 3].map((seed) => randomGpu(rt, shape, 'float16', seed));
      const codes = [4, 5, 8].map((seed) => randomGpu(rt, shape, 'int8', seed)) as [
        GpuTensor,
        GpuTensor,
        GpuTensor,
      ];
      const densePlan = planAttentionGpu(f16[0], f16[1], f16[2], { causal });
      const dense = await timePlan(rt, densePlan, ctx.quick);
      const denseTops = flops / (dense.kernelMs * 1e-3) / 1e12;
      rows.push({
        area: 'sage',
        name: `sage3-variants dense f16 ${label} kernel`,
        value: denseTops,
        unit: 'TFLOPS',
        backend: 'webgpu',
        tier: densePlan.tier,
        device,
        notes: `${dense.kernelMs.toFixed(3)} ms (${dense.method})`,
      });
      console.error(`${label} dense ${dense.kernelMs.toFixed(3)} ms ${denseTops.toFixed(1)} TFLOPS`);
      const ops = sage3Operands(rt, shape, codes);
      let kernelTier = '';
      for (const [variant, extra] of SAGE3_VARIANTS) {
        const plan = planSageKernelGpu(ops.q, ops.k, ops.v, {
          causal,
          qkFormat: 'nvfp4',
          pFormat: 'nvfp4',
          deltaS: ops.deltaS,
          blockQ: 128,
          blockK: 128,
          ...extra,
        });
        kernelTier = plan.tier;
        const t = await timePlan(rt, plan, ctx.quick);
        const tops = flops / (t.kernelMs * 1e-3) / 1e12;
        console.error(`${label} sage3 ${variant} ${t.kernelMs.toFixed(3)} ms ${tops.toFixed(1)} TOPS`);
        rows.push({
          area: 'sage',
          name: `sage3-variants sage3 kernel ${variant} ${label}`,
          value: tops,
          unit: 'TOPS',
          backend: 'webgpu',
          tier: kernelTier,
          device,
          notes: `${t.kernelMs.toFixed(3)} ms (${t.method}) including the FP4 decodes; ${(tops / denseTops).toFixed(2)}× dense in the same run; options ${JSON.stringify(extra)}`,
        });
      }
      ops.destroy();
      if (!rt.caps.timestamps) continue;
      for (const preset of ['sage1', 'sage2', 'sage3'] as const) {
        const runs: Awaited<ReturnType<typeof profileEndToEnd>>[] = [];
        for (let i = 0; i < (ctx.quick ? 2 : 4); i++)
          runs.push(await profileEndToEnd(rt, f16, { preset, causal }));
        const measured = runs.slice(1);
        const med = (f: (r: (typeof runs)[number]) => number) => median(measured.map(f));
        const stepNames = [...measured[0].steps.keys()];
        const perStep = stepNames.map((n) => [n, med((r) => r.steps.get(n) ?? NaN)] as const);
        const gpuMs = perStep.reduce((a, [, ms]) => a + ms, 0);
        const wallMs = med((r) => r.wallMs);
        const hostMs = med((r) => r.hostMs);
        const breakdown = perStep
          .filter(([, ms]) => ms > 0.005)
          .map(([n, ms]) => `${n} ${ms.toFixed(2)}`)
          .join(', ');
        console.error(
          `${label} ${preset} end-to-end ${wallMs.toFixed(2)} ms wall, host ${hostMs.toFixed(2)}, GPU ${gpuMs.toFixed(2)} (${breakdown})`,
        );
        rows.push({
          area: 'sage',
          name: `sage3-variants sageAttention ${preset} end-to-end steps ${label}`,
          value: wallMs,
          unit: 'ms',
          backend: 'webgpu',
          tier: kernelTier,
          device,
          notes: `wall ${wallMs.toFixed(2)} ms from float16 GPU tensors (one pass per step); host until submit ${hostMs.toFixed(2)} ms; GPU ${gpuMs.toFixed(2)} ms: ${breakdown} (ms, median of ${measured.length} after a warm-up)`,
        });
      }
      for (const x of [...f16, ...codes]) x.destroy();
    }
  return rows;
}

async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rt = await acquireGpu({ timing: true });
  const device = describeAdapter(rt.caps);
  const rows: BenchRow[] = [];
  const want = (name: string) => ctx.filter.length === 0 || ctx.filter.some((f) => name.includes(f));
  const tiles = { blockQ: 128, warpQ: 32, blockK: 64, warpK: 64 };
  try {
    if (ctx.filter.includes('sage3-variants')) return await runSage3Variants(ctx, rt, device);
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
          const dense = await timePlan(rt, densePlan, ctx.quick);
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
            const t = await timePlan(rt, plan, ctx.quick);
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
            // sage3: random bytes as E2M1 codes, NVFP4 scales and a ΔS of zeros (sage3Operands)
            const ops = sage3Operands(rt, shape, [qc, kc, vc]);
            const plan = planSageKernelGpu(ops.q, ops.k, ops.v, {
              causal,
              qkFormat: 'nvfp4',
              pFormat: 'nvfp4',
              deltaS: ops.deltaS,
              blockQ: 128,
              blockK: 128,
            });
            const tier = plan.tier;
            const t = await timePlan(rt, plan, ctx.quick);
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
              notes: `${t.kernelMs.toFixed(3)} ms (${t.method}) including the Q/K/V FP4 → f16 decodes; ${(tops / denseTops).toFixed(2)}× sparq dense f16 in the same run`,
            });
            ops.destroy();
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
