import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../../src/core/errors.js';
import { convertLayout } from '../../../src/core/layout.js';
import { Tensor, randn, tensor } from '../../../src/core/tensor.js';
import { decode } from '../../../src/numerics/decode.js';
import { attentionReference } from '../../../src/attention/reference.js';
import { metrics } from '../../../src/attention/metrics.js';
import { quantizeQK } from '../../../src/attention/sage/quantize-qk.js';
import { quantizeIntGroups } from '../../../src/quant/int-group-quant.js';
import { qkScaleIndex } from '../../../src/quant/qk-scale-groups.js';
import { LOG2E } from '../../../src/quant/sm-scale-fold.js';
import type { QKQuant, QuantizeQKOptions, QuantizedQK } from '../../../src/quant/types.js';

const f32 = Math.fround;

/** Dequantized values (HND) of q or k from a quantizeQK result: code × the element's scale. */
function dequant(r: QuantizedQK, role: 'q' | 'k'): Tensor<'float64'> {
  const { codes, scales } = r[role];
  const [batch, heads, n, d] = codes.shape;
  const quant = r.options.quant;
  const values =
    codes.dtype === 'float4_e2m1fn' ? decode('float4_e2m1fn', codes.data as Uint8Array) : codes.data;
  const out = new Float64Array(codes.size);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < n; t++) {
        for (let c = 0; c < d; c++) {
          const i = ((b * heads + h) * n + t) * d + c;
          let s: number;
          if (quant.kind === 'int8' || quant.kind === 'int4') {
            const count = scales.shape[2];
            s = scales.data[(b * heads + h) * count + qkScaleIndex(role, quant.granularity, t, r.options)];
          } else if (quant.kind === 'none') {
            s = scales.data[(b * heads + h) * n + t];
          } else {
            const groups = scales.shape[3];
            s = scales.data[((b * heads + h) * n + t) * groups + Math.floor(c / (d / groups))];
          }
          out[i] = values[i] * s;
        }
      }
    }
  }
  return new Tensor(out, codes.shape, 'float64');
}

/** Attention from the dequantized q and k of a result (no ΔS), with σ undone where δ_Q carries it. */
function attentionFromQuantized(r: QuantizedQK, v: Tensor): Tensor<'float64'> {
  const smScale = r.smScaleFolded ? 1 / LOG2E : r.options.smScale;
  return attentionReference(dequant(r, 'q'), dequant(r, 'k'), new Tensor(v.toFloat64(), v.shape, 'float64'), {
    smScale,
  });
}

/** Row-major float64 logits Σ_d a[i]·b[j] for one (b, h) of HND tensors with Hq/Hkv heads. */
function logits(a: ArrayLike<number>, bv: ArrayLike<number>, ia: number, ib: number, d: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) s += a[ia * d + c] * bv[ib * d + c];
  return s;
}

const ALL_QUANTS: QKQuant[] = [
  { kind: 'int8', granularity: 'per-block' },
  { kind: 'int8', granularity: 'per-warp' },
  { kind: 'int8', granularity: 'per-thread' },
  { kind: 'int8', granularity: 'per-token' },
  { kind: 'int4', granularity: 'per-thread' },
  { kind: 'nvfp4' },
  { kind: 'mxfp4' },
  { kind: 'none' },
];

test('defaults: int8 per-thread, smoothK on, smoothQ off, σ = 1/√D, tiles 128/32/64/64, nearest-even', () => {
  const q = randn([1, 2, 10, 64], { seed: 1 });
  const k = randn([1, 1, 12, 64], { seed: 2 });
  const r = quantizeQK(q, k);
  assert.deepEqual(r.options, {
    layout: 'HND',
    quant: { kind: 'int8', granularity: 'per-thread' },
    smoothK: true,
    smoothQ: false,
    smScale: 1 / 8,
    blockQ: 128,
    warpQ: 32,
    blockK: 64,
    warpK: 64,
    rounding: 'nearest-even',
  });
  assert.equal(r.q.codes.dtype, 'int8');
  assert.deepEqual(r.q.codes.shape, q.shape);
  assert.deepEqual(r.q.scales.shape, [1, 2, 32]);
  assert.deepEqual(r.k.scales.shape, [1, 1, 4]);
  assert.deepEqual(r.kMean.shape, [1, 1, 64]);
  assert.equal(r.smScaleFolded, false);
  assert.equal(r.deltaS, undefined);
  assert.equal(r.qMean, undefined);
});

