import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertLayout } from '../../../src/core/layout.js';
import { Tensor, randn, tensor } from '../../../src/core/tensor.js';
import { download, upload } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { gatherTokens, scatterTokens } from '../../../src/attention/sparse/permute.js';
import { recordPermuteTokens } from '../../../src/attention/sparse/permute-gpu.js';
import { planSvgGpu, svgAttentionGpu } from '../../../src/attention/sparse/svg-gpu.js';
import { svgAttention } from '../../../src/attention/sparse/svg.js';
import { UnsupportedOptionError } from '../../../src/core/errors.js';
import { planSvg, resolveSvgPlanShape, svgMask } from '../../../src/attention/sparse/svg-plan.js';
import { fixedTileMask } from '../../../src/attention/sparse/svg-layout.js';
import {
  recordSvgProfileGpu,
  svgProfileKeysPerChunk,
  svgProfileStagedFits,
} from '../../../src/attention/sparse/svg-profile-gpu.js';
import { videoWorkload } from '../../../src/attention/sparse/video-workload.js';
import type { AttentionWithLse } from '../../../src/attention/options.js';
import type { GpuTensor } from '../../../src/gpu/gpu-tensor.js';
import { testGpu } from '../../gpu/harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

function pass(record: (p: GPUComputePassEncoder) => void) {
  const enc = rt.device.createCommandEncoder();
  const p = enc.beginComputePass();
  record(p);
  p.end();
  rt.device.queue.submit([enc.finish()]);
}

test(
  'GPU token gather/scatter equal the CPU ones (HND, NHD, float16 rows, LSE vectors)',
  { skip },
  async () => {
    const x = randn([2, 3, 10, 4], { seed: 1 });
    const perm = new Int32Array(60);
    for (let s = 0; s < 6; s++) for (let r = 0; r < 10; r++) perm[s * 10 + r] = (r * 3 + s) % 10;
    const permGpu = upload(rt, new Tensor(perm, [60], 'int32'));
    const ref = gatherTokens(x, perm);
    for (const layout of ['HND', 'NHD'] as const) {
      for (const dtype of ['float32', 'float16'] as const) {
        const input = dtype === 'float16' ? tensor(x.data as Float32Array, x.shape, 'float16') : x;
        const xg = upload(rt, convertLayout(input, 'HND', layout));
        let g!: GpuTensor;
        let back!: GpuTensor;
        pass((p) => {
          g = recordPermuteTokens(xg, permGpu, layout, false, p).out;
          back = recordPermuteTokens(g, permGpu, layout, true, p).out;
        });
        const expect = dtype === 'float16' ? gatherTokens(input, perm) : ref;
        assert.deepEqual(
          (await download(g)).data,
          convertLayout(expect, 'HND', layout).data,
          `${layout} ${dtype}`,
        );
        assert.deepEqual((await download(back)).data, convertLayout(input, 'HND', layout).data);
      }
    }
    const lse = randn([2, 3, 10], { seed: 2 });
    const lseGpu = upload(rt, lse);
    let s!: GpuTensor;
    pass((p) => (s = recordPermuteTokens(lseGpu, permGpu, 'lse', true, p).out));
    assert.deepEqual((await download(s)).data, scatterTokens(lse.reshape([2, 3, 10, 1]), perm).data);
  },
);

const clip = {
  frames: 4,
  height: 8,
  width: 8,
  blockQ: 32,
  blockK: 32,
  density: 0.15,
  sampledRows: 16,
} as const;

