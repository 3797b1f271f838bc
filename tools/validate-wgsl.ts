// Compiles the attention kernels' WGSL without running them: the scalar tiers on the default adapter,
// the subgroup-matrix tier on Dawn's null backend (which validates subgroup-matrix WGSL with no GPU).
// Usage: node --import tsx tools/validate-wgsl.ts
import { create, globals } from 'webgpu';
import { scalarFlashWgsl } from '../src/attention/flash-wgsl-scalar.js';
import {
  mmaFlashWgsl,
  DEFAULT_MMA_CONFIG,
  defaultMmaConfig,
  type MmaFlashConfig,
} from '../src/attention/flash-wgsl-mma.js';

Object.assign(globalThis, globals);

async function check(flags: string[], label: string, sources: [string, string][]) {
  const gpu = create(flags);
  (globalThis as Record<string, unknown>).__keepGpu = gpu;
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error(`${label}: no adapter`);
  const features = [...adapter.features].filter((f) =>
    ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'].includes(f),
  ) as GPUFeatureName[];
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: { maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize },
  });
  let failed = 0;
  for (const [name, code] of sources) {
    const module = device.createShaderModule({ code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      failed++;
      console.log(`${label} ${name}: ${errors.length} error(s)`);
      for (const e of errors.slice(0, 5)) console.log(`  line ${e.lineNum}: ${e.message}`);
      const lines = code.split('\n');
      console.log('  > ' + lines[errors[0].lineNum - 1]);
    } else console.log(`${label} ${name}: ok`);
  }
  device.destroy();
  return failed;
}

let failed = 0;
const scalar: [string, string][] = [];
for (const input of ['f32', 'f16'] as const)
  for (const shaderF16 of [false, true])
    for (const D of [64, 128, 37])
      if (!(input === 'f32' && shaderF16))
        scalar.push([
          `scalar ${input} f16ext=${shaderF16} D=${D}`,
          scalarFlashWgsl({ input, shaderF16, headDim: D, blockK: 16, workgroupSize: 64 }),
        ]);
failed += await check(['enable-dawn-features=allow_unsafe_apis'], 'default', scalar);
const mma: [string, string][] = [];
for (const D of [64, 128])
  for (const rowsPerWarp of [16, 32] as const)
    for (const qInRegisters of [true, false])
      for (const aliasP of [false, true])
        for (const blockK of [32, 48] as const) {
          const cfg: MmaFlashConfig = {
            ...DEFAULT_MMA_CONFIG,
            headDim: D,
            rowsPerWarp,
            qInRegisters,
            aliasP,
            blockK: rowsPerWarp === 32 && blockK === 48 ? 32 : blockK,
            warps: rowsPerWarp === 32 ? 4 : 8,
          };
          mma.push([`mma ${JSON.stringify(cfg)}`, mmaFlashWgsl(cfg)]);
        }
// SageAttention3 on the tensor cores: FP4 Q/K as f16 with token factors, ΔS, NVFP4 P (one or two 16-key
// groups per lane chunk, or half a group shared by shuffle at blockK 16) and NVFP4 V
for (const D of [64, 128, 256])
  for (const v of [
    { deltaSBlock: 128 },
    { pScaling: 'direct', staging: 'split', qkScales: false },
    { blockK: 16 },
    { rowsPerWarp: 32, warps: 4 },
    { deltaSBlock: 128, deltaSStaging: 'global' },
    { deltaSBlock: 128, qkScales: false, vFormat: 'f16' },
    { deltaSBlock: 64, qkScales: false, vFormat: 'f16', staging: 'prefetch', warps: 12 },
  ] as const) {
    const cfg: MmaFlashConfig = {
      ...defaultMmaConfig(D),
      qk: 'f16',
      qkScales: true,
      pFormat: 'nvfp4',
      vFormat: 'nvfp4',
      ...v,
    };
    mma.push([`mma sage3 D=${D} ${JSON.stringify(v)}`, mmaFlashWgsl(cfg)]);
  }
failed += await check(['backend=null', 'enable-dawn-features=allow_unsafe_apis'], 'null', mma);
process.exit(failed ? 1 : 0);