test('scale shapes and code dtypes of every quant kind (Nq = 130, Nk = 70, H = 2, Hkv = 1, D = 64)', () => {
  const q = randn([1, 2, 130, 64], { seed: 3 });
  const k = randn([1, 1, 70, 64], { seed: 4 });
  const expected: [number[], number[], string][] = [
    [[1, 2, 2], [1, 1, 2], 'int8'],
    [[1, 2, 8], [1, 1, 2], 'int8'],
    [[1, 2, 64], [1, 1, 8], 'int8'],
    [[1, 2, 130], [1, 1, 70], 'int8'],
    [[1, 2, 64], [1, 1, 8], 'int4'],
    [[1, 2, 130, 4], [1, 1, 70, 4], 'float4_e2m1fn'],
    [[1, 2, 130, 2], [1, 1, 70, 2], 'float4_e2m1fn'],
    [[1, 2, 130], [1, 1, 70], 'float32'],
  ];
  ALL_QUANTS.forEach((quant, i) => {
    const r = quantizeQK(q, k, { quant });
    assert.deepEqual(r.q.scales.shape, expected[i][0], JSON.stringify(quant));
    assert.deepEqual(r.k.scales.shape, expected[i][1], JSON.stringify(quant));
    assert.equal(r.q.codes.dtype, expected[i][2]);
    assert.equal(r.k.codes.dtype, expected[i][2]);
  });
  assert.deepEqual(quantizeQK(q, k, { quant: { kind: 'mxfp4' } }).options.quant, {
    kind: 'mxfp4',
    scaleRule: 'truncation-free',
  });
});

test('per-block Q scales fold σ·log2e in (Q is multiplied by fround(σ·1.44269504) first); other scales do not', () => {
  const q = randn([1, 1, 130, 16], { seed: 5 });
  const k = randn([1, 1, 64, 16], { seed: 6 });
  const smScale = 0.3;
  const block = quantizeQK(q, k, { quant: { kind: 'int8', granularity: 'per-block' }, smScale });
  assert.equal(block.smScaleFolded, true);
  const factor = f32(smScale * 1.44269504);
  for (const [blk, first, end] of [
    [0, 0, 128],
    [1, 128, 130], // partial block: its two valid tokens only
  ]) {
    let amax = 0;
    for (let i = first * 16; i < end * 16; i++) amax = Math.max(amax, Math.abs(f32(q.data[i] * factor)));
    assert.equal(block.q.scales.data[blk], f32(amax / 127), `block ${blk}`);
  }
  assert.deepEqual(
    block.q.codes.data,
    quantizeIntGroups(q, { role: 'q', bits: 8, granularity: 'per-block', prescale: factor }).codes.data,
  );
  // K scales and per-warp Q scales carry no σ
  const warp = quantizeQK(q, k, {
    quant: { kind: 'int8', granularity: 'per-warp' },
    smScale,
    smoothK: false,
  });
  assert.equal(warp.smScaleFolded, false);
  let amax = 0;
  for (let i = 0; i < 32 * 16; i++) amax = Math.max(amax, Math.abs(q.data[i]));
  assert.equal(warp.q.scales.data[0], f32(amax / 127));
  assert.deepEqual(block.k.scales.data.length, 1);
  // the folded dequantized Q is q·σ·log2e
  const dq = dequant(block, 'q');
  for (let i = 0; i < 16; i++)
    assert.ok(Math.abs(dq.data[i] - q.data[i] * smScale * LOG2E) <= block.q.scales.data[0]);
});

test('dequantized attention matches the float64 oracle for every kind and granularity', () => {
  const dims = [1, 2, 70, 64];
  const q = randn(dims, { seed: 7 });
  const k = randn([1, 1, 70, 64], { seed: 8 });
  const v = randn([1, 1, 70, 64], { seed: 9 });
  const ref = attentionReference(q, k, v);
  // measured on this case: int8 ≥ 0.99993, int4 per-thread 0.9845, nvfp4 0.9908, mxfp4 0.9874; a wrong
  // scale index or a missing σ·log2e fold drops far below these
  const minCos: Record<string, number> = {
    int8: 0.9998,
    int4: 0.98,
    nvfp4: 0.985,
    mxfp4: 0.98,
    none: 0.9999999,
  };
  for (const quant of ALL_QUANTS) {
    const r = quantizeQK(q, k, { quant });
    const cos = metrics.cosine(attentionFromQuantized(r, v), ref);
    assert.ok(cos >= minCos[quant.kind], `${JSON.stringify(quant)} cos ${cos}`);
  }
});

