// Conformance with ml_dtypes 0.6.0 (numpy for float16): every code decoded, every code round-tripped,
// every tie point between neighbouring codes and its float32 neighbours, specials, and 20000 random
// float32 bit patterns. Expected values come from test/fixtures/numerics (tools/gen-numerics-fixtures.py
// documents the layout). Also the saturate property, which ml_dtypes' astype has no switch for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FLOAT_FORMATS, decode, encode, type FloatFormatName } from '../../src/numerics/index.js';

const FIXTURES = new URL('../fixtures/numerics/', import.meta.url);

interface Meta {
  format: FloatFormatName;
  bits: 4 | 8 | 16;
  codeBytes: 1 | 2;
  randomCount: number;
  finfo: { max: number; smallestNormal: number; smallestSubnormal: number };
  sections: Record<'decode' | 'ties' | 'random', [number, number]>;
  specials: { label: string; input: string; code: number }[];
  roundtripExceptions: [number, number][];
}

interface Fixture {
  meta: Meta;
  /** float32 bits of every code, as ml_dtypes decodes them. */
  decodeBits: Uint32Array;
  tieCodes: Uint8Array | Uint16Array;
  randomCodes: Uint8Array | Uint16Array;
}

function gunzipFile(name: string): ArrayBuffer {
  const bytes = gunzipSync(readFileSync(new URL(name, FIXTURES)));
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function loadFixture(format: FloatFormatName): Fixture {
  const meta = JSON.parse(readFileSync(new URL(`${format}.json`, FIXTURES), 'utf8')) as Meta;
  const blob = gunzipFile(`${format}.bin.gz`);
  const Codes = meta.codeBytes === 2 ? Uint16Array : Uint8Array;
  const codes = ([offset, count]: [number, number]) =>
    new Codes(blob.slice(offset, offset + count * meta.codeBytes));
  const [decodeOffset, decodeCount] = meta.sections.decode;
  return {
    meta,
    decodeBits: new Uint32Array(blob.slice(decodeOffset, decodeOffset + 4 * decodeCount)),
    tieCodes: codes(meta.sections.ties),
    randomCodes: codes(meta.sections.random),
  };
}

const RANDOM_INPUTS = new Float32Array(gunzipFile('random-inputs.bin.gz'));
const FORMATS = Object.keys(FLOAT_FORMATS) as FloatFormatName[];

function floatsFromBits(bits: ArrayLike<number>): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

const hex = (x: number) => `0x${x.toString(16)}`;

/** Asserts codes equal element by element, naming the first few mismatches with their inputs. */
function assertCodes(
  got: ArrayLike<number>,
  expected: ArrayLike<number>,
  inputs: Float32Array | null,
  what: string,
): void {
  assert.equal(got.length, expected.length, `${what}: length`);
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    if (got[i] !== expected[i]) {
      const x = inputs ? ` input ${inputs[i]} (${hex(bitsOf(inputs)[i])})` : '';
      if (bad.length < 5) bad.push(`#${i}${x}: got ${hex(got[i])}, ml_dtypes ${hex(expected[i])}`);
      else break;
    }
  }
  assert.deepEqual(bad, [], `${what}: mismatches`);
}

/** The next float32 above (dir 1) or below (dir −1) a nonzero finite float32. */
function nextFloat32(x: number, dir: 1 | -1): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] += x > 0 === dir > 0 ? 1 : -1;
  return f[0];
}

/** The tie inputs the generator used: [nextDown(m), m, nextUp(m)] for each pair of neighbouring values. */
function tieInputs(decodeBits: Uint32Array): Float32Array {
  const values = [
    ...new Set(
      Array.from(floatsFromBits(decodeBits))
        .filter(Number.isFinite)
        .map((v) => v + 0),
    ),
  ];
  values.sort((a, b) => a - b);
  const inputs: number[] = [];
  for (let k = 0; k + 1 < values.length; k++) {
    const m = (values[k] + values[k + 1]) / 2;
    assert.equal(Math.fround(m), m, `tie point ${m} is a float32`);
    inputs.push(nextFloat32(m, -1), m, nextFloat32(m, 1));
  }
  return Float32Array.from(inputs);
}

