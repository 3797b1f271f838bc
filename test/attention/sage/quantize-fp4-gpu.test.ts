import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/core/rng.js';
import { Tensor, tensor } from '../../../src/core/tensor.js';
import { layoutShape, type Layout } from '../../../src/core/layout.js';
import { download, upload } from '../../../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import { recordQuantizeFp4Gpu } from '../../../src/attention/sage/quantize-fp4-gpu.js';
import { quantizeMicroscaled, type MicroscaleAxis } from '../../../src/quant/microscaling.js';
import { subtractBlockMeans } from '../../../src/quant/smoothing.js';
import type { MxScaleRule } from '../../../src/quant/types.js';
import { DTypeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { testGpu } from '../../gpu/harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

async function run(pass: (p: GPUComputePassEncoder) => () => void) {
  const enc = rt.device.createCommandEncoder();
  const p = enc.beginComputePass();
  const release = pass(p);
  p.end();
  rt.device.queue.submit([enc.finish()]);
  await rt.sync();
  release();
}

/**
 * Values that reach every part of both scale rules: per-token magnitudes from 2^-14 to 2^12 (NVFP4
 * scales from E4M3's subnormals to its 448 saturation, MXFP4 exponents across their range), exact
 * E4M3 midpoint ties (amax = 6·midpoint), E2M1 ties (x/s̃ ∈ {0.25, 0.75, …, 5}), small negatives that
 * round to −0, ±65504, and all-zero groups.
 */
function hardValues(shape: number[], seed: number, dtype: 'float32' | 'float16'): Tensor {
  const rng = Rng.fromSeed(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const D = shape[3];
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / D);
    const c = i % D;
    const kind = row % 11;
    const mag = 2 ** ((row % 27) - 14);
    if (kind === 3)
      data[i] = 0; // an all-zero row: every channel group is zero
    else if (kind === 5) data[i] = (c % 16 === 0 ? 6 : [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5][c % 7]) * mag;
    else if (kind === 6) data[i] = c % 16 === 0 ? 6 * 1.1875 * mag : rng.normal() * mag;
    else if (kind === 7) data[i] = c % 5 === 0 ? (c % 2 ? -65504 : 65504) : rng.normal() * 100;
    else if (kind === 9) data[i] = c === 1 ? 6 * mag : -0.01 * mag * (1 + rng.uniform());
    else data[i] = rng.normal() * mag;
  }
  return tensor(dtype === 'float16' ? Float32Array.from(data, (x) => Math.fround(x)) : data, shape, dtype);
}

function sameBits(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i])
      assert.fail(
        `${what}[${i}]: GPU ${a[i]} (0x${ua[i].toString(16)}) vs CPU ${b[i]} (0x${ub[i].toString(16)})`,
      );
  }
}

function sameCodes(a: Uint8Array, b: Uint8Array, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) assert.fail(`${what} code ${i}: GPU ${a[i]} vs CPU ${b[i]}`);
}

const FORMATS: { format: 'nvfp4' | 'mxfp4'; scaleRule?: MxScaleRule }[] = [
  { format: 'nvfp4' },
  { format: 'mxfp4' },
  { format: 'mxfp4', scaleRule: 'ocp' },
];

test(
  'GPU NVFP4 / MXFP4 quantization equals the CPU quantizer bit for bit (both axes, layouts, partial groups, hard values)',
  { skip },
  async () => {
    // D = 40: a partial channel group (8 of 16, 8 of 32); N = 37: a partial token group (5 of 16, 5 of 32)
    const dims = { batch: 2, heads: 3, tokens: 37, headDim: 40 };
    for (const layout of ['HND', 'NHD'] as Layout[]) {
      for (const dtype of ['float32', 'float16'] as const) {
        const shape = layoutShape(dims, layout);
        const x = hardValues(shape, 17, dtype);
        for (const f of FORMATS) {
          for (const axis of ['channels', 'tokens'] as MicroscaleAxis[]) {
            const what = `${f.format}${f.scaleRule ? ` ${f.scaleRule}` : ''} ${axis} ${layout} ${dtype}`;
            const cpu = quantizeMicroscaled(x, { ...f, axis, layout });
            let res: ReturnType<typeof recordQuantizeFp4Gpu> | undefined;
            await run((p) => {
              res = recordQuantizeFp4Gpu(upload(rt, x), { ...f, axis, layout }, p);
              return res.release;
            });
            const codes = await download(res!.codes);
            const scales = await download(res!.scales);
            assert.deepEqual(scales.shape, cpu.scales.shape, `${what}: scale shape`);
            assert.equal(codes.dtype, 'float4_e2m1fn');
            sameBits(scales.data as Float32Array, cpu.scales.data as Float32Array, `${what} scales`);
            sameCodes(codes.data as Uint8Array, cpu.codes.data as Uint8Array, what);
          }
        }
      }
    }
  },
);

test(
  'GPU FP4 quantization of Q minus its block means equals the CPU quantizer of the smoothed Q',
  { skip },
  async () => {
    const dims = { batch: 1, heads: 2, tokens: 150, headDim: 64 };
    const shape = layoutShape(dims, 'NHD');
    const raw = hardValues(shape, 23, 'float32').data as Float32Array;
    // a channel bias, which block smoothing removes
    const q = tensor(
      Float32Array.from(raw, (v, i) => v + 3 * ((i % 64) % 4)),
      shape,
      'float32',
    );
    const smooth = subtractBlockMeans(q, 64, { layout: 'NHD' });
    for (const f of FORMATS) {
      const cpu = quantizeMicroscaled(smooth.smoothed, { ...f, axis: 'channels', layout: 'NHD' });
      let res: ReturnType<typeof recordQuantizeFp4Gpu> | undefined;
      await run((p) => {
        res = recordQuantizeFp4Gpu(
          upload(rt, q),
          { ...f, axis: 'channels', layout: 'NHD', mean: upload(rt, smooth.mean), meanBlock: 64 },
          p,
        );
        return res.release;
      });
      sameBits(
        (await download(res!.scales)).data as Float32Array,
        cpu.scales.data as Float32Array,
        `${f.format} scales`,
      );
      sameCodes((await download(res!.codes)).data as Uint8Array, cpu.codes.data as Uint8Array, f.format);
    }
  },
);

