// safetensors reading and writing: round trips, the writer's bytes against the format, views and
// copies, files on disk, and what the writer refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTYPES, type DType, storageOf } from '../../src/core/dtype.js';
import { DTypeError, MalformedFileError, UnsupportedOptionError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor, tensor } from '../../src/core/tensor.js';
import { swapByteOrder } from '../../src/io/byte-order.js';
import { findDuplicateKey } from '../../src/io/json-keys.js';
import { parseSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { readSafetensors, writeSafetensorsFile } from '../../src/io/safetensors-file.js';
import { elementsFromBytes, writeElements } from '../../src/io/tensor-bytes.js';

const WRITABLE: readonly DType[] = DTYPES.filter((d) => d !== 'float4_e2m1fn' && d !== 'int4');

/** A tensor of `dtype` whose bytes are random (any bit pattern, NaN payloads included; bools 0/1). */
function randomTensor(dtype: DType, shape: number[], rng: Rng): Tensor {
  const Storage = storageOf(dtype);
  const data = new Storage(shape.reduce((n, d) => n * d, 1));
  const bytes = new Uint8Array(data.buffer);
  for (let i = 0; i < bytes.length; i++)
    bytes[i] = dtype === 'bool' ? rng.nextUint32() & 1 : rng.nextUint32() & 255;
  return new Tensor(data, shape, dtype);
}

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function assertSameTensors(actual: Record<string, Tensor>, expected: Record<string, Tensor>): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const name of Object.keys(expected)) {
    const [a, e] = [actual[name], expected[name]];
    assert.equal(a.dtype, e.dtype, name);
    assert.deepEqual(a.shape, e.shape, name);
    assert.ok(a.data instanceof storageOf(e.dtype), name);
    assert.deepEqual(bytesOf(a), bytesOf(e), name);
  }
}

/** A file from header text and data bytes, with the header's true length unless told otherwise. */
function handMade(header: string, data: number[]): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

test('every writable dtype round-trips bit for bit, scalars and empty tensors included', () => {
  assert.deepEqual(WRITABLE, [
    'float64',
    'float32',
    'float16',
    'bfloat16',
    'float8_e4m3fn',
    'float8_e5m2',
    'float8_e8m0fnu',
    'int8',
    'uint8',
    'int32',
    'bool',
  ]);
  const rng = Rng.fromSeed(7);
  const tensors: Record<string, Tensor> = {};
  for (const dtype of WRITABLE) {
    tensors[`${dtype}.matrix`] = randomTensor(dtype, [3, 5], rng);
    tensors[`${dtype}.scalar`] = randomTensor(dtype, [], rng);
    tensors[`${dtype}.empty`] = randomTensor(dtype, [2, 0, 3], rng);
    tensors[`${dtype}.odd`] = randomTensor(dtype, [7], rng);
  }
  const bytes = writeSafetensors(tensors);
  const read = parseSafetensors(bytes);
  assertSameTensors(read.tensors, tensors);
  assert.deepEqual(read.metadata, {});
  assert.equal(read.tensors['float32.scalar'].size, 1);
  assert.equal(read.tensors['int32.empty'].size, 0);
  // The writer aligns every tensor, so the reader views the input without copying.
  for (const [name, t] of Object.entries(read.tensors)) {
    assert.equal(t.data.buffer, bytes.buffer, name);
    assert.equal(t.data.byteOffset % t.data.BYTES_PER_ELEMENT, 0, name);
  }
  // Writing what was read gives the same bytes.
  assert.deepEqual(writeSafetensors(read.tensors), bytes);
});

test('values survive: decoded floats, integers and bools read back as written', () => {
  const tensors = {
    h: tensor([0.5, -65504, 1 / 3], [3], 'float16'),
    b: tensor([1e30, -0], [2], 'bfloat16'),
    e4: tensor([448, -0.001953125], [2], 'float8_e4m3fn'),
    e5: tensor([57344, -1], [2], 'float8_e5m2'),
    e8: tensor([2 ** -127, 2 ** 127], [2], 'float8_e8m0fnu'),
    i: tensor([-2147483648, 2147483647], [2], 'int32'),
    m: tensor([1, 0, 1], [3], 'bool'),
  };
  const { tensors: read } = parseSafetensors(writeSafetensors(tensors));
  for (const [name, t] of Object.entries(tensors)) {
    assert.deepEqual(read[name].toFloat64(), t.toFloat64(), name);
  }
});

