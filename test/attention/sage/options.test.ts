import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import type { ShapedLike } from '../../../src/attention/options.js';
import {
  type SageOptions,
  assertPVCombination,
  quantizeQKOptions,
  quantizeVOptions,
  resolveSageOptions,
} from '../../../src/attention/sage/options.js';
import { PRESET_CONFIGS } from '../../../src/attention/sage/presets.js';

const f32 = (...shape: number[]): ShapedLike => ({ shape, dtype: 'float32' });
const q = f32(1, 4, 100, 64);
const kv = f32(1, 2, 90, 64);
const resolve = (opts?: SageOptions) => resolveSageOptions(q, kv, kv, opts);

test('default is sage2: INT8 per-thread, E4M3 P with V scale 448, fp32+fp22', () => {
  const { problem, config } = resolve();
  assert.equal(problem.headsQ, 4);
  assert.equal(problem.smScale, 1 / 8);
  assert.deepEqual(config, {
    preset: 'sage2',
    qk: { kind: 'int8', granularity: 'per-thread' },
    smoothK: true,
    smoothQ: false,
    smoothV: false,
    pFormat: 'float8_e4m3fn',
    pScaling: 'two-level',
    vFormat: 'float8_e4m3fn',
    pvAccum: 'fp32+fp22',
    vScaleMax: 448,
    rounding: 'nearest-even',
    blockQ: 128,
    warpQ: 32,
    blockK: 64,
    warpK: 64,
  });
});

test('the preset table', () => {
  const row = (p: keyof typeof PRESET_CONFIGS) => {
    const c = resolve({ preset: p }).config;
    return [c.qk, c.smoothK, c.smoothQ, c.pFormat, c.vFormat, c.vScaleMax, c.pvAccum, c.blockQ, c.blockK];
  };
  assert.deepEqual(row('sage1'), [
    { kind: 'int8', granularity: 'per-block' },
    true,
    false,
    'fp16',
    'fp16',
    null,
    'fp32+fp16',
    128,
    64,
  ]);
  assert.deepEqual(row('sage2++'), [
    { kind: 'int8', granularity: 'per-thread' },
    true,
    false,
    'float8_e4m3fn',
    'float8_e4m3fn',
    2.25,
    'fp32+fp16',
    128,
    64,
  ]);
  assert.deepEqual(row('sage3'), [{ kind: 'nvfp4' }, true, true, 'nvfp4', 'nvfp4', null, 'fp32', 128, 128]);
  // SA2++'s range limit: P_r·V_r = 448·2.25 ≤ 1023.5, and a 64-key block stays below 65504
  const vRange = resolve({ preset: 'sage2++' }).config.vScaleMax as number;
  assert.ok(448 * vRange <= 1023.5 && 64 * 448 * vRange < 65504);
  assert.ok(Object.isFrozen(PRESET_CONFIGS.sage1) && Object.isFrozen(PRESET_CONFIGS.sage1.qk));
});

test('overrides replace one step each; vScaleMax follows a changed V format', () => {
  const c = resolve({
    preset: 'sage2++',
    qk: { kind: 'int4', granularity: 'per-token' },
    smoothK: false,
    smoothV: true,
    pvAccum: 'fp16',
    rounding: 'half-away',
    blockQ: 64,
    warpQ: 16,
  }).config;
  assert.deepEqual(
    [c.qk, c.smoothK, c.smoothV, c.pvAccum, c.rounding, c.blockQ, c.warpQ, c.vScaleMax],
    [{ kind: 'int4', granularity: 'per-token' }, false, true, 'fp16', 'half-away', 64, 16, 2.25],
  );
  assert.equal(
    resolve({ preset: 'sage2++', pFormat: 'float8_e5m2', vFormat: 'float8_e5m2' }).config.vScaleMax,
    57344,
  );
  assert.equal(resolve({ pFormat: 'int8', vFormat: 'int8', pvAccum: 'fp32' }).config.vScaleMax, 127);
  assert.equal(resolve({ vScaleMax: 100 }).config.vScaleMax, 100);
  assert.equal(
    resolve({ preset: 'sage1', pFormat: 'float8_e4m3fn', vFormat: 'float8_e4m3fn' }).config.vScaleMax,
    448,
  );
  assert.deepEqual(resolve({ qk: { kind: 'mxfp4', scaleRule: 'ocp' } }).config.qk, {
    kind: 'mxfp4',
    scaleRule: 'ocp',
  });
});

test('the options handed to the quantizers', () => {
  const nhd = f32(1, 90, 2, 64);
  const r = resolveSageOptions(f32(1, 100, 4, 64), nhd, nhd, {
    preset: 'sage2++',
    layout: 'NHD',
    smScale: 0.5,
  });
  assert.deepEqual(quantizeQKOptions(r), {
    layout: 'NHD',
    quant: { kind: 'int8', granularity: 'per-thread' },
    smoothK: true,
    smoothQ: false,
    smScale: 0.5,
    blockQ: 128,
    warpQ: 32,
    blockK: 64,
    warpK: 64,
    rounding: 'nearest-even',
  });
  assert.deepEqual(quantizeVOptions(r), {
    layout: 'NHD',
    format: 'float8_e4m3fn',
    smoothV: false,
    scaleMax: 2.25,
  });
  assert.deepEqual(quantizeVOptions(resolve({ preset: 'sage3' })), {
    layout: 'HND',
    format: 'nvfp4',
    smoothV: false,
  });
});