test('K smoothing: the logits change by a per-row constant q·k̄, so the softmax and the output are unchanged', () => {
  const q = randn([1, 2, 9, 16], { seed: 10 });
  const k = randn([1, 1, 11, 16], { seed: 11 });
  for (let i = 0; i < k.size; i += 16) k.data[i + 3] += 20; // channel bias shared by all tokens
  const v = randn([1, 1, 11, 16], { seed: 12 });
  const r = quantizeQK(q, k, { quant: { kind: 'none' } });
  const gk = r.k.codes.data; // γ(K) as float32
  const km = r.kMean.data;
  for (let c = 0; c < 16; c++) {
    let mean = 0;
    for (let t = 0; t < 11; t++) mean += k.data[t * 16 + c];
    assert.ok(Math.abs(km[c] - mean / 11) < 1e-5);
  }
  for (let h = 0; h < 2; h++) {
    for (let i = 0; i < 9; i++) {
      const qi = h * 9 + i;
      let qk = 0;
      for (let c = 0; c < 16; c++) qk += q.data[qi * 16 + c] * km[c];
      for (let j = 0; j < 11; j++) {
        const diff = logits(q.data, k.data, qi, j, 16) - logits(q.data, gk, qi, j, 16);
        assert.ok(Math.abs(diff - qk) < 1e-4, `h ${h} row ${i} key ${j}: ${diff} vs ${qk}`);
      }
    }
  }
  const smoothed = new Tensor(Float32Array.from(gk), k.shape, 'float32');
  const a = attentionReference(q, k, v);
  const b = attentionReference(q, smoothed, v);
  for (let i = 0; i < a.size; i++) assert.ok(Math.abs(a.data[i] - b.data[i]) < 1e-5);
  // and it is what rescues per-block INT4 on biased K (SA2 Table 4)
  const int4 = { kind: 'int4', granularity: 'per-block' } as const;
  const withSmooth = metrics.relL1(attentionFromQuantized(quantizeQK(q, k, { quant: int4 }), v), a);
  const without = metrics.relL1(
    attentionFromQuantized(quantizeQK(q, k, { quant: int4, smoothK: false }), v),
    a,
  );
  assert.ok(withSmooth < without / 2, `${withSmooth} vs ${without}`);
  // smoothK off: kMean is zeros and K is quantized as given
  assert.ok(quantizeQK(q, k, { smoothK: false }).kMean.data.every((x) => x === 0));
});