test('metadata round-trips, and an absent "__metadata__" reads as {}', () => {
  const metadata = { format: 'pt', ключ: 'значение 🙂', empty: '', quote: '"\\\n' };
  const t = { x: tensor([1], [1], 'float32') };
  const read = parseSafetensors(writeSafetensors(t, { metadata }));
  assert.deepEqual(read.metadata, metadata);
  const none = writeSafetensors(t, { metadata: {} });
  assert.ok(!new TextDecoder().decode(none).includes('__metadata__'), 'empty metadata is not written');
  assert.deepEqual(parseSafetensors(none).metadata, {});
  assert.deepEqual(parseSafetensors(handMade('{"__metadata__":null}', [])).metadata, {});
});

test('known answer: the writer lays out header, padding and data as the format says', () => {
  const bytes = writeSafetensors(
    {
      b: new Tensor(Uint16Array.from([0x3c00, 0xc000]), [2], 'float16'),
      a: new Tensor(Int8Array.from([-1, 2, 127]), [3], 'int8'),
      s: new Tensor(Float64Array.from([1.5]), [], 'float64'),
    },
    { metadata: { z: '1', a: 'é' } },
  );
  // Metadata first with sorted keys; then the tensors by descending element width, then name.
  const header =
    '{"__metadata__":{"a":"é","z":"1"},' +
    '"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},' +
    '"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},' +
    '"a":{"dtype":"I8","shape":[3],"data_offsets":[12,15]}}';
  assert.equal(header.length, 194); // 195 UTF-8 bytes ("é" takes two), padded to 200 with 5 spaces
  const expected = [
    ...[200, 0, 0, 0, 0, 0, 0, 0],
    ...Array.from(new TextEncoder().encode(header)),
    ...[0x20, 0x20, 0x20, 0x20, 0x20],
    ...[0, 0, 0, 0, 0, 0, 0xf8, 0x3f], // 1.5 as float64, little-endian
    ...[0x00, 0x3c, 0x00, 0xc0], // float16 codes 0x3c00 (1) and 0xc000 (-2)
    ...[0xff, 0x02, 0x7f], // int8 -1, 2, 127
  ];
  assert.equal(expected.length, 223);
  assert.deepEqual(Array.from(bytes), expected);
});

test("known answer: the reference crate's own serialization test vectors", () => {
  // safetensors/src/tensor.rs, test_serialization_forced_alignement and test_empty.
  const attn0 = writeSafetensors({ attn0: tensor([0, 1, 2, 3, 4, 5], [1, 1, 2, 3], 'float32') });
  assert.deepEqual(
    Array.from(attn0),
    [
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34,
      58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44,
      34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125,
      32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64,
    ],
  );
  assert.deepEqual(
    Array.from(writeSafetensors({})),
    [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32],
  );
  assert.deepEqual(
    Array.from(writeSafetensors({}, { metadata: { framework: 'pt' } })),
    [
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34,
      102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ],
  );
});

test('names are ordered by code point (UTF-8 byte order), not by UTF-16 unit', () => {
  // U+FF01 < U+1F600 as code points, but its UTF-16 unit 0xFF01 > the surrogate 0xD83D.
  const t = { '\u{1F600}': tensor([1], [1], 'uint8'), '\uFF01': tensor([2], [1], 'uint8') };
  const bytes = writeSafetensors(t);
  const text = new TextDecoder().decode(bytes);
  assert.ok(text.indexOf('\uFF01') < text.indexOf('\u{1F600}'));
  assert.deepEqual(Array.from(bytes.subarray(bytes.length - 2)), [2, 1]);
});

test('a tensor named "__proto__" is stored as a name, not as a prototype', () => {
  const tensors = JSON.parse('{"__proto__": 0}') as Record<string, Tensor>;
  tensors['__proto__'] = tensor([3], [1], 'int32');
  const read = parseSafetensors(writeSafetensors(tensors, { metadata: JSON.parse('{"__proto__":"m"}') }));
  assert.deepEqual(Object.keys(read.tensors), ['__proto__']);
  assert.equal(Object.getPrototypeOf(read.tensors), Object.prototype);
  assert.deepEqual(Array.from(read.tensors['__proto__'].data), [3]);
  assert.deepEqual(Object.keys(read.metadata), ['__proto__']);
});