test('bad options are UnsupportedOptionErrors that say what to do', () => {
  const rejects = (opts: unknown, pattern: RegExp) =>
    assert.throws(
      () => resolve(opts as SageOptions),
      (e: unknown) => {
        assert.ok(e instanceof UnsupportedOptionError, String(e));
        assert.match(e.message, pattern);
        return true;
      },
    );
  rejects({ preset: 'sage4' }, /preset must be one of 'sage1', 'sage2', 'sage2\+\+', 'sage3'/);
  rejects({ pvaccum: 'fp32' }, /unknown attention option 'pvaccum' \(did you mean 'pvAccum'\?\)/);
  rejects({ qk: 'int8' }, /qk must be/);
  rejects({ qk: { kind: 'int8' } }, /needs a granularity/);
  rejects({ qk: { kind: 'int8', granularity: 'per-row' } }, /needs a granularity/);
  rejects({ qk: { kind: 'nvfp4', granularity: 'per-thread' } }, /does not take 'granularity'/);
  rejects({ qk: { kind: 'mxfp4', scaleRule: 'up' } }, /scaleRule must be/);
  rejects({ smoothQ: 'yes' }, /smoothQ must be true or false/);
  rejects({ pFormat: 'float8' }, /pFormat must be one of/);
  rejects({ vFormat: 'int8' }, /cannot meet in one MMA.*Set pFormat and vFormat together/);
  rejects({ pFormat: 'nvfp4', vFormat: 'float8_e4m3fn' }, /cannot meet in one MMA/);
  rejects({ pFormat: 'int8', vFormat: 'int8' }, /pvAccum 'fp32\+fp22' does not apply.*Use 'fp32'/);
  rejects({ preset: 'sage1', pvAccum: 'fp22' }, /FP22 models the FP8 tensor cores/);
  rejects({ preset: 'sage3', pvAccum: 'fp32+fp16' }, /FP4 MMAs accumulate in fp32 only/);
  rejects({ pvAccum: 'bf16' }, /pvAccum must be one of/);
  rejects({ preset: 'sage1', vScaleMax: 2 }, /V is cast unscaled/);
  rejects({ preset: 'sage3', vScaleMax: 2 }, /NVFP4 scales each 16-token group/);
  rejects({ vScaleMax: 500 }, /vScaleMax must be a number in \(0, 448\]/);
  rejects({ vScaleMax: 0 }, /vScaleMax must be/);
  rejects({ rounding: 'up' }, /rounding must be one of/);
  rejects({ preset: 'sage3', rounding: 'half-away' }, /needs int8\/int4 Q and K/);
  rejects({ preset: 'sage3', blockK: 72, warpK: 72 }, /multiple of 16 with NVFP4/);
  rejects({ warpQ: 48 }, /warpQ must be a multiple of 8 that divides blockQ/);
  rejects({ blockK: 0 }, /blockK must be a positive integer/);
  rejects({ causal: 1 }, /causal must be true or false/);
});

test("pScaling: 'two-level' in every preset; 'direct' only with NVFP4 P", () => {
  for (const preset of ['sage1', 'sage2', 'sage2++', 'sage3'] as const) {
    assert.equal(resolve({ preset }).config.pScaling, 'two-level', preset);
  }
  assert.equal(resolve({ preset: 'sage3', pScaling: 'direct' }).config.pScaling, 'direct');
  assert.throws(
    () => resolve({ preset: 'sage2', pScaling: 'direct' }),
    (e: unknown) =>
      e instanceof UnsupportedOptionError && /pScaling 'direct'.*needs pFormat 'nvfp4'/.test(e.message),
  );
  assert.throws(() => resolve({ preset: 'sage3', pScaling: 'row' as never }), /pScaling must be one of/);
  const raw = { pFormat: 'int8', vFormat: 'int8', pvAccum: 'fp32', blockK: 64 } as const;
  assert.doesNotThrow(() => assertPVCombination({ ...raw, pScaling: 'two-level' }));
  assert.throws(() => assertPVCombination({ ...raw, pScaling: 'direct' }), UnsupportedOptionError);
});

test('bad tensors are ShapeErrors, checked before the options', () => {
  assert.throws(() => resolveSageOptions(q, f32(1, 3, 90, 64), f32(1, 3, 90, 64)), ShapeError);
  assert.throws(() => resolveSageOptions(q, kv, f32(1, 2, 91, 64)), ShapeError);
});

test('assertPVCombination validates raw kernel options too', () => {
  assert.doesNotThrow(() =>
    assertPVCombination({ pFormat: 'float8_e5m2', vFormat: 'float8_e4m3fn', pvAccum: 'fp22', blockK: 64 }),
  );
  assert.throws(
    () => assertPVCombination({ pFormat: 'fp8' as never, vFormat: 'fp16', pvAccum: 'fp32', blockK: 64 }),
    UnsupportedOptionError,
  );
});