test(
  'GPU profiling picks the CPU kinds with matching MSEs; svgAttentionGpu = masked float64 oracle',
  { skip },
  async () => {
    const w = videoWorkload({
      ...clip,
      prefixTokens: 5,
      seed: 2,
      heads: ['spatial', 'temporal', 'semantic', 'temporal'],
    });
    const opts = { ...clip, prefixTokens: 5, firstFrameSink: true };
    const [q, k, v] = [w.q, w.k, w.v].map((t) => upload(rt, t));
    const cpu = planSvg(w.q, w.k, w.v, opts);
    const plan = await planSvgGpu(q, k, v, opts);
    assert.deepEqual(plan.headKinds, cpu.headKinds);
    assert.deepEqual(plan.profile!.rows, cpu.profile!.rows);
    for (const [s, m] of plan.profile!.mse.entries()) {
      const c = cpu.profile!.mse[s];
      assert.ok(
        Math.abs(m.spatial - c.spatial) <= 1e-3 * c.spatial + 1e-9,
        `head ${s} spatial ${m.spatial} vs ${c.spatial}`,
      );
      assert.ok(
        Math.abs(m.temporal - c.temporal) <= 1e-3 * c.temporal + 1e-9,
        `head ${s} temporal ${m.temporal} vs ${c.temporal}`,
      );
    }
    const ref = attentionReference(w.q, w.k, w.v, { mask: svgMask(cpu), returnLse: true });
    // profiling on the GPU inside the call (nothing read back) and with the read-back plan give the same output
    const res = svgAttentionGpu(q, k, v, { ...opts, returnLse: true }) as AttentionWithLse<
      GpuTensor<'float32'>
    >;
    const out = await download(res.out);
    assert.ok(maxAbsDiff(out.data, ref.out.data) < 2e-5, `out ${maxAbsDiff(out.data, ref.out.data)}`);
    assert.ok(maxAbsDiff((await download(res.lse)).data, ref.lse.data) < 2e-4);
    const withPlan = await download(svgAttentionGpu(q, k, v, { ...opts, plan }) as GpuTensor);
    assert.deepEqual(withPlan.data, out.data);
    // svgAttention dispatches GPU tensors here; mixing host and GPU tensors is an error
    assert.deepEqual((await download(svgAttention(q, k, v, opts))).data, out.data);
    assert.throws(() => svgAttention(q as never, w.k, w.v, opts), UnsupportedOptionError);
  },
);

test('svgAttentionGpu in NHD and in the dense warm-up', { skip }, async () => {
  const w = videoWorkload({ ...clip, seed: 3, heads: ['temporal', 'spatial'] });
  const nhd = (t: Tensor) => upload(rt, convertLayout(t, 'HND', 'NHD'));
  const out = await download(
    svgAttentionGpu(nhd(w.q), nhd(w.k), nhd(w.v), { ...clip, layout: 'NHD' }) as GpuTensor,
  );
  const ref = attentionReference(w.q, w.k, w.v, { mask: svgMask(planSvg(w.q, w.k, w.v, clip)) });
  assert.ok(maxAbsDiff(out.data, convertLayout(ref, 'HND', 'NHD').data) < 2e-5);
  const dense = await download(
    svgAttentionGpu(upload(rt, w.q), upload(rt, w.k), upload(rt, w.v), {
      ...clip,
      layer: 0,
      numLayers: 10,
      firstLayersFp: 0.2,
    }) as GpuTensor,
  );
  assert.ok(maxAbsDiff(dense.data, attentionReference(w.q, w.k, w.v).data) < 2e-5);
});

