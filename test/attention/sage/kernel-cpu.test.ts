import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { type Tensor, tensor } from '../../../src/core/tensor.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import { type SageKernelOptions, sageKernelCpu } from '../../../src/attention/sage/kernel-cpu.js';
import {
  type SageOptions,
  quantizeQKOptions,
  quantizeVOptions,
  resolveSageOptions,
} from '../../../src/attention/sage/options.js';
import { quantizeQK } from '../../../src/attention/sage/quantize-qk.js';
import { quantizeV } from '../../../src/attention/sage/quantize-v.js';
import { sageAttention } from '../../../src/attention/sage/sage-attention.js';
import { gaussianQkv } from '../cases.js';

const f32 = Math.fround;
/** P̃ at the row max for E4M3: exp2(8.807) in float32, ≈ 447.89, while its E4M3 code is 448. */
const P_E4M3 = f32(2 ** 8.807);

/**
 * The public steps with a preset's options, then the kernel with any kernel option overridden:
 * what sageAttention does, opened up so a test can change one step.
 */
function pipeline(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SageOptions,
  kernel: Partial<SageKernelOptions> = {},
) {
  const r = resolveSageOptions(q, k, v, opts);
  const qk = quantizeQK(q, k, quantizeQKOptions(r));
  const vq = quantizeV(v, quantizeVOptions(r));
  const base = {
    causal: r.problem.causal,
    causalAlignment: r.problem.causalAlignment,
    pFormat: r.config.pFormat,
    pvAccum: r.config.pvAccum,
    q,
  };
  return { qk, vq, out: sageKernelCpu(qk, vq, { ...base, ...kernel, returnLse: true }) };
}

/** One query, Nk keys that are all equal (so every logit is exactly 0 after K smoothing), D channels. */
function tiedLogits(vRows: number[][]): { q: Tensor; k: Tensor; v: Tensor } {
  const n = vRows.length;
  const d = vRows[0].length;
  return {
    q: tensor(new Array(d).fill(1), [1, 1, 1, d], 'float32'),
    k: tensor(new Array(n * d).fill(0.3), [1, 1, n, d], 'float32'),
    v: tensor(vRows.flat(), [1, 1, n, d], 'float32'),
  };
}

test('the 8.807 offset: P̂ = 448 at the row max, l holds exp2(8.807), so O carries 448 / 447.89', () => {
  // V values whose E4M3 codes (v·448) are exact, one channel
  const vals = Array.from({ length: 64 }, (_, j) => [1, 0.5, 0.25, -0.125][j % 4]);
  const { q, k, v } = tiedLogits(vals.map((x) => [x]));
  const { out } = pipeline(q, k, v, { preset: 'sage2', pvAccum: 'fp32' });
  const sum = vals.reduce((a, b) => a + b, 0);
  const expected = f32(((448 * 448 * sum) / (64 * P_E4M3)) * f32(1 / 448));
  assert.equal(out.out.data[0], expected);
  const ratio = out.out.data[0] / (sum / 64);
  assert.ok(Math.abs(ratio - 448 / P_E4M3) < 1e-6, `ratio ${ratio}`);
  assert.ok(ratio - 1 > 2e-4, 'log2(448) = 8.80735 would give exactly the mean');
  // the 448 cancels in the LSE: ln(Σ exp(0)) = ln 64, plus σ·q·k̄ = 0.3 (D = 1, σ = 1)
  assert.ok(Math.abs(out.lse.data[0] - (Math.log(64) + 0.3)) < 1e-6, `lse ${out.lse.data[0]}`);
});

test('FP22: direct FP22, two-level FP22 and fp32 give the three predicted outputs', () => {
  // key 0: v = 1 (code 448, product 200704); others 2^-9 (code 0.875, product 392); key 64: v = 0.
  // Exact sum 250096; 'fp32+fp22' loses 8 in block 1's first step; 'fp22' loses 8 more when block
  // 2's first step (31·392) is added straight into O ≈ 225k (see accumulate.test.ts).
  const vals = Array.from({ length: 128 }, (_, j) => (j === 0 ? 1 : j === 64 ? 0 : 2 ** -9));
  const { q, k, v } = tiedLogits(vals.map((x) => [x]));
  const expected = (total: number) => f32((total / (128 * P_E4M3)) * f32(1 / 448));
  const got = (pvAccum: SageKernelOptions['pvAccum']) =>
    pipeline(q, k, v, { preset: 'sage2' }, { pvAccum }).out.out.data[0];
  assert.equal(got('fp32'), expected(250096));
  assert.equal(got('fp32+fp22'), expected(250088));
  assert.equal(got('fp22'), expected(250080));
  assert.equal(
    pipeline(q, k, v, { preset: 'sage2' }).out.out.data[0],
    expected(250088),
    'sage2 is fp32+fp22',
  );
});

