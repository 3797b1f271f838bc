import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DTypeError,
  NonFiniteInputError,
  ShapeError,
  UnsupportedOptionError,
} from '../../src/core/errors.js';
import { tensor } from '../../src/core/tensor.js';
import {
  type AttentionOptions,
  assertFiniteInputs,
  kvHeadOf,
  resolveAttentionProblem,
  type ShapedLike,
} from '../../src/attention/options.js';

const f32 = (...shape: number[]): ShapedLike => ({ shape, dtype: 'float32' });
const resolve = (q: ShapedLike, k: ShapedLike, v: ShapedLike, opts?: AttentionOptions) =>
  resolveAttentionProblem(q, k, v, opts);

test('defaults: HND, non-causal, top-left, smScale 1/sqrt(D), no LSE, NaN propagates', () => {
  const p = resolve(f32(2, 4, 10, 16), f32(2, 2, 12, 16), f32(2, 2, 12, 16));
  assert.deepEqual(p, {
    batch: 2,
    headsQ: 4,
    headsKv: 2,
    tokensQ: 10,
    tokensKv: 12,
    headDim: 16,
    dtype: 'float32',
    layout: 'HND',
    causal: false,
    causalAlignment: 'top-left',
    smScale: 0.25,
    returnLse: false,
    nanPolicy: 'propagate',
  });
});

test('NHD reads [B, N, H, D]; explicit options and undefined values are honoured', () => {
  const p = resolve(f32(1, 10, 4, 8), f32(1, 12, 1, 8), f32(1, 12, 1, 8), {
    layout: 'NHD',
    causal: true,
    causalAlignment: 'bottom-right',
    smScale: 0.5,
    returnLse: true,
    nanPolicy: 'error',
    // an explicit undefined means "default", as with a missing key
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ...({ causal: undefined } as any),
  });
  assert.equal(p.tokensQ, 10);
  assert.equal(p.headsQ, 4);
  assert.equal(p.headsKv, 1);
  assert.equal(p.tokensKv, 12);
  assert.equal(p.causal, false);
  assert.equal(p.causalAlignment, 'bottom-right');
  assert.equal(p.smScale, 0.5);
  assert.equal(p.returnLse, true);
  assert.equal(p.nanPolicy, 'error');
});

test('rule: q, k and v must be rank 4', () => {
  assert.throws(() => resolve(f32(4, 10, 16), f32(1, 4, 10, 16), f32(1, 4, 10, 16)), ShapeError);
  assert.throws(
    () => resolve(f32(1, 4, 10, 16), f32(1, 4, 10, 16, 1), f32(1, 4, 10, 16)),
    /k must be rank 4/,
  );
});

test('rule: equal batch sizes', () => {
  assert.throws(() => resolve(f32(2, 4, 10, 16), f32(1, 4, 10, 16), f32(1, 4, 10, 16)), {
    name: 'ShapeError',
    message: /same batch size/,
  });
});

test('rule: k and v must have identical shapes', () => {
  assert.throws(() => resolve(f32(1, 4, 10, 16), f32(1, 4, 10, 16), f32(1, 4, 11, 16)), {
    name: 'ShapeError',
    message: /k and v must have identical shapes/,
  });
  assert.throws(() => resolve(f32(1, 4, 10, 16), f32(1, 4, 10, 16), f32(1, 2, 10, 16)), ShapeError);
});

test('rule: Hq must be a multiple of Hkv', () => {
  assert.throws(() => resolve(f32(1, 3, 10, 16), f32(1, 2, 10, 16), f32(1, 2, 10, 16)), {
    name: 'ShapeError',
    message: /query heads \(3\) must be a multiple of the number of kv heads \(2\)/,
  });
});

test('rule: q and k share the head dim', () => {
  assert.throws(() => resolve(f32(1, 4, 10, 16), f32(1, 4, 10, 8), f32(1, 4, 10, 8)), {
    name: 'ShapeError',
    message: /q and k must have the same head dim/,
  });
});

test("rule: v's head dim equals D (and the message says so)", () => {
  assert.throws(() => resolve(f32(1, 4, 10, 16), f32(1, 4, 10, 16), f32(1, 4, 10, 32)), {
    name: 'ShapeError',
    message: /v's head dim must equal q's head dim D = 16/,
  });
});

test('rule: D >= 1', () => {
  assert.throws(() => resolve(f32(1, 4, 10, 0), f32(1, 4, 10, 0), f32(1, 4, 10, 0)), {
    name: 'ShapeError',
    message: /head dim D must be at least 1/,
  });
});

