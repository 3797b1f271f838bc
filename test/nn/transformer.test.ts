import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor } from '../../src/core/tensor.js';
import { ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import * as ag from '../../src/autograd/index.js';
import { type LinearSite, type TransformerConfig, transformer } from '../../src/nn/index.js';
import { adamw } from '../../src/train/adamw.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';

const tiny: TransformerConfig = { vocab: 7, dim: 8, heads: 2, layers: 2, maxLen: 6, hidden: 12 };
const ids = (xs: number[], b: number) => tensor(Int32Array.from(xs), [b, xs.length / b], 'int32');

test('shapes, parameter names and count', () => {
  const m = transformer(tiny);
  const { logits, taps } = m.forward(ids([0, 1, 2, 3, 4, 5, 6, 0], 2));
  assert.deepEqual(logits.shape, [2, 4, 7]);
  assert.equal(taps.mlpDownInputs.length, 2);
  assert.deepEqual(taps.mlpDownInputs[1].shape, [2, 4, 12]);
  assert.deepEqual(taps.blockOutputs[0].shape, [2, 4, 8]);
  assert.deepEqual(taps.final.shape, [2, 4, 8]);
  // embeddings 7·8 + 6·8, per block 2 norms of 8 + q,k,v,proj 4·64 + SwiGLU 3·8·12, final norm, head 7·8
  assert.equal(m.parameterCount, 56 + 48 + 2 * (16 + 256 + 288) + 8 + 56);
  assert.deepEqual(
    m.linearSites().map((s) => s.weight),
    [0, 1].flatMap((l) =>
      ['attn.q', 'attn.k', 'attn.v', 'attn.proj', 'mlp.gate', 'mlp.up', 'mlp.down'].map(
        (n) => `blocks.${l}.${n}.weight`,
      ),
    ),
  );
  const gelu = transformer({ ...tiny, mlp: 'gelu', norm: 'layer', bias: true });
  assert.ok('blocks.0.norm1.bias' in gelu.params && 'blocks.1.mlp.down.bias' in gelu.params);
  assert.ok(!('blocks.0.mlp.gate.weight' in gelu.params));
  assert.deepEqual(gelu.params['blocks.0.mlp.up.weight'].shape, [12, 8]);
  assert.deepEqual(gelu.params['blocks.0.mlp.down.weight'].shape, [8, 12]);
});

test('initialisation and forward are deterministic per seed; init follows GPT-2', () => {
  const a = transformer({ ...tiny, seed: 3 });
  const b = transformer({ ...tiny, seed: 3 });
  const c = transformer({ ...tiny, seed: 4 });
  for (const k of Object.keys(a.params)) assert.deepEqual(a.params[k].value.data, b.params[k].value.data);
  assert.notDeepEqual(a.params['head.weight'].value.data, c.params['head.weight'].value.data);
  const x = ids([1, 2, 3, 4, 5, 6], 1);
  assert.deepEqual(a.forward(x).logits.value.data, b.forward(x).logits.value.data);
  assert.deepEqual([...a.params['blocks.0.norm2.weight'].value.data], new Array(8).fill(1));
  const std = (d: Float64Array) => Math.sqrt(d.reduce((s, v) => s + v * v, 0) / d.length);
  const big = transformer({ vocab: 256, dim: 64, heads: 4, layers: 2, maxLen: 8, hidden: 64 });
  assert.ok(Math.abs(std(big.params['tok_emb.weight'].value.data as Float64Array) - 0.02) < 0.001);
  const proj = std(big.params['blocks.0.attn.proj.weight'].value.data as Float64Array);
  assert.ok(Math.abs(proj - 0.02 / 2) < 0.001, `residual projection std ${proj}`);
});

test('gradients of every parameter match float64 finite differences', () => {
  for (const cfg of [
    { ...tiny, layers: 1, maxLen: 3 },
    { ...tiny, layers: 1, maxLen: 3, mlp: 'gelu', norm: 'layer', bias: true, causal: false } as const,
  ]) {
    const m = transformer({ ...cfg, initStd: 0.5 });
    const names = Object.keys(m.params);
    const x = ids([0, 3, 6, 2, 2, 5], 2);
    const r = ag.gradCheck(
      (...vars) => {
        names.forEach((n, i) => (m.params[n] = vars[i]));
        return m.forward(x).logits;
      },
      names.map((n) => m.params[n].value),
    );
    assert.ok(r.ok, `${cfg.mlp ?? 'swiglu'}: max error ${r.maxError} at ${JSON.stringify(r.worst)}`);
  }
});

test('causal: a later token never changes earlier logits; bidirectional: it does', () => {
  for (const causal of [true, false]) {
    const m = transformer({ ...tiny, causal, initStd: 0.3 });
    const a = m.forward(ids([1, 2, 3, 4, 5, 6], 1)).logits.value.data;
    const b = m.forward(ids([1, 2, 3, 0, 5, 6], 1)).logits.value.data;
    const before = (d: ArrayLike<number>) => Array.from(d).slice(0, 3 * 7);
    const from = (d: ArrayLike<number>) => Array.from(d).slice(3 * 7);
    if (causal) assert.deepEqual(before(b), before(a));
    else assert.notDeepEqual(before(b), before(a));
    assert.notDeepEqual(from(b), from(a));
  }
});

test('training a next-token task lowers the loss', () => {
  // A repeating cycle 0→1→…→6→0: the next token is a function of the current one.
  const m = transformer({ ...tiny, seed: 1 });
  const opt = adamw(m.parameters(), { lr: 0.02, weightDecay: 0 });
  const seq = Array.from({ length: 4 * 7 }, (_, i) => (i + Math.floor(i / 7) * 3) % 7);
  const x = ids(seq.slice(0, 24), 4);
  const targets = Int32Array.from(seq.slice(0, 24), (t) => (t + 1) % 7);
  const losses: number[] = [];
  for (let step = 0; step < 40; step++) {
    opt.zeroGrad();
    const loss = ag.crossEntropy(ag.reshape(m.forward(x, { step }).logits, [-1, 7]), targets);
    ag.backward(loss);
    opt.step();
    losses.push(loss.item());
  }
  assert.ok(Math.abs(losses[0] - Math.log(7)) < 0.1, `initial loss ${losses[0]} ≈ ln 7`);
  assert.ok(losses[39] < 0.2, `final loss ${losses[39]}`);
});

test('block linears take the configured precision, per site; the head stays fp32', () => {
  const seen: LinearSite[] = [];
  const x = ids([1, 2, 3, 4, 5, 6], 1);
  const cfg = { ...tiny, dim: 32, heads: 2, hidden: 32, initStd: 0.3 };
  const ref = transformer(cfg).forward(x).logits.value.data;
  const qModel = transformer({
    ...cfg,
    linear: (site) => {
      seen.push(site);
      return { mode: site.name === 'mlp.down' ? 'int8-block' : 'fp32' };
    },
  });
  const q = qModel.forward(x).logits.value.data;
  // a per-call override evaluates the same weights in another precision
  assert.deepEqual(qModel.forward(x, { linear: { mode: 'fp32' } }).logits.value.data, ref);
  assert.equal(seen.length, 14);
  assert.deepEqual(
    seen.map((s) => s.index),
    [...Array(14).keys()],
  );
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < ref.length; i++) {
    diff += (q[i] - ref[i]) ** 2;
    norm += ref[i] ** 2;
  }
  const rel = Math.sqrt(diff / norm);
  assert.ok(rel > 0 && rel < 0.02, `int8 down projection changes logits by ${rel} relative`);
});