test('Q smoothing: dequant(γ(Q))·dequant(γ(K))ᵀ + ΔS ≈ Q·γ(K)ᵀ, with ΔS per blockQ and the GQA kv head', () => {
  // H = 4 query heads over Hkv = 2; Nq = 40 in blocks of 16 (last block partial); Q has a per-block bias
  const [H, Hkv, Nq, Nk, D, blockQ] = [4, 2, 40, 24, 32, 16];
  const q = randn([1, H, Nq, D], { seed: 13 });
  for (let i = 0; i < q.size; i++) q.data[i] += 3 + Math.floor((Math.floor(i / D) % Nq) / blockQ);
  const k = randn([1, Hkv, Nk, D], { seed: 14 });
  const opts: QuantizeQKOptions = {
    smoothQ: true,
    blockQ,
    warpQ: 16,
    quant: { kind: 'int8', granularity: 'per-thread' },
  };
  const r = quantizeQK(q, k, opts);
  assert.ok(r.deltaS && r.qMean);
  assert.deepEqual(r.deltaS.shape, [1, H, 3, Nk]);
  assert.deepEqual(r.qMean.shape, [1, H, 3, D]);
  const exact = quantizeQK(q, k, { ...opts, quant: { kind: 'none' } });
  const gq = exact.q.codes.data; // γ(Q), float32
  const gk = exact.k.codes.data; // γ(K), float32
  const dq = dequant(r, 'q').data;
  const dk = dequant(r, 'k').data;
  let withoutDelta = 0;
  for (let h = 0; h < H; h++) {
    const hk = Math.floor(h / (H / Hkv));
    for (let blk = 0; blk < 3; blk++) {
      const first = blk * blockQ;
      const end = Math.min(first + blockQ, Nq);
      // ΔS from the block's valid-token mean and the smoothed K of the right kv head
      for (let j = 0; j < Nk; j++) {
        let expect = 0;
        for (let c = 0; c < D; c++) {
          let mean = 0;
          for (let t = first; t < end; t++) mean += q.data[(h * Nq + t) * D + c];
          expect += (mean / (end - first)) * gk[(hk * Nk + j) * D + c];
        }
        const got = r.deltaS.data[(h * 3 + blk) * Nk + j];
        assert.ok(
          Math.abs(got - expect) < 1e-4 * Math.max(1, Math.abs(expect)),
          `ΔS h ${h} blk ${blk} j ${j}`,
        );
      }
      for (let i = first; i < end; i++) {
        for (let j = 0; j < Nk; j++) {
          const [qi, kj] = [h * Nq + i, hk * Nk + j];
          const truth = logits(q.data, gk, qi, kj, D);
          const approx = logits(dq, dk, qi, kj, D);
          const delta = r.deltaS.data[(h * 3 + blk) * Nk + j];
          // dq·dk − γq·γk = Σ (dq − γq)·dk + γq·(dk − γk): the quantization error, bounded termwise
          let bound = 1e-4 * Math.max(1, Math.abs(truth));
          for (let c = 0; c < D; c++) {
            bound +=
              Math.abs(dq[qi * D + c] - gq[qi * D + c]) * Math.abs(dk[kj * D + c]) +
              Math.abs(gq[qi * D + c]) * Math.abs(dk[kj * D + c] - gk[kj * D + c]);
          }
          assert.ok(Math.abs(approx + delta - truth) <= bound, `h ${h} row ${i} key ${j}`);
          withoutDelta = Math.max(withoutDelta, Math.abs(approx - truth));
        }
      }
    }
  }
  assert.ok(withoutDelta > 2, `ΔS must matter in this case: ${withoutDelta}`);
});

test("rounding: 'nearest-even' by default, 'half-away' reproduces the Triton quantizer", () => {
  const q = randn([1, 1, 4, 8], { seed: 15 });
  // per-block K with amax 127 → δ_K = 1, so codes are round(k)
  const k = tensor([127, 2.5, -2.5, 0.5, 1.5, -1.5, 3.5, 0], [1, 1, 1, 8], 'float32');
  const quant = { kind: 'int8', granularity: 'per-block' } as const;
  const even = quantizeQK(q, k, { quant, smoothK: false });
  const away = quantizeQK(q, k, { quant, smoothK: false, rounding: 'half-away' });
  assert.deepEqual([...even.k.codes.data], [127, 2, -2, 0, 2, -2, 4, 0]);
  assert.deepEqual([...away.k.codes.data], [127, 3, -3, 1, 2, -2, 4, 0]);
});

test('all-zero inputs: codes 0, finite scales and ΔS, never NaN, for every kind', () => {
  const q = new Tensor(new Float32Array(2 * 20 * 32), [1, 2, 20, 32], 'float32');
  const k = new Tensor(new Float32Array(2 * 20 * 32), [1, 2, 20, 32], 'float32');
  for (const quant of ALL_QUANTS) {
    const r = quantizeQK(q, k, { quant, smoothQ: true });
    for (const part of [r.q, r.k]) {
      assert.ok(part.scales.data.every(Number.isFinite), JSON.stringify(quant));
      assert.ok(part.codes.data.every((c) => c === 0));
    }
    assert.ok(r.deltaS?.data.every((x) => x === 0));
    assert.ok(dequant(r, 'q').data.every((x) => x === 0));
  }
});

