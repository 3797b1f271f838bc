// Bad input to encode/decode gives typed errors that say what was expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, ShapeError, UnsupportedOptionError } from '../../src/core/errors.js';
import { decode, encode, floatFormat, type FloatFormatName } from '../../src/numerics/index.js';

const x = Float32Array.from([1, 2]);

test('an unknown format name is a DTypeError listing the known formats', () => {
  assert.throws(
    () => encode('float8_e4m3' as FloatFormatName, x),
    (e: unknown) => {
      assert.ok(e instanceof DTypeError);
      assert.match(e.message, /float8_e4m3fn/);
      return true;
    },
  );
  assert.throws(() => decode('int8' as FloatFormatName, new Uint8Array(1)), DTypeError);
  assert.throws(() => floatFormat(undefined), DTypeError);
});

test('encode wants a Float32Array and an out of the storage type and length', () => {
  assert.throws(() => encode('float16', [1, 2] as unknown as Float32Array), DTypeError);
  assert.throws(() => encode('float16', Float64Array.from([1]) as unknown as Float32Array), DTypeError);
  assert.throws(() => encode('float16', x, { out: new Uint8Array(2) as unknown as Uint16Array }), DTypeError);
  assert.throws(
    () => encode('float8_e5m2', x, { out: new Uint16Array(2) as unknown as Uint8Array }),
    DTypeError,
  );
  assert.throws(() => encode('float8_e5m2', x, { out: new Uint8Array(3) }), ShapeError);
});

test('encode rejects unknown option values', () => {
  assert.throws(
    () => encode('float16', x, { rounding: 'nearest' as 'nearest-even' }),
    UnsupportedOptionError,
  );
  assert.throws(() => encode('float16', x, { saturate: 1 as unknown as boolean }), UnsupportedOptionError);
});

test('decode wants codes of the storage type, 4-bit codes ≤ 15, and a Float32Array out', () => {
  assert.throws(() => decode('bfloat16', new Uint8Array(2)), DTypeError);
  assert.throws(() => decode('float8_e4m3fn', new Uint16Array(2)), DTypeError);
  assert.throws(() => decode('float8_e4m3fn', Int8Array.from([1]) as unknown as Uint8Array), DTypeError);
  assert.throws(
    () => decode('float4_e2m1fn', Uint8Array.from([3, 16])),
    (e: unknown) => {
      assert.ok(e instanceof DTypeError);
      assert.match(e.message, /element 1 is 16/);
      return true;
    },
  );
  assert.throws(
    () => decode('float16', new Uint16Array(2), new Float64Array(2) as unknown as Float32Array),
    DTypeError,
  );
  assert.throws(() => decode('float16', new Uint16Array(2), new Float32Array(3)), ShapeError);
});

test('encode and decode type 16-bit formats as Uint16Array and the others as Uint8Array', () => {
  const half: Uint16Array = encode('bfloat16', x);
  const byte: Uint8Array = encode('float4_e2m1fn', x);
  assert.ok(half instanceof Uint16Array);
  assert.ok(byte instanceof Uint8Array);
  assert.deepEqual(Array.from(decode('float4_e2m1fn', byte)), [1, 2]);
});