test('fp16 accumulation without range limits gives ±inf (never NaN); SA2++ V range 2.25 stays finite', () => {
  // channel 0: all 1; channel 1: +1 in the first 64-key block, -1 in the second
  const rows = Array.from({ length: 128 }, (_, j) => [1, j < 64 ? 1 : -1]);
  const { q, k, v } = tiedLogits(rows);
  for (const pvAccum of ['fp32+fp16', 'fp16'] as const) {
    const { out } = pipeline(q, k, v, { preset: 'sage2', pvAccum });
    // 32 products 448·448 overflow the first fp16 step; channel 1's second block overflows to -inf,
    // which IEEE would add to +inf as NaN: the first overflow stays (accumulate.ts mergeBlock)
    assert.deepEqual(Array.from(out.out.data), [Infinity, Infinity], pvAccum);
    assert.ok(Number.isFinite(out.lse.data[0]));
  }
  const { out } = pipeline(q, k, v, { preset: 'sage2++' });
  // 64·448·2.25 = 64512 per block, exact in fp16; channel 1 cancels exactly
  assert.equal(out.out.data[0], f32(((2 * 64512) / (128 * P_E4M3)) * f32(1 / 2.25)));
  assert.equal(out.out.data[1], 0);
});

test("sage1's fp16 buffer rounds once per 16-key MMA step: small values stall behind a large one", () => {
  // P̂ = 1 (tied logits, fp16 P̃); V = 4096 then 63 × 0.125. Step 1: 4096 + 15·0.125 = 4097.875 → 4096
  // (fp16 ulp 4); every later step adds 2 → 4098, a tie that rounds back to 4096. A step of 32 keys
  // would give 4104, fp32 gives 4103.875.
  const { q, k, v } = tiedLogits([4096, ...new Array<number>(63).fill(0.125)].map((x) => [x]));
  assert.equal(pipeline(q, k, v, { preset: 'sage1' }).out.out.data[0], 4096 / 64);
  assert.equal(pipeline(q, k, v, { preset: 'sage1', pvAccum: 'fp32' }).out.out.data[0], f32(4103.875 / 64));
});

test('LSE: the smoothK correction σ·(q·k̄) restores the oracle LSE (sageattention.md §6.4)', () => {
  const dims = { batch: 1, headsQ: 2, tokensQ: 40, tokensKv: 70, headDim: 16 };
  const { q, v } = gaussianQkv(dims, 21);
  const kRaw = gaussianQkv(dims, 22).k;
  // a large per-channel K bias, as real models have (SA1 §4.2): the correction is then far from 0
  const k = tensor(
    Float32Array.from(kRaw.data, (x, i) => x + 3 + (i % 16) / 4),
    kRaw.shape,
    'float32',
  );
  const ref = attentionReference(q, k, v, { returnLse: true });
  for (const preset of ['sage1', 'sage2', 'sage3'] as const) {
    const { qk, out } = pipeline(q, k, v, { preset });
    let correction = 0;
    let worst = 0;
    for (let row = 0; row < 80; row++) {
      let dot = 0;
      for (let x = 0; x < 16; x++) dot += q.data[row * 16 + x] * qk.kMean.data[x];
      correction = Math.max(correction, Math.abs(dot / 4));
      worst = Math.max(worst, Math.abs(out.lse.data[row] - ref.lse.data[row]));
    }
    assert.ok(correction > 5, `${preset}: the correction matters (${correction})`);
    assert.ok(worst < (preset === 'sage3' ? 0.3 : 0.05), `${preset}: LSE off by ${worst}`);
  }
});

test('the kernel reads Q scales by the quantizer groups: an outlier spoils exactly its group', () => {
  const dims = { batch: 1, headsQ: 1, tokensQ: 160, tokensKv: 64, headDim: 16 };
  const { q: q0, k, v } = gaussianQkv(dims, 31);
  const q = tensor(
    Float32Array.from(q0.data, (x, i) => (Math.floor(i / 16) === 5 ? 1000 * x : x)),
    q0.shape,
    'float32',
  );
  const ref = attentionReference(q, k, v);
  const range = (a: number, b: number) =>
    Array.from({ length: b - a }, (_, i) => a + i).filter((r) => r !== 5);
  const expected = {
    'per-thread': [13, 21, 29], // tokens ≡ 5 (mod 8) in warp 0 (warpQ 32)
    'per-warp': range(0, 32),
    'per-block': range(0, 128),
    'per-token': [],
  } as const;
  for (const [granularity, rows] of Object.entries(expected)) {
    const opts: SageOptions = { preset: 'sage1', qk: { kind: 'int8', granularity: granularity as never } };
    const out = pipeline(q, k, v, opts).out.out;
    const bad: number[] = [];
    for (let r = 0; r < 160; r++) {
      const slice = (t: Tensor) => t.data.slice(r * 16, r * 16 + 16) as Float32Array | Float64Array;
      if (metrics.relL1(slice(out), slice(ref)) > 0.3) bad.push(r);
    }
    assert.deepEqual(bad, rows, granularity);
  }
});