test("quant 'none': the smoothed values as float32 codes with unit per-token scales", () => {
  const q = tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 4, 2], 'float64');
  const k = tensor([1, 0, 3, 2], [1, 1, 2, 2], 'float32');
  const r = quantizeQK(q, k, { quant: { kind: 'none' }, smoothQ: true, blockQ: 16, warpQ: 16 });
  assert.deepEqual([...r.k.codes.data], [-1, -1, 1, 1]);
  assert.deepEqual([...r.q.codes.data], [-3, -3, -1, -1, 1, 1, 3, 3]);
  assert.equal(r.q.codes.dtype, 'float32');
  assert.deepEqual([...r.q.scales.data], [1, 1, 1, 1]);
  assert.deepEqual([...r.kMean.data], [2, 1]);
  assert.deepEqual([...(r.qMean?.data ?? [])], [4, 5]);
  // ΔS = q̄·γ(K): (4, 5)·(-1, -1) = -9 and (4, 5)·(1, 1) = 9
  assert.deepEqual([...(r.deltaS?.data ?? [])], [-9, 9]);
  // without smoothing the codes are a copy of the input, not the caller's storage
  const raw = quantizeQK(k, k, { quant: { kind: 'none' }, smoothK: false });
  assert.deepEqual([...raw.k.codes.data], [1, 0, 3, 2]);
  assert.notEqual(raw.k.codes.data, k.data);
});

test('NHD layout: codes in NHD, the same scales, kMean and ΔS as HND', () => {
  const q = randn([2, 4, 33, 16], { seed: 16 });
  const k = randn([2, 2, 20, 16], { seed: 17 });
  const opts = { smoothQ: true, blockQ: 16, warpQ: 16, blockK: 16, warpK: 16 };
  const a = quantizeQK(q, k, opts);
  const b = quantizeQK(convertLayout(q, 'HND', 'NHD'), convertLayout(k, 'HND', 'NHD'), {
    ...opts,
    layout: 'NHD',
  });
  assert.equal(b.options.layout, 'NHD');
  assert.deepEqual(convertLayout(b.q.codes, 'NHD', 'HND').data, a.q.codes.data);
  assert.deepEqual(convertLayout(b.k.codes, 'NHD', 'HND').data, a.k.codes.data);
  assert.deepEqual(b.q.scales.data, a.q.scales.data);
  assert.deepEqual(b.k.scales.data, a.k.scales.data);
  assert.deepEqual(b.kMean.data, a.kMean.data);
  assert.deepEqual(b.deltaS?.data, a.deltaS?.data);
});

test('bad input is a typed error', () => {
  const q = randn([1, 4, 8, 16]);
  const k = randn([1, 2, 8, 16]);
  const shape = (qq: Tensor, kk: Tensor, o?: QuantizeQKOptions) =>
    assert.throws(() => quantizeQK(qq, kk, o), ShapeError);
  const option = (o: unknown) =>
    assert.throws(() => quantizeQK(q, k, o as QuantizeQKOptions), UnsupportedOptionError, JSON.stringify(o));
  shape(q.reshape([4, 8, 16]), k);
  shape(q, randn([2, 2, 8, 16]));
  shape(q, randn([1, 2, 8, 8]));
  shape(q, randn([1, 3, 8, 16])); // 4 query heads over 3 kv heads
  shape(randn([1, 0, 8, 16]), randn([1, 0, 8, 16]));
  assert.throws(() => quantizeQK(tensor([1], [1, 1, 1, 1], 'int8'), k), DTypeError);
  assert.throws(
    () => quantizeQK(q, { kind: 'gpu', shape: k.shape, dtype: 'float32' } as unknown as Tensor),
    DTypeError,
  );
  option(null);
  option([]);
  option({ smoothk: true });
  option({ layout: 'HDN' });
  option({ quant: 'int8' });
  option({ quant: { kind: 'int2', granularity: 'per-block' } });
  option({ quant: { kind: 'int8' } });
  option({ quant: { kind: 'int8', granularity: 'per-tensor' } });
  option({ quant: { kind: 'int8', granularity: 'per-block', bits: 8 } });
  option({ quant: { kind: 'nvfp4', scaleRule: 'ocp' } });
  option({ quant: { kind: 'mxfp4', scaleRule: 'floor' } });
  option({ smoothK: 1 });
  option({ smoothQ: 'yes' });
  for (const smScale of [0, -1, NaN, Infinity, '0.1']) option({ smScale });
  for (const bad of [
    { blockQ: 0 },
    { blockK: 1.5 },
    { warpQ: 12 },
    { warpQ: 48 },
    { warpK: 24 },
    { warpK: 128 },
  ])
    option(bad);
  option({ rounding: 'stochastic' });
  option({ rounding: 'half-away', quant: { kind: 'nvfp4' } });
});