test('rule: at least one head', () => {
  assert.throws(() => resolve(f32(1, 0, 10, 8), f32(1, 0, 10, 8), f32(1, 0, 10, 8)), ShapeError);
});

test('rule: Nk >= 1 (ShapeError), while Nq = 0 and B = 0 are allowed', () => {
  assert.throws(() => resolve(f32(1, 4, 10, 16), f32(1, 4, 0, 16), f32(1, 4, 0, 16)), {
    name: 'ShapeError',
    message: /at least one token/,
  });
  assert.equal(resolve(f32(1, 4, 0, 16), f32(1, 4, 5, 16), f32(1, 4, 5, 16)).tokensQ, 0);
  assert.equal(resolve(f32(0, 4, 3, 16), f32(0, 4, 5, 16), f32(0, 4, 5, 16)).batch, 0);
});

test('rule: unknown option keys are rejected, with a hint for typos', () => {
  const shape = f32(1, 1, 2, 4);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const typo = { casual: true } as any as AttentionOptions;
  assert.throws(() => resolve(shape, shape, shape, typo), {
    name: 'UnsupportedOptionError',
    message: /unknown attention option 'casual' \(did you mean 'causal'\?\)/,
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const other = { blockQ: 16 } as any as AttentionOptions;
  assert.throws(() => resolve(shape, shape, shape, other), UnsupportedOptionError);
  assert.equal(resolveAttentionProblem(shape, shape, shape, other, ['blockQ']).tokensQ, 2);
});

test('rule: smScale must be finite and > 0', () => {
  const shape = f32(1, 1, 2, 4);
  for (const smScale of [0, -1, NaN, Infinity]) {
    assert.throws(() => resolve(shape, shape, shape, { smScale }), UnsupportedOptionError, String(smScale));
  }
});

test('rule: float dtypes only, one dtype for q, k and v', () => {
  const int8 = { shape: [1, 1, 2, 4], dtype: 'int8' } as const;
  assert.throws(() => resolve(int8, int8, int8), {
    name: 'DTypeError',
    message: /q must have a float dtype/,
  });
  const fp8 = { shape: [1, 1, 2, 4], dtype: 'float8_e4m3fn' } as const;
  assert.throws(() => resolve(f32(1, 1, 2, 4), fp8, fp8), DTypeError);
  for (const dtype of ['float64', 'float16', 'bfloat16'] as const) {
    const t = { shape: [1, 1, 2, 4], dtype };
    assert.equal(resolve(t, t, t).dtype, dtype);
  }
  const f16 = { shape: [1, 1, 2, 4], dtype: 'float16' } as const;
  assert.throws(() => resolve(f32(1, 1, 2, 4), f16, f16), { name: 'DTypeError', message: /share one dtype/ });
});

test('rule: enum and boolean option values are checked', () => {
  const s = f32(1, 1, 2, 4);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const bad = (o: Record<string, unknown>) => () => resolve(s, s, s, o as any);
  assert.throws(bad({ layout: 'BHND' }), UnsupportedOptionError);
  assert.throws(bad({ causalAlignment: 'bottom-left' }), UnsupportedOptionError);
  assert.throws(bad({ nanPolicy: 'ignore' }), UnsupportedOptionError);
  assert.throws(bad({ causal: 1 }), UnsupportedOptionError);
  assert.throws(bad({ returnLse: 'yes' }), UnsupportedOptionError);
});

test('kvHeadOf groups consecutive query heads (floor, not modulo)', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((h) => kvHeadOf(h, 6, 2)),
    [0, 0, 0, 1, 1, 1],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((h) => kvHeadOf(h, 4, 1)),
    [0, 0, 0, 0],
  );
});

test('assertFiniteInputs names the tensor and the first bad index', () => {
  const ok = tensor([1, 2, 3, 4], [1, 1, 2, 2], 'float32');
  const bad = tensor([1, 2, 3, NaN, Infinity, 0], [1, 1, 3, 2], 'float64');
  assert.doesNotThrow(() => assertFiniteInputs({ q: ok }));
  assert.throws(() => assertFiniteInputs({ q: ok, k: bad }), {
    name: 'NonFiniteInputError',
    message: /^k\[0, 0, 1, 1\] is NaN/,
  });
  assert.throws(
    () => assertFiniteInputs({ v: tensor([0, -Infinity], [1, 1, 1, 2], 'float32') }),
    NonFiniteInputError,
  );
});
