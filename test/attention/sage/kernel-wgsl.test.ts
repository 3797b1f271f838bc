/**
 * The tensor-core SageAttention3 kernels cannot run on lavapipe (no subgroup matrices), so CI compiles
 * them with stand-ins for the matrix builtins (test/gpu/subgroup-matrix-standins.ts): FP4 Q/K factors,
 * ΔS, NVFP4 P (a lane's chunk one or two 16-key groups, or half a group shared with the next lane)
 * and NVFP4 V staging must parse, type-check and pass WGSL's uniformity analysis for every staging
 * scheme and head dim. Running them is the H100's job (kernel-gpu.test.ts on the 'subgroup-matrix'
 * tier). The generator also refuses lane chunks that would split a 16-key group unevenly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import {
  defaultMmaConfig,
  mmaFlashWgsl,
  type MmaFlashConfig,
} from '../../../src/attention/flash-wgsl-mma.js';
import { testGpu } from '../../gpu/harness.js';
import { compileErrors, withSubgroupMatrixStandIns } from '../../gpu/subgroup-matrix-standins.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

const SAGE3 = { qk: 'f16', qkScales: true, pFormat: 'nvfp4', vFormat: 'nvfp4' } as const;
const variants: Partial<MmaFlashConfig>[] = [
  { ...SAGE3, deltaSBlock: 128 },
  { ...SAGE3, pScaling: 'direct', staging: 'split', qkScales: false },
  { ...SAGE3, deltaSBlock: 64, staging: 'prefetch', aliasP: false },
  { ...SAGE3, blockK: 16 },
  { ...SAGE3, rowsPerWarp: 32, warps: 4 },
  // the defaults of the sage3 plan (unit factors skipped, V decoded before the kernel, ΔS staged in
  // workgroup memory) under every staging scheme, and the ΔS-from-storage baseline
  ...(['direct', 'prefetch', 'split'] as const).map((staging) => ({
    ...SAGE3,
    qkScales: false,
    vFormat: 'f16' as const,
    deltaSBlock: 128,
    staging,
  })),
  { ...SAGE3, deltaSBlock: 64, deltaSStaging: 'global' },
  { ...SAGE3, qkScales: false, vFormat: 'f16', deltaSBlock: 48, warps: 12 },
  { qk: 'f16', qkScales: true, deltaSBlock: 128, pFormat: 'float8_e4m3fn', vFormat: 'float8_e4m3fn' },
  { qk: 'i8', deltaSBlock: 128, pFormat: 'nvfp4', vFormat: 'nvfp4' },
];

test('tensor-core SageAttention3 kernels compile with subgroup-matrix stand-ins', { skip }, async (t) => {
  if (!rt.caps.features.includes('subgroups') || !rt.caps.features.includes('shader-f16')) {
    t.skip('the device lacks subgroups or shader-f16, which the kernels enable');
    return;
  }
  for (const headDim of [64, 128, 256]) {
    for (const v of variants) {
      const code = withSubgroupMatrixStandIns(mmaFlashWgsl({ ...defaultMmaConfig(headDim), ...v }));
      assert.deepEqual(await compileErrors(rt.device, code), [], `D${headDim} ${JSON.stringify(v)}`);
    }
  }
});

test('NVFP4 P refuses lane chunks that split a 16-key group unevenly', () => {
  // 48 keys over two lanes: 24-key chunks
  assert.throws(() => mmaFlashWgsl({ ...defaultMmaConfig(64), ...SAGE3, blockK: 48 }), /16-key groups/);
  assert.doesNotThrow(() => mmaFlashWgsl({ ...defaultMmaConfig(64), ...SAGE3, blockK: 32 }));
});

test('split staging refuses per-key Q/K scales (the next tile would overwrite them mid-softmax)', () => {
  for (const v of [{ qk: 'i8' }, { ...SAGE3 }] as const) {
    assert.throws(
      () => mmaFlashWgsl({ ...defaultMmaConfig(64), ...v, staging: 'split' }),
      /staging 'split' cannot be combined with per-key Q\/K scales/,
    );
  }
  assert.doesNotThrow(() =>
    mmaFlashWgsl({ ...defaultMmaConfig(64), ...SAGE3, qkScales: false, staging: 'split' }),
  );
  assert.doesNotThrow(() => mmaFlashWgsl({ ...defaultMmaConfig(64), qk: 'i8', staging: 'prefetch' }));
});
