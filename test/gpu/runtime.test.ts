import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dawnFlags } from '../../src/gpu/runtime.js';
import { download, upload } from '../../src/gpu/gpu-tensor.js';
import { Tensor, tensor } from '../../src/core/tensor.js';
import { type DType, DTYPES, storageOf, type TypedArray } from '../../src/core/dtype.js';
import { DeviceLostError, GpuError, GpuOutOfMemoryError } from '../../src/core/errors.js';
import type { GpuRuntime } from '../../src/gpu/runtime.js';
import { testGpu, REQUIRE_WEBGPU } from './harness.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

test('Dawn toggles go into one enable string (a second one would replace the first)', () => {
  const flags = dawnFlags({ enableToggles: ['dump_shaders'], timing: true });
  assert.deepEqual(flags, [
    'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,dump_shaders',
    'disable-dawn-features=timestamp_quantization',
  ]);
  assert.equal(dawnFlags().filter((f) => f.startsWith('enable-dawn-features=')).length, 1);
  assert.throws(() => dawnFlags({ dawnFlags: ['enable-dawn-features=foo'] }), GpuError);
});

test('the capability record is frozen and lists the tiers best first', { skip }, () => {
  const c = rt.caps;
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.features) && Object.isFrozen(c.tiers));
  assert.equal(c.tiers[c.tiers.length - 1], 'f32');
  assert.equal(c.tiers.includes('f16'), c.features.includes('shader-f16'));
  assert.ok(c.limits.maxStorageBufferBindingSize > 0);
  if (c.tiers.includes('subgroup-matrix')) {
    assert.ok(
      c.subgroupMatrixConfigs.some((m) => m.componentType === 'f16' && m.resultComponentType === 'f32'),
    );
  }
});

test(
  'upload then download returns the same bytes for every dtype, odd sizes included',
  { skip },
  async () => {
    for (const dtype of DTYPES as readonly DType[]) {
      for (const n of [1, 3, 7, 64]) {
        const Storage = storageOf(dtype);
        const data = new Storage(n) as TypedArray;
        for (let i = 0; i < n; i++)
          data[i] = dtype === 'bool' ? i % 2 : dtype === 'int4' ? (i % 16) - 8 : (i * 37 + 11) % 100;
        const t = new Tensor(data, [n], dtype);
        const back = await download(upload(rt, t));
        assert.equal(back.dtype, dtype);
        assert.deepEqual(Array.from(back.data), Array.from(data), `${dtype} n=${n}`);
      }
    }
  },
);

test('a buffer beyond the device limit is a typed out-of-memory error', { skip }, () => {
  assert.throws(() => rt.createBuffer(rt.caps.limits.maxBufferSize + 4, 0x80), GpuOutOfMemoryError);
});

test('a released runtime refuses work with DeviceLostError', { skip }, async () => {
  const { acquireGpu } = await import('../../src/gpu/runtime.js');
  const r = await acquireGpu();
  const g = upload(r, tensor([1, 2, 3], [3], 'float32'));
  r.release();
  await assert.rejects(download(g), DeviceLostError);
  assert.throws(() => r.createBuffer(16, 0x80), DeviceLostError);
});

test('Dawn survives garbage collection while a device lives (regression)', { skip }, () => {
  const res = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'test/gpu/gc-stress.script.ts'],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  assert.equal(res.status, 0, `child exited ${res.status} signal ${res.signal}\n${res.stderr.slice(-2000)}`);
  assert.match(res.stdout, /gc-stress ok/);
});

test('CI requires WebGPU', { skip: process.env.CI ? false : 'not in CI' }, () => {
  assert.ok(
    REQUIRE_WEBGPU,
    'CI must set SPARQ_REQUIRE_WEBGPU=1 so a missing adapter fails instead of skipping',
  );
  assert.equal(typeof gpu, 'object');
});

test("a caller's GPUDevice is used as is and not destroyed on release", { skip }, async () => {
  const { acquireGpu } = await import('../../src/gpu/runtime.js');
  const borrowed = await acquireGpu({ device: rt.device });
  assert.equal(borrowed.device, rt.device);
  assert.deepEqual(borrowed.caps.features, rt.caps.features);
  borrowed.release();
  const back = await download(upload(rt, tensor([5, 6], [2], 'float32')));
  assert.deepEqual(Array.from(back.data), [5, 6]);
});