test('microscaled Q/K: groups of 16 (NVFP4) / 32 (MXFP4) channels with a partial last group', () => {
  // Q and K exact in each format: the first group has amax 6 (scale 1), the partial last one amax 12
  // (scale 2), so quantizing is lossless and the kernel's grouped logits equal the plain ones only if
  // it applies each scale to exactly its group's channels.
  const grid = [6, -3, 1.5, -0.5, 0, 2, -1, 4];
  for (const [kind, d, size] of [
    ['nvfp4', 24, 16],
    ['mxfp4', 40, 32],
  ] as const) {
    const values = (seed: number, tokens: number) =>
      Array.from({ length: tokens * d }, (_, i) => {
        const x = i % d;
        const e = x % size === 0 ? 6 : grid[(i * 7 + seed) % grid.length];
        return x < size ? e : 2 * e;
      });
    const q = tensor(values(1, 9), [1, 1, 9, d], 'float32');
    const k = tensor(values(3, 20), [1, 1, 20, d], 'float32');
    const v = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 20, headDim: d }, 61).v;
    const opts: SageOptions = { smoothK: false, smScale: 0.05 };
    const plain = pipeline(q, k, v, { ...opts, qk: { kind: 'none' } }).out;
    const grouped = pipeline(q, k, v, { ...opts, qk: { kind } }).out;
    assert.deepEqual(grouped.out.data, plain.out.data, kind);
    assert.deepEqual(grouped.lse.data, plain.lse.data, kind);
  }
});

test("rounding modes reach the logits: a tie codes 0 with 'nearest-even' and 1 with 'half-away'", () => {
  // q = [127, 0.5] per-token: δ = 1, so 0.5 is a tie. Keys ±127 on channel 1 then see logits 0 or ±129.6.
  const q = tensor([127, 0.5], [1, 1, 1, 2], 'float32');
  const k = tensor([0, 127, 0, -127], [1, 1, 2, 2], 'float32');
  const v = tensor([1, 0.5, 0.25, -1], [1, 1, 2, 2], 'float32');
  const opts: SageOptions = {
    qk: { kind: 'int8', granularity: 'per-token' },
    smoothK: false,
    pvAccum: 'fp32',
  };
  const even = pipeline(q, k, v, { ...opts, rounding: 'nearest-even' }).out.out.data;
  const away = pipeline(q, k, v, { ...opts, rounding: 'half-away' }).out.out.data;
  const scale = 448 / P_E4M3;
  assert.deepEqual(Array.from(even), [
    f32(((448 * (448 + 112)) / (2 * P_E4M3)) * f32(1 / 448)),
    f32(((448 * (224 - 448)) / (2 * P_E4M3)) * f32(1 / 448)),
  ]);
  assert.ok(Math.abs(away[0] - scale) < 1e-6 && Math.abs(away[1] - 0.5 * scale) < 1e-6, `${away}`);
});

test('every preset: with all logits tied, O is the mean of V times P̂max / P̃max exactly', () => {
  // 32 keys, 2 channels; values exact in fp16, in E4M3 after ·448/6 or ·2.25/6, and in NVFP4 (amax 6
  // per 16-token group, so the E4M3 group scale is 1)
  const rows = Array.from({ length: 32 }, (_, j) => [[6, 3, -1.5, 0][j % 4], [-6, 1.5, 3, -3][j % 4]]);
  const { q, k, v } = tiedLogits(rows);
  const mean = [0, 1].map((c) => rows.reduce((a, r) => a + r[c], 0) / 32);
  const cases = {
    sage1: [1, 1], // P̃ = 1 exactly in fp16
    sage2: [448 / P_E4M3, 1],
    'sage2++': [448 / P_E4M3, 1],
    sage3: [2688 / f32(2 ** Math.log2(2688)), 1],
  } as const;
  for (const [preset, [ratio]] of Object.entries(cases)) {
    const out = pipeline(q, k, v, { preset: preset as never }).out.out.data;
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(out[c] - mean[c] * ratio) <= 3e-7 * Math.abs(mean[c]), `${preset}[${c}]: ${out[c]}`);
    }
  }
});

