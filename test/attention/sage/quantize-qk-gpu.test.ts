import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tensor } from '../../../src/core/tensor.js';
import { download, upload } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { recordQuantizeInt8Gpu, recordTokenMeanGpu } from '../../../src/attention/sage/quantize-qk-gpu.js';
import { scaleGroupRules } from '../../../src/attention/sage/kernel-gpu.js';
import { quantizeIntGroups } from '../../../src/quant/int-group-quant.js';
import { subtractTokenMean } from '../../../src/quant/smoothing.js';
import { qkScaleIndex, DEFAULT_QK_TILING } from '../../../src/quant/qk-scale-groups.js';
import type { QKGranularity } from '../../../src/quant/types.js';
import { testGpu } from '../../gpu/harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;
const GRANULARITIES: QKGranularity[] = ['per-block', 'per-warp', 'per-thread', 'per-token'];

test('the kernels’ scale-group rules index the same scale as the quantizers for every token', () => {
  for (const g of GRANULARITIES) {
    const rules = scaleGroupRules(g, 300, 300, DEFAULT_QK_TILING);
    for (const [role, rule] of [
      ['q', rules.q],
      ['k', rules.k],
    ] as const) {
      for (let n = 0; n < 300; n++) {
        const mine =
          Math.floor(n / rule.div) * rule.mul + (rule.mod8Div > 0 ? Math.floor((n % 8) / rule.mod8Div) : 0);
        assert.equal(mine, qkScaleIndex(role, g, n, DEFAULT_QK_TILING), `${g} ${role} token ${n}`);
      }
    }
  }
});

async function run(pass: (p: GPUComputePassEncoder) => () => void) {
  const enc = rt.device.createCommandEncoder();
  const p = enc.beginComputePass();
  const release = pass(p);
  p.end();
  rt.device.queue.submit([enc.finish()]);
  await rt.sync();
  release();
}

test(
  'GPU INT8 quantization of Q and smoothed K equals the CPU quantizer within float rounding',
  { skip },
  async () => {
    for (const layout of ['HND', 'NHD'] as const) {
      for (const g of GRANULARITIES) {
        const [B, H, N, D] = [2, 3, 150, 64];
        const shape = layout === 'HND' ? [B, H, N, D] : [B, N, H, D];
        // K with a large per-channel bias, which smoothing removes
        const raw = randn(shape, { seed: 5 }).data as Float32Array;
        const kData = Float32Array.from(raw, (x, i) => x + 4 * ((i % D) % 3));
        const q = randn(shape, { seed: 6 });
        const k = tensor(kData, shape, 'float32');
        const sigmaLog2e = Math.fround(Math.LOG2E / Math.sqrt(D));
        const prescale = g === 'per-block' ? sigmaLog2e : 1;
        const rules = scaleGroupRules(g, N, N, DEFAULT_QK_TILING);
        const qg = upload(rt, q);
        const kg = upload(rt, k);
        let out: Record<string, ReturnType<typeof recordQuantizeInt8Gpu>> = {};
        let mean: ReturnType<typeof recordTokenMeanGpu> | undefined;
        await run((p) => {
          mean = recordTokenMeanGpu(kg, layout, p);
          out = {
            q: recordQuantizeInt8Gpu(
              qg,
              { layout, granularity: g, rule: rules.q, rounding: 'nearest-even', prescale },
              p,
            ),
            k: recordQuantizeInt8Gpu(
              kg,
              { layout, granularity: g, rule: rules.k, rounding: 'half-away', prescale: 1, mean: mean.mean },
              p,
            ),
          };
          return () => {
            out.q.release();
            out.k.release();
            mean?.release();
          };
        });
        const cpuMean = subtractTokenMean(k, { layout });
        const gpuMean = (await download(mean!.mean)).data as Float32Array;
        (cpuMean.mean.data as Float32Array).forEach((m, i) =>
          assert.ok(
            Math.abs(gpuMean[i] - m) <= 1e-5 * Math.max(1, Math.abs(m)),
            `mean[${i}] ${gpuMean[i]} vs ${m}`,
          ),
        );
        const cpu = {
          q: quantizeIntGroups(q, {
            role: 'q',
            bits: 8,
            granularity: g,
            layout,
            rounding: 'nearest-even',
            prescale,
          }),
          k: quantizeIntGroups(cpuMean.smoothed, {
            role: 'k',
            bits: 8,
            granularity: g,
            layout,
            rounding: 'half-away',
          }),
        };
        for (const role of ['q', 'k'] as const) {
          const gs = (await download(out[role].scales)).data as Float32Array;
          const cs = cpu[role].scales.data as Float32Array;
          assert.equal(gs.length, cs.length, `${layout} ${g} ${role}: scale count`);
          cs.forEach((s, i) =>
            assert.ok(Math.abs(gs[i] - s) <= 1e-5 * s, `${layout} ${g} ${role} scale ${i}: ${gs[i]} vs ${s}`),
          );
          const gc = (await download(out[role].codes)).data as Int8Array;
          const cc = cpu[role].codes.data as Int8Array;
          let off = 0;
          cc.forEach((c, i) => {
            assert.ok(Math.abs(gc[i] - c) <= 1, `${layout} ${g} ${role} code ${i}: ${gc[i]} vs ${c}`);
            if (gc[i] !== c) off++;
          });
          // only values within float rounding of a .5 boundary may land on the other side
          assert.ok(off <= cc.length * 1e-3, `${layout} ${g} ${role}: ${off} of ${cc.length} codes differ`);
        }
      }
    }
  },
);