test(
  "GPU profiling kernels 'staged' and 'split' (keys over chunks, merged) give the CPU's MSEs and kinds (13 rows, float16, NHD)",
  { skip },
  async () => {
    const w = videoWorkload({
      ...clip,
      prefixTokens: 3,
      seed: 6,
      heads: ['temporal', 'spatial', 'semantic'],
    });
    const opts = { ...clip, prefixTokens: 3, sampledRows: 13, layout: 'NHD' as const };
    const f16 = (t: Tensor) => tensor(t.data as Float32Array, t.shape, 'float16');
    const [qh, kh, vh] = [w.q, w.k, w.v].map(f16);
    const cpu = planSvg(qh, kh, vh, { ...opts, layout: 'HND' });
    const [q, k, v] = [qh, kh, vh].map((t) => upload(rt, convertLayout(t, 'HND', 'NHD')));
    const shape = resolveSvgPlanShape(q, k, v, opts);
    const prof = shape.profiling!;
    // 259 keys: 9 chunks of 32, the last one partial
    assert.equal(svgProfileKeysPerChunk(shape.problem.tokensQ), 32);
    for (const kernel of ['staged', 'split'] as const) {
      let made!: ReturnType<typeof recordSvgProfileGpu>;
      pass((p) => {
        made = recordSvgProfileGpu(
          q,
          k,
          v,
          shape.problem,
          shape.geometry,
          fixedTileMask(shape.base.layout),
          prof.blockQ,
          prof.blockK,
          prof.rows,
          p,
          { kernel },
        );
      });
      const kinds = Array.from((await download(made.kinds)).data, (x) => (x === 1 ? 'temporal' : 'spatial'));
      const mse = (await download(made.mse)).data;
      assert.deepEqual(kinds, cpu.headKinds, kernel);
      for (const [s, c] of cpu.profile!.mse.entries()) {
        assert.ok(Math.abs(mse[2 * s] - c.spatial) <= 1e-3 * c.spatial + 1e-9, `${kernel} head ${s} spatial`);
        assert.ok(
          Math.abs(mse[2 * s + 1] - c.temporal) <= 1e-3 * c.temporal + 1e-9,
          `${kernel} head ${s} temporal`,
        );
      }
      made.release();
      for (const t of [made.kinds, made.mse, made.perm]) t.destroy();
    }
  },
);

test('the staged profiling kernel runs only where its vec4 words and tiles fit', () => {
  assert.ok(svgProfileStagedFits('f16', 128, 48 * 1024));
  assert.ok(svgProfileStagedFits('f32', 64, 32 * 1024));
  assert.ok(!svgProfileStagedFits('f16', 12, 1 << 20), 'float16 needs D % 8 == 0');
  assert.ok(svgProfileStagedFits('f32', 12, 1 << 20), 'float32 needs D % 4 == 0');
  assert.ok(!svgProfileStagedFits('f32', 6, 1 << 20));
  // D = 256 float32: K and V tiles of 32 keys are 66 KiB, beyond a 32 KiB device
  assert.ok(!svgProfileStagedFits('f32', 256, 32 * 1024));
});

test(
  "GPU profiling at a float16 head dim of 36 falls back to 'split' and refuses 'staged'",
  { skip },
  async () => {
    const w = videoWorkload({ ...clip, headDim: 36, seed: 8, heads: ['temporal', 'spatial'] });
    const f16 = (t: Tensor) => tensor(t.data as Float32Array, t.shape, 'float16');
    const [qh, kh, vh] = [w.q, w.k, w.v].map(f16);
    const cpu = planSvg(qh, kh, vh, { ...clip, sampledRows: 9 });
    const [q, k, v] = [qh, kh, vh].map((t) => upload(rt, t));
    const shape = resolveSvgPlanShape(q, k, v, { ...clip, sampledRows: 9 });
    const prof = shape.profiling!;
    const record = (p: GPUComputePassEncoder, kernel?: 'staged') =>
      recordSvgProfileGpu(
        q,
        k,
        v,
        shape.problem,
        shape.geometry,
        fixedTileMask(shape.base.layout),
        prof.blockQ,
        prof.blockK,
        prof.rows,
        p,
        kernel ? { kernel } : {},
      );
    assert.throws(() => pass((p) => record(p, 'staged')), UnsupportedOptionError);
    let made!: ReturnType<typeof recordSvgProfileGpu>;
    pass((p) => {
      made = record(p);
    });
    const kinds = Array.from((await download(made.kinds)).data, (x) => (x === 1 ? 'temporal' : 'spatial'));
    assert.deepEqual(kinds, cpu.headKinds);
    made.release();
    for (const t of [made.kinds, made.mse, made.perm, q, k, v]) t.destroy();
  },
);