test('smoothV: the kernel adds v̄ back after O / l and δ_V', () => {
  const { q, k, v: v0 } = gaussianQkv({ batch: 1, headsQ: 1, tokensQ: 20, headDim: 8 }, 41);
  const v = tensor(
    Float32Array.from(v0.data, (x, i) => x + 8 + (i % 8)),
    v0.shape,
    'float32',
  );
  const ref = attentionReference(q, k, v);
  const plain = pipeline(q, k, v, { preset: 'sage2' }).out.out;
  const smoothed = pipeline(q, k, v, { preset: 'sage2', smoothV: true }).out.out;
  // V channels sitting at 8–15 (SA2 Table 10's CogVideoX case): smoothing recovers the resolution
  assert.ok(metrics.relL1(smoothed, ref) < metrics.relL1(plain, ref) / 3);
  assert.ok(metrics.relL1(smoothed, ref) < 0.003);
});

test("NVFP4 P: 'direct' scaling drops the small groups that SA3's two-level scaling keeps", () => {
  // One query, 128 keys: key 0 sits 8 nats above the 127 others (an attention sink), so each tail P̃
  // is r = e^-8 of the max. V holds E2M1 values with a 6 in every 16-token group (scale 1, exact).
  const d = 64;
  const n = 128;
  const q = tensor([8, ...new Array(d - 1).fill(0)], [1, 1, 1, d], 'float32');
  const k = tensor(
    Array.from({ length: n * d }, (_, i) => (i === 0 ? 8 : 0)),
    [1, 1, n, d],
    'float32',
  );
  const vRows = Array.from({ length: n }, (_, j) =>
    Array.from({ length: d }, (_, x) => (j % 16 === 0 ? 6 : [1, -0.5, 2, -3][(j + x) % 4])),
  );
  const v = tensor(vRows.flat(), [1, 1, n, d], 'float32');
  const ref = attentionReference(q, k, v);
  const opts: SageOptions = { preset: 'sage3', qk: { kind: 'none' } };
  const twoLevel = pipeline(q, k, v, opts).out.out;
  const direct = pipeline(q, k, v, opts, { pScaling: 'direct' }).out.out;
  // direct: the tail groups' scales r/6 < 2^-10 round to 0, and the sink's 1/6 rounds to 0.171875, so
  // O = 1.03125·v₀ / l with l the unquantized 1 + 127·r
  const l = 1 + 127 * Math.exp(-8);
  direct.data.forEach((o, x) =>
    assert.ok(Math.abs(o - (1.03125 * vRows[0][x]) / l) < 1e-5, `channel ${x}: ${o}`),
  );
  const [errTwoLevel, errDirect] = [metrics.relL1(twoLevel, ref), metrics.relL1(direct, ref)];
  assert.ok(errTwoLevel < 0.001, `two-level relL1 ${errTwoLevel}`);
  assert.ok(errDirect > 10 * errTwoLevel, `direct relL1 ${errDirect} vs two-level ${errTwoLevel}`);
  // sageAttention passes the option through to the kernel
  assert.deepEqual(
    sageAttention(q, k, v, { ...opts, pScaling: 'direct', returnLse: false }).data,
    direct.data,
  );
  assert.throws(
    () => pipeline(q, k, v, { preset: 'sage2' }, { pScaling: 'direct' }),
    /pScaling 'direct'.*needs pFormat 'nvfp4'/,
  );
});

test('kernel option and operand checks', () => {
  const { q, k, v } = gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 10, headDim: 8 }, 51);
  const { qk, vq } = pipeline(q, k, v, { preset: 'sage2' });
  const base: SageKernelOptions = { pFormat: 'float8_e4m3fn', pvAccum: 'fp32+fp22' };
  assert.throws(
    () => sageKernelCpu(qk, vq, { ...base, blockK: 32 } as never),
    /unknown sageKernelCpu option 'blockK'/,
  );
  assert.throws(
    () => sageKernelCpu(qk, vq, { ...base, returnLse: true }),
    (e: unknown) => {
      assert.ok(e instanceof UnsupportedOptionError);
      assert.match(e.message, /needs the unquantized q/);
      return true;
    },
  );
  assert.throws(() => sageKernelCpu(qk, vq, { ...base, pFormat: 'fp16' }), /cannot meet in one MMA/);
  assert.throws(() => sageKernelCpu(qk, vq, { ...base, pvAccum: 'fp64' as never }), /pvAccum must be one of/);
  assert.throws(
    () => sageKernelCpu(qk, vq, { ...base, causalAlignment: 'center' as never }),
    UnsupportedOptionError,
  );
  const other = quantizeV(gaussianQkv({ batch: 1, headsQ: 2, tokensQ: 11, headDim: 8 }, 52).v);
  assert.throws(() => sageKernelCpu(qk, other, base), ShapeError);
  assert.doesNotThrow(() => sageKernelCpu(qk, vq, base));
});
