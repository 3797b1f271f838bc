/**
 * The tensor-core block-sparse kernel cannot run on lavapipe (no subgroup matrices), so CI compiles
 * it with stand-ins for the matrix builtins (test/gpu/subgroup-matrix-standins.ts): every generator
 * variant must parse, type-check and pass WGSL's uniformity analysis. The dense kernel goes through
 * the same check as the control (it is known to compile on real hardware).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GpuRuntime } from '../../../src/gpu/runtime.js';
import {
  defaultMmaConfig,
  mmaFlashWgsl,
  type MmaFlashConfig,
} from '../../../src/attention/flash-wgsl-mma.js';
import { mmaBlockSparseWgsl } from '../../../src/attention/sparse/block-sparse-wgsl-mma.js';
import { scalarBlockSparseWgsl } from '../../../src/attention/sparse/block-sparse-wgsl-scalar.js';
import { testGpu } from '../../gpu/harness.js';
import { compileErrors, withSubgroupMatrixStandIns } from '../../gpu/subgroup-matrix-standins.js';

const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;
const rt = gpu as GpuRuntime;

const variants: Partial<MmaFlashConfig>[] = [
  {},
  { staging: 'prefetch', warps: 4 },
  { staging: 'split', aliasP: false },
  { staging: 'direct', interleaveS: false, qInRegisters: false },
  { qk: 'i8', pFormat: 'float8_e4m3fn', vFormat: 'float8_e4m3fn' },
  { rowsPerWarp: 32, warps: 4 },
];

test('tensor-core block-sparse kernels compile with subgroup-matrix stand-ins', { skip }, async (t) => {
  if (!rt.caps.features.includes('subgroups') || !rt.caps.features.includes('shader-f16')) {
    t.skip('the device lacks subgroups or shader-f16, which the kernels enable');
    return;
  }
  const control = await compileErrors(
    rt.device,
    withSubgroupMatrixStandIns(mmaFlashWgsl(defaultMmaConfig(128))),
  );
  assert.deepEqual(control, [], 'the dense kernel must compile with the stand-ins');
  for (const headDim of [64, 128]) {
    for (const v of variants) {
      const cfg = { ...defaultMmaConfig(headDim), warps: 8, ...v };
      const rows = cfg.warps * cfg.rowsPerWarp;
      for (const shape of [
        { variable: false, pvGroupRows: 0 },
        { variable: true, pvGroupRows: 0 },
        { variable: false, pvGroupRows: rows },
        { variable: true, pvGroupRows: cfg.rowsPerWarp },
      ]) {
        const code = withSubgroupMatrixStandIns(mmaBlockSparseWgsl(cfg, shape));
        const errors = await compileErrors(rt.device, code);
        assert.deepEqual(errors, [], `D${headDim} ${JSON.stringify(v)} ${JSON.stringify(shape)}`);
      }
    }
  }
});

test('scalar block-sparse kernels compile for every operand form', { skip }, async () => {
  const f16 = rt.caps.features.includes('shader-f16');
  for (const input of ['f32', 'f16'] as const) {
    for (const shaderF16 of f16 ? [false, true] : [false]) {
      if (input === 'f32' && shaderF16) continue;
      for (const shape of [
        { variable: false, pvGroupRows: 0 },
        { variable: true, pvGroupRows: 16 },
      ]) {
        const code = scalarBlockSparseWgsl(
          { input, shaderF16, headDim: 24, blockK: 16, workgroupSize: 64, qkInt8: false },
          shape,
        );
        assert.deepEqual(
          await compileErrors(rt.device, code),
          [],
          `${input} f16:${shaderF16} ${JSON.stringify(shape)}`,
        );
      }
    }
  }
});