test('pluggable attention and the extra-embedding hook', () => {
  const calls: { shape: readonly number[]; causal: boolean }[] = [];
  const m = transformer({
    ...tiny,
    causal: false,
    attention: (q, k, v, opts) => {
      calls.push({ shape: q.shape, causal: opts.causal });
      return ag.scaledDotProductAttention(q, k, v, opts);
    },
  });
  const x = ids([1, 2, 3, 4, 5, 6], 2);
  const plain = m.forward(x).logits.value.data;
  assert.deepEqual(calls, [
    { shape: [2, 2, 3, 4], causal: false },
    { shape: [2, 2, 3, 4], causal: false },
  ]);
  const extra = ag.constant(
    tensor(
      Float64Array.from({ length: 16 }, (_, i) => i / 16),
      [2, 1, 8],
      'float64',
    ),
  );
  const shifted = m.forward(x, { extra }).logits.value.data;
  assert.notDeepEqual(shifted, plain);
  assert.deepEqual(
    transformer(tiny).forward(x).logits.value.data,
    transformer(tiny).forward(x).logits.value.data,
  );
});

test('parameters round-trip through a checkpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sparq-transformer-'));
  try {
    const a = transformer({ ...tiny, seed: 5 });
    const b = transformer({ ...tiny, seed: 6 });
    saveCheckpoint(join(dir, 'c.safetensors'), {
      params: a.params,
      optimizer: adamw(a.parameters(), { lr: 1 }),
      step: 0,
    });
    loadCheckpoint(join(dir, 'c.safetensors'), {
      params: b.params,
      optimizer: adamw(b.parameters(), { lr: 1 }),
    });
    const x = ids([1, 2, 3], 1);
    assert.deepEqual(b.forward(x).logits.value.data, a.forward(x).logits.value.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad configs and inputs are typed errors', () => {
  assert.throws(() => transformer({ ...tiny, heads: 3 }), UnsupportedOptionError);
  assert.throws(() => transformer({ ...tiny, layers: 0 }), UnsupportedOptionError);
  assert.throws(() => transformer({ ...tiny, mlp: 'relu' as never }), UnsupportedOptionError);
  assert.throws(() => transformer({ ...tiny, norm: 'batch' as never }), UnsupportedOptionError);
  const m = transformer(tiny);
  assert.throws(() => m.forward(ids([1, 2, 3, 4, 5, 6, 0], 1)), ShapeError); // T = 7 > maxLen
  assert.throws(() => m.forward(tensor(Float64Array.of(1, 2), [1, 2], 'float64')), ShapeError);
  assert.throws(() => m.forward(ids([1, 9], 1)), ShapeError); // id outside the vocabulary
});