test(
  'GPU Q smoothing: block means and ΔS equal the CPU step to float rounding, and INT8 Q minus its block means equals the CPU quantizer',
  { skip },
  async () => {
    const { recordSmoothQGpu } = await import('../../../src/attention/sage/smooth-q-gpu.js');
    const { quantizeQK } = await import('../../../src/attention/sage/quantize-qk.js');
    for (const layout of ['HND', 'NHD'] as const) {
      // GQA, Nq not a multiple of the block (a partial last block), K with a channel bias
      const [B, H, Hkv, Nq, Nk, D, blockQ] = [2, 4, 2, 150, 70, 64, 64];
      const shape = (h: number, n: number) => (layout === 'HND' ? [B, h, n, D] : [B, n, h, D]);
      const q = tensor(
        (randn(shape(H, Nq), { seed: 31 }).data as Float32Array).map((x, i) => x + 2 * ((i % D) % 5)),
        shape(H, Nq),
        'float32',
      );
      const k = tensor(
        (randn(shape(Hkv, Nk), { seed: 32 }).data as Float32Array).map((x, i) => x + 3 * ((i % D) % 3)),
        shape(Hkv, Nk),
        'float32',
      );
      const cpu = quantizeQK(q, k, {
        layout,
        smoothQ: true,
        blockQ,
        quant: { kind: 'int8', granularity: 'per-warp' },
      });
      const qg = upload(rt, q);
      const kg = upload(rt, k);
      const kMean = upload(rt, cpu.kMean);
      let sq: Awaited<ReturnType<typeof recordSmoothQGpu>> | undefined;
      let qq: ReturnType<typeof recordQuantizeInt8Gpu> | undefined;
      const tiling = { ...DEFAULT_QK_TILING, blockQ };
      const rule = scaleGroupRules('per-warp', Nq, Nk, tiling).q;
      const cpuMean = upload(rt, cpu.qMean!);
      await run((p) => {
        sq = recordSmoothQGpu(qg, kg, { layout, blockQ, kMean }, p);
        // the CPU's means, so the codes can be compared with the CPU quantizer's
        qq = recordQuantizeInt8Gpu(
          qg,
          {
            layout,
            granularity: 'per-warp',
            rule,
            rounding: 'nearest-even',
            prescale: 1,
            mean: cpuMean,
            meanBlock: blockQ,
          },
          p,
        );
        return () => {
          sq?.release();
          qq?.release();
        };
      });
      const close = (g: Float32Array, c: Float32Array, scale: number, what: string) => {
        assert.equal(g.length, c.length, `${what}: length`);
        c.forEach((x, i) =>
          assert.ok(Math.abs(g[i] - x) <= 2e-6 * scale, `${layout} ${what}[${i}]: GPU ${g[i]} vs CPU ${x}`),
        );
      };
      close((await download(sq!.qMean)).data as Float32Array, cpu.qMean!.data as Float32Array, 10, 'q mean');
      // ΔS sums 64 products of size ~10·4: compare on that scale
      close((await download(sq!.deltaS)).data as Float32Array, cpu.deltaS!.data as Float32Array, 400, 'ΔS');
      assert.deepEqual(sq!.deltaS.shape, [B, H, Math.ceil(Nq / blockQ), Nk]);
      const gs = (await download(qq!.scales)).data as Float32Array;
      (cpu.q.scales.data as Float32Array).forEach((s, i) =>
        assert.ok(Math.abs(gs[i] - s) <= 1e-6 * s, `${layout} scale ${i}: ${gs[i]} vs ${s}`),
      );
      const gc = (await download(qq!.codes)).data as Int8Array;
      let off = 0;
      (cpu.q.codes.data as Int8Array).forEach((c, i) => {
        assert.ok(Math.abs(gc[i] - c) <= 1, `${layout} code ${i}: ${gc[i]} vs ${c}`);
        if (gc[i] !== c) off++;
      });
      assert.ok(off <= gc.length * 1e-3, `${layout}: ${off} of ${gc.length} codes differ`);
      // 16-token blocks: 10 ΔS rows per head, more than one workgroup's chunk of 8 (the last partial)
      const small = quantizeQK(q, k, { layout, smoothQ: true, blockQ: 16, warpQ: 16 });
      let sq16: Awaited<ReturnType<typeof recordSmoothQGpu>> | undefined;
      await run((p) => {
        sq16 = recordSmoothQGpu(qg, kg, { layout, blockQ: 16, kMean }, p);
        return () => sq16?.release();
      });
      close(
        (await download(sq16!.deltaS)).data as Float32Array,
        small.deltaS!.data as Float32Array,
        400,
        'ΔS/16',
      );
    }
  },
);