test('unaligned offsets (hand-made file) are read into aligned copies', () => {
  // U8[3] first puts F32 at data offset 3 and F64 at 11. The header is padded to 168 bytes as a
  // writer would, so the data start at byte 176 and only the offsets are unaligned.
  const json =
    '{"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},' +
    '"f":{"dtype":"F32","shape":[2],"data_offsets":[3,11]},' +
    '"d":{"dtype":"F64","shape":[],"data_offsets":[11,19]}}';
  const header = json + ' '.repeat(7);
  assert.equal(header.length, 168);
  const f32 = new Uint8Array(Float32Array.from([1.5, -2]).buffer);
  const f64 = new Uint8Array(Float64Array.from([Math.PI]).buffer);
  const bytes = handMade(header, [7, 8, 9, ...f32, ...f64]);
  const { tensors } = parseSafetensors(bytes);
  assert.deepEqual(Array.from(tensors.u.data), [7, 8, 9]);
  assert.deepEqual(Array.from(tensors.f.data), [1.5, -2]);
  assert.deepEqual(Array.from(tensors.d.data), [Math.PI]);
  assert.equal(tensors.u.data.buffer, bytes.buffer, 'bytes need no alignment: viewed');
  assert.notEqual(tensors.f.data.buffer, bytes.buffer, 'unaligned: copied');
  assert.notEqual(tensors.d.data.buffer, bytes.buffer, 'unaligned: copied');
});

test('input at an odd byte offset, an ArrayBuffer, and copy: true', () => {
  const tensors = { w: tensor([1, 2, 3], [3], 'float32'), i: tensor([4, 5], [2], 'int32') };
  const bytes = writeSafetensors(tensors);
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  const fromShifted = parseSafetensors(shifted).tensors;
  assertSameTensors(fromShifted, tensors);
  assert.notEqual(fromShifted.w.data.buffer, shifted.buffer, 'misaligned in memory: copied');

  const buffer = bytes.slice().buffer;
  const fromBuffer = parseSafetensors(buffer).tensors;
  assertSameTensors(fromBuffer, tensors);
  assert.equal(fromBuffer.w.data.buffer, buffer);

  const copied = parseSafetensors(bytes, { copy: true }).tensors;
  assertSameTensors(copied, tensors);
  for (const t of Object.values(copied)) assert.notEqual(t.data.buffer, bytes.buffer);

  // A view shares memory with its input: the documented cost of zero-copy reading.
  const viewed = parseSafetensors(bytes).tensors;
  bytes.fill(0, bytes.length - 20);
  assert.deepEqual(Array.from(viewed.w.data), [0, 0, 0]);
  assert.deepEqual(Array.from(copied.w.data), [1, 2, 3]);
});

test('big-endian hosts: elements are byte-swapped on the way in and out', () => {
  const le = new Uint8Array(Float32Array.from([1.5, -2]).buffer); // this host is little-endian
  const swapped = le.slice();
  swapByteOrder(swapped, 4);
  assert.deepEqual(Array.from(swapped), [0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0]);
  // As a big-endian host would: the elements' host bytes are the reverse of the file's.
  const read = elementsFromBytes(le, 0, 8, 'float32', { littleEndianHost: false });
  assert.notEqual(read.buffer, le.buffer);
  assert.deepEqual(new Uint8Array(read.buffer), swapped);
  const out = new Uint8Array(10);
  writeElements(read, out, 1, false);
  assert.deepEqual(out.subarray(1, 9), le);
  // One-byte elements have no order.
  assert.deepEqual(
    elementsFromBytes(Uint8Array.from([1, 2]), 0, 2, 'int8', { littleEndianHost: false }),
    Int8Array.from([1, 2]),
  );
  assert.throws(() => swapByteOrder(new Uint8Array(3), 2), RangeError);
});