for (const format of FORMATS) {
  const fx = loadFixture(format);
  const spec = FLOAT_FORMATS[format];
  const Codes = spec.bits === 16 ? Uint16Array : Uint8Array;
  const allCodes = new Codes(2 ** spec.bits).map((_, i) => i);

  test(`${format}: the format table agrees with ml_dtypes' finfo and code table`, () => {
    assert.equal(fx.meta.bits, spec.bits);
    assert.equal(spec.max, fx.meta.finfo.max);
    assert.equal(spec.minNormal, fx.meta.finfo.smallestNormal);
    assert.equal(spec.minPositive, fx.meta.finfo.smallestSubnormal);
    const values = floatsFromBits(fx.decodeBits);
    assert.equal(values[spec.maxCode], spec.max);
    const finite = Array.from(values).filter(Number.isFinite);
    assert.equal(
      finite.reduce((a, b) => Math.max(a, b)),
      spec.max,
    );
    assert.equal(
      finite.filter((v) => v > 0).reduce((a, b) => Math.min(a, b)),
      spec.minPositive,
    );
    assert.equal(
      spec.infCode === null ? null : values[spec.infCode],
      spec.infCode === null ? null : Infinity,
    );
    assert.equal(spec.nanCode === null || Number.isNaN(values[spec.nanCode]), true);
    assert.equal(Array.from(values).some(Number.isNaN), spec.nanCode !== null);
  });

  test(`${format}: decode gives ml_dtypes' float32 bits for every code, NaN payloads included`, () => {
    assertCodes(bitsOf(decode(format, allCodes)), fx.decodeBits, null, 'decode');
    const out = new Float32Array(allCodes.length);
    assert.equal(decode(format, allCodes, out), out);
    assertCodes(bitsOf(out), fx.decodeBits, null, 'decode into out');
  });

  test(`${format}: decode then encode returns every code (NaN codes canonicalise as in ml_dtypes)`, () => {
    const expected = Array.from(allCodes);
    for (const [code, result] of fx.meta.roundtripExceptions) {
      assert.ok(Number.isNaN(floatsFromBits(fx.decodeBits)[code]), `exception ${hex(code)} is a NaN code`);
      expected[code] = result;
    }
    assertCodes(encode(format, decode(format, allCodes)), expected, null, 'round trip');
  });

  test(`${format}: every tie point between neighbouring codes and the float32 on each side match ml_dtypes`, () => {
    const inputs = tieInputs(fx.decodeBits);
    assertCodes(encode(format, inputs), fx.tieCodes, inputs, 'ties');
  });

  test(`${format}: specials (zeros, inf, NaN payloads, max, overflow, subnormal edges) match ml_dtypes`, () => {
    const inputs = floatsFromBits(fx.meta.specials.map((s) => parseInt(s.input, 16)));
    const got = encode(format, inputs);
    const bad = fx.meta.specials.flatMap((s, i) =>
      got[i] === s.code ? [] : [`${s.label} (${s.input}): got ${hex(got[i])}, ml_dtypes ${hex(s.code)}`],
    );
    assert.deepEqual(bad, []);
  });

  test(`${format}: ${RANDOM_INPUTS.length} random float32 bit patterns match ml_dtypes`, () => {
    assert.equal(RANDOM_INPUTS.length, fx.meta.randomCount);
    assertCodes(encode(format, RANDOM_INPUTS), fx.randomCodes, RANDOM_INPUTS, 'random');
    const out = new Codes(RANDOM_INPUTS.length);
    assert.equal(encode(format, RANDOM_INPUTS, { out }), out);
    assertCodes(out, fx.randomCodes, RANDOM_INPUTS, 'random into out');
  });

  test(`${format}: saturate equals ml_dtypes wherever that is a number (or NaN from NaN), else the range end`, () => {
    const values = floatsFromBits(fx.decodeBits);
    const signBit = spec.signed ? 2 ** (spec.bits - 1) : 0;
    const check = (inputs: Float32Array, reference: ArrayLike<number>, what: string) => {
      const expected = Array.from(reference, (code, i) => {
        const x = inputs[i];
        if (Number.isNaN(x) || Number.isFinite(values[code])) return code;
        if (!spec.signed) return x > 0 ? spec.maxCode : 0; // float8_e8m0fnu: clamp into [2^-127, 2^127]
        return x < 0 ? spec.maxCode | signBit : spec.maxCode;
      });
      assertCodes(encode(format, inputs, { saturate: true }), expected, inputs, what);
    };
    check(RANDOM_INPUTS, fx.randomCodes, 'random');
    check(tieInputs(fx.decodeBits), fx.tieCodes, 'ties');
    check(
      floatsFromBits(fx.meta.specials.map((s) => parseInt(s.input, 16))),
      fx.meta.specials.map((s) => s.code),
      'specials',
    );
  });
}

test('non-obvious ml_dtypes behaviours, spelled out', () => {
  const enc = (format: FloatFormatName, xs: number[], saturate = false) =>
    Array.from(encode(format, Float32Array.from(xs), { saturate }));
  // float8_e4m3fn: no inf; overflow past the 448/480 tie (464) and ±inf give NaN, saturate gives ±448.
  assert.deepEqual(enc('float8_e4m3fn', [464, 465, Infinity, -Infinity]), [0x7e, 0x7f, 0x7f, 0xff]);
  assert.deepEqual(enc('float8_e4m3fn', [465, -Infinity], true), [0x7e, 0xfe]);
  // float4_e2m1fn: no inf or NaN; inf saturates to ±6 even without asking, +NaN gives −0 and −NaN +0.
  assert.deepEqual(enc('float4_e2m1fn', [Infinity, -Infinity, 1e30]), [0x7, 0xf, 0x7]);
  assert.deepEqual(Array.from(encode('float4_e2m1fn', floatsFromBits([0x7fc00000, 0xffc00000]))), [0x8, 0x0]);
  // float8_e8m0fnu: 0, −0, negatives and NaN give NaN; ties 1.5·2^k round up; 1.5·2^127 overflows to NaN.
  assert.deepEqual(
    enc('float8_e8m0fnu', [0, -0, -1, NaN, 1.5, 3, 6, 1.5 * 2 ** 127]),
    [0xff, 0xff, 0xff, 0xff, 0x80, 0x81, 0x82, 0xff],
  );
  // ... and below 2^-126 it rounds as if code 0 were zero: 1.25·2^-127 → 2^-126 (code 1), not 2^-127.
  assert.deepEqual(enc('float8_e8m0fnu', [2 ** -127, 1.25 * 2 ** -127, 2 ** -140]), [0x00, 0x01, 0x00]);
  assert.deepEqual(
    enc('float8_e8m0fnu', [0, -3, -Infinity, Infinity, 2 ** 200], true),
    [0, 0, 0, 0xfe, 0xfe],
  );
  // float16 keeps a NaN's payload (numpy); bfloat16 canonicalises.
  const nan = floatsFromBits([0x7f802000]);
  assert.deepEqual(Array.from(encode('float16', nan)), [0x7c01]);
  assert.deepEqual(Array.from(encode('bfloat16', nan)), [0x7fc0]);
});
