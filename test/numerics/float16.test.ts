// float16 cross-checked against an independent implementation, @petamoriken/float16 (which rounds a
// float64 to float16 with round-to-nearest-even, like IEEE 754 and numpy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f16round, getFloat16 } from '@petamoriken/float16';
import { Rng } from '../../src/core/rng.js';
import { decode, encode } from '../../src/numerics/index.js';

test('float16 decode agrees with getFloat16 for every code', () => {
  const codes = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const values = decode('float16', codes);
  const view = new DataView(codes.buffer);
  for (let c = 0; c < 65536; c++) {
    const reference = getFloat16(view, 2 * c, true);
    if (Number.isNaN(reference)) assert.ok(Number.isNaN(values[c]), `code ${c}`);
    else assert.ok(Object.is(values[c], reference), `code ${c}: ${values[c]} vs ${reference}`);
  }
});

test('float16 encode agrees with f16round on random float32 values of every magnitude', () => {
  const rng = Rng.fromSeed(16);
  const bits = Uint32Array.from({ length: 200000 }, () => rng.nextUint32());
  // Half the patterns get an exponent near float16's range, where rounding is non-trivial.
  for (let i = 0; i < bits.length; i += 2)
    bits[i] = (bits[i] & 0x807fffff) | ((127 - 26 + (bits[i + 1] % 44)) << 23);
  const x = new Float32Array(bits.buffer);
  const got = decode('float16', encode('float16', x));
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i])) continue;
    assert.ok(Object.is(got[i], f16round(x[i])), `${x[i]}: ${got[i]} vs f16round ${f16round(x[i])}`);
  }
});