test('files: atomic write, read back by path, overwrite, and no temporary file left behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sparq-safetensors-'));
  try {
    const file = join(dir, 'model.safetensors');
    const first = { w: tensor([1, 2], [2], 'float32') };
    writeSafetensorsFile(file, first, { metadata: { step: '1' } });
    const read = readSafetensors(file);
    assertSameTensors(read.tensors, first);
    assert.deepEqual(read.metadata, { step: '1' });
    assert.deepEqual(
      new Uint8Array(readFileSync(file)),
      writeSafetensors(first, { metadata: { step: '1' } }),
    );

    const second = { w: tensor([3, 4, 5], [3], 'float64'), m: tensor([1], [1], 'bool') };
    writeSafetensorsFile(file, second);
    assertSameTensors(readSafetensors(file).tensors, second);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);

    // A write that fails (int4 has no safetensors type) leaves the old file as it was.
    assert.throws(() => writeSafetensorsFile(file, { q: tensor([1], [1], 'int4') }), DTypeError);
    assertSameTensors(readSafetensors(file).tensors, second);
    // A folder that does not exist: Node's error, and nothing left behind.
    assert.throws(() => writeSafetensorsFile(join(dir, 'missing', 'x.safetensors'), first), {
      code: 'ENOENT',
    });
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);

    // Bytes and ArrayBuffers go through readSafetensors as well.
    assertSameTensors(readSafetensors(readFileSync(file)).tensors, second);
    assertSameTensors(readSafetensors(new Uint8Array(readFileSync(file)).buffer).tensors, second);

    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Uint8Array.from([1, 2, 3]));
    assert.throws(
      () => readSafetensors(bad),
      (e: unknown) => e instanceof MalformedFileError && e.message.startsWith(`safetensors file ${bad}: `),
    );
    assert.throws(() => readSafetensors(join(dir, 'absent.safetensors')), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the writer refuses what safetensors cannot hold, saying what to do', () => {
  assert.throws(
    () => writeSafetensors({ q: tensor([1, -8], [2], 'int4') }),
    (e: unknown) =>
      e instanceof DTypeError && /tensor "q" has dtype int4/.test(e.message) && /int8/.test(e.message),
  );
  assert.throws(
    () => writeSafetensors({ c: tensor([0.5], [1], 'float4_e2m1fn') }),
    (e: unknown) => e instanceof DTypeError && /packNibbles/.test(e.message) && /float16/.test(e.message),
  );
  assert.throws(
    () => writeSafetensors({ m: new Tensor(Uint8Array.from([0, 2]), [2], 'bool') }),
    (e: unknown) => e instanceof DTypeError && /element 1 is 2/.test(e.message),
  );
  const one = tensor([1], [1], 'float32');
  assert.throws(() => writeSafetensors({ __metadata__: one }), /reserved/);
  assert.throws(() => writeSafetensors({ ['\uD800']: one }), UnsupportedOptionError);
  assert.throws(() => writeSafetensors({ x: one }, { metadata: { k: '\uDC00' } }), UnsupportedOptionError);
  assert.throws(
    () => writeSafetensors({ x: one }, { metadata: { k: 1 as unknown as string } }),
    UnsupportedOptionError,
  );
  assert.throws(() => writeSafetensors({ x: [1] as unknown as Tensor }), /must be a host Tensor/);
  assert.throws(() => writeSafetensors(null as unknown as Record<string, Tensor>), UnsupportedOptionError);
  assert.throws(() => parseSafetensors(writeSafetensors({}), { maxHeaderBytes: -1 }), UnsupportedOptionError);
  assert.throws(() => parseSafetensors([1, 2] as unknown as Uint8Array), UnsupportedOptionError);
});

test('findDuplicateKey: keys compared after unescaping, at any depth, never string values', () => {
  assert.deepEqual(findDuplicateKey('{"a":1,"a":2}'), { key: 'a', parent: undefined });
  assert.deepEqual(findDuplicateKey('{"a":1,"\\u0061":2}'), { key: 'a', parent: undefined });
  assert.deepEqual(findDuplicateKey('{"t":{"x":1,"y":[{"x":1}],"x":2}}'), { key: 'x', parent: 't' });
  assert.equal(findDuplicateKey('{"a":"a","b":["a","a"],"c":{"a":"a"}}'), undefined);
  assert.equal(findDuplicateKey('[{"a":1},{"a":1}]'), undefined);
  assert.equal(findDuplicateKey('{"q\\"}{[":1,"q\\"}{[ ":2}'), undefined);
  assert.deepEqual(findDuplicateKey('{"k" : 1 , "k"\n:2}'), { key: 'k', parent: undefined });
});

test('without Node file access (a browser), paths are refused and bytes still work', () => {
  const node = process as { getBuiltinModule?: unknown };
  const original = node.getBuiltinModule;
  node.getBuiltinModule = undefined;
  try {
    assert.throws(() => readSafetensors('model.safetensors'), /Node\.js 20\.16 or later/);
    assert.throws(() => writeSafetensorsFile('model.safetensors', {}), UnsupportedOptionError);
    assert.deepEqual(readSafetensors(writeSafetensors({}, { metadata: { k: 'v' } })).metadata, { k: 'v' });
  } finally {
    node.getBuiltinModule = original;
  }
});
