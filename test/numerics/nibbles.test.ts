import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTypeError, ShapeError } from '../../src/core/errors.js';
import { encode, packNibbles, unpackNibbles } from '../../src/numerics/index.js';

test('packNibbles puts element 2i in the low nibble and 2i+1 in the high nibble of byte i', () => {
  assert.deepEqual(Array.from(packNibbles(Uint8Array.from([0x1, 0x2, 0x3, 0xf, 0xa]))), [0x21, 0xf3, 0x0a]);
  assert.deepEqual(Array.from(packNibbles(Int8Array.from([-1, 7, -8, 0]))), [0x7f, 0x08]);
  assert.deepEqual(Array.from(packNibbles(new Uint8Array(0))), []);
  const out = new Uint8Array(2);
  assert.equal(packNibbles(Uint8Array.from([1, 2, 3]), out), out);
  assert.deepEqual(Array.from(out), [0x21, 0x03]);
});

test('unpackNibbles inverts packNibbles for even and odd lengths, unsigned and sign-extended', () => {
  const codes = encode('float4_e2m1fn', Float32Array.from([0.5, -6, 3, -0, 1.5, 4, -2]));
  for (const n of [7, 6, 1, 0]) {
    const part = codes.subarray(0, n);
    assert.deepEqual(unpackNibbles(packNibbles(part), n), Uint8Array.from(part), `length ${n}`);
  }
  const ints = Int8Array.from([-8, -7, -1, 0, 1, 7, 3]);
  assert.deepEqual(unpackNibbles(packNibbles(ints), ints.length, { signed: true }), ints);
  const out = new Int8Array(2);
  assert.equal(unpackNibbles(Uint8Array.from([0x8f]), 2, { signed: true, out }), out);
  assert.deepEqual(Array.from(out), [-1, -8]);
  assert.deepEqual(Array.from(unpackNibbles(Uint8Array.from([0x8f]), 2)), [15, 8]);
});

test('nibble packing rejects out-of-range codes and mismatched lengths', () => {
  assert.throws(() => packNibbles(Uint8Array.from([16])), DTypeError);
  assert.throws(() => packNibbles(Int8Array.from([8])), DTypeError);
  assert.throws(() => packNibbles(Int8Array.from([-9])), DTypeError);
  assert.throws(() => packNibbles([1, 2] as unknown as Uint8Array), DTypeError);
  assert.throws(() => packNibbles(Uint8Array.from([1, 2, 3]), new Uint8Array(1)), ShapeError);
  assert.throws(() => unpackNibbles(new Uint8Array(2), 5), ShapeError);
  assert.throws(() => unpackNibbles(new Uint8Array(2), 2), ShapeError);
  assert.throws(() => unpackNibbles(new Uint8Array(1), 2, { out: new Uint8Array(3) }), ShapeError);
  assert.throws(
    () =>
      unpackNibbles(new Uint8Array(1), 2, { signed: true, out: new Uint8Array(2) as unknown as Int8Array }),
    DTypeError,
  );
});