test(
  'GPU FP4 quantization: a group holding NaN or inf gets scale NaN and codes 0, as on the CPU',
  { skip },
  async () => {
    const shape = [1, 1, 4, 32];
    const data = hardValues(shape, 3, 'float32').data as Float32Array;
    data[5] = NaN;
    data[32 + 20] = Infinity;
    const x = tensor(data, shape, 'float32');
    for (const f of FORMATS) {
      const cpu = quantizeMicroscaled(x, { ...f, axis: 'channels' });
      let res: ReturnType<typeof recordQuantizeFp4Gpu> | undefined;
      await run((p) => {
        res = recordQuantizeFp4Gpu(upload(rt, x), { ...f, axis: 'channels', layout: 'HND' }, p);
        return res.release;
      });
      const scales = (await download(res!.scales)).data as Float32Array;
      assert.ok(
        Number.isNaN(scales[0]) && Number.isNaN(scales[f.format === 'nvfp4' ? 3 : 1]),
        `${f.format}: NaN scales`,
      );
      sameBits(scales, cpu.scales.data as Float32Array, `${f.format} scales`);
      sameCodes((await download(res!.codes)).data as Uint8Array, cpu.codes.data as Uint8Array, f.format);
    }
  },
);

test('GPU FP4 quantization rejects bad options with typed errors', { skip }, () => {
  const x = upload(rt, tensor(new Float32Array(64), [1, 1, 2, 32], 'float32'));
  const enc = rt.device.createCommandEncoder();
  const p = enc.beginComputePass();
  assert.throws(
    () => recordQuantizeFp4Gpu(x, { format: 'nvfp4', scaleRule: 'ocp', axis: 'channels', layout: 'HND' }, p),
    UnsupportedOptionError,
  );
  assert.throws(
    () => recordQuantizeFp4Gpu(x, { format: 'fp4' as never, axis: 'channels', layout: 'HND' }, p),
    UnsupportedOptionError,
  );
  assert.throws(
    () =>
      recordQuantizeFp4Gpu(
        x,
        {
          format: 'nvfp4',
          axis: 'channels',
          layout: 'HND',
          mean: upload(rt, tensor(new Float32Array(3), [3], 'float32')),
        },
        p,
      ),
    UnsupportedOptionError,
  );
  const i8 = upload(rt, tensor(new Int8Array(64), [1, 1, 2, 32], 'int8'));
  assert.throws(
    () => recordQuantizeFp4Gpu(i8, { format: 'nvfp4', axis: 'channels', layout: 'HND' }, p),
    DTypeError,
  );
  p.end();
});

test(
  'FP4 Q/K decoded to f16 for the kernels is exact: NVFP4 code·scale; MXFP4 code·scale/2^E with the token factor 2^E',
  { skip },
  async () => {
    const { planDecodeFp4Gpu } = await import('../../../src/attention/sage/fp4-operand-gpu.js');
    const { decode } = await import('../../../src/numerics/decode.js');
    for (const layout of ['HND', 'NHD'] as Layout[]) {
      const dims = { batch: 2, heads: 3, tokens: 21, headDim: 64 };
      const shape = layoutShape(dims, layout);
      // magnitudes from 2^-14 to 2^12: NVFP4 scales over E4M3's range, MXFP4 exponents 2^26 apart
      const x = hardValues(shape, 41, 'float32');
      for (const f of FORMATS) {
        const cpu = quantizeMicroscaled(x, { ...f, axis: 'channels', layout });
        const plan = planDecodeFp4Gpu(
          { codes: upload(rt, cpu.codes), scales: upload(rt, cpu.scales) },
          f.format,
          layout,
        );
        await run((p) => {
          plan.record(p);
          return () => undefined;
        });
        const values = decode('float16', (await download(plan.values)).data as Uint16Array);
        const factors = (await download(plan.factors)).data as Float32Array;
        plan.destroy();
        const codes = decode('float4_e2m1fn', cpu.codes.data as Uint8Array);
        const scales = cpu.scales.data as Float32Array;
        const G = cpu.scales.shape[3];
        const g = f.format === 'nvfp4' ? 16 : 32;
        for (let i = 0; i < values.length; i++) {
          const d = i % 64;
          const t = Math.floor(i / 64);
          const bhn =
            layout === 'HND' ? t : (Math.floor(t / 63) * 3 + (t % 3)) * 21 + (Math.floor(t / 3) % 21);
          const exact = codes[i] * scales[bhn * G + Math.floor(d / g)];
          const factor = factors[bhn];
          assert.equal(values[i] * factor, exact, `${f.format} ${layout} element ${i}`);
        }
        // MXFP4: the factor is the token's largest group scale; NVFP4: 1
        for (let t = 0; t < factors.length; t++) {
          const want = f.format === 'nvfp4' ? 1 : Math.max(...scales.subarray(t * G, (t + 1) * G));
          assert.equal(factors[t], want, `${f.format} factor ${t}`);
        }
      }
    }
  },
);
