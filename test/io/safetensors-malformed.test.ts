// One hand-made bad file per way a safetensors file can be malformed: each is a MalformedFileError
// whose message says what was expected, what was found, and which tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedFileError } from '../../src/core/errors.js';
import { parseSafetensors, type ReadSafetensorsOptions } from '../../src/io/safetensors.js';

/** A file: 8-byte length (the header's own unless `length` is given), header bytes, data bytes. */
function file(header: string | Uint8Array, data: number[] = [], length?: bigint): Uint8Array {
  const json = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** A one-tensor header: the entry for "w" is given as JSON text. */
function one(entry: string): string {
  return `{"w":${entry}}`;
}

function assertMalformed(bytes: Uint8Array, patterns: RegExp[], opts?: ReadSafetensorsOptions): void {
  assert.throws(
    () => parseSafetensors(bytes, opts),
    (e: unknown) => {
      assert.ok(e instanceof MalformedFileError, `expected a MalformedFileError, got ${String(e)}`);
      assert.equal(e.code, 'E_MALFORMED_FILE');
      assert.ok(e.message.startsWith('safetensors: '), e.message);
      for (const p of patterns) assert.match(e.message, p);
      return true;
    },
  );
}

const zeros = (n: number): number[] => new Array<number>(n).fill(0);

test('a file shorter than the 8-byte length field', () => {
  assertMalformed(new Uint8Array(0), [/8-byte header length/, /got a file of 0 byte/]);
  assertMalformed(new Uint8Array(7), [/got a file of 7 byte/]);
});

test('a header length that runs past the end of the file', () => {
  assertMalformed(file('{}', [], 100n), [/says 100 bytes, but only 2 follow it/, /truncated/]);
  // A valid file cut short inside its header.
  assertMalformed(file('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [5]).subarray(0, 30), [
    /says 53 bytes, but only 22 follow/,
  ]);
});

test('an absurd header length is refused before anything is allocated', () => {
  assertMalformed(file('{}', [], 1n << 40n), [
    /says 1099511627776 bytes/,
    /limit of 100000000/,
    /maxHeaderBytes/,
  ]);
  assertMalformed(file('{}', [], 0xffffffffffffffffn), [/says 18446744073709551615 bytes/]);
  assertMalformed(file('{}', [], 100_000_001n), [/100000001/]);
  // The limit is an option, and a header of exactly the limit passes.
  const header = '{"__metadata__":{"k":"v"}}';
  assertMalformed(file(header), [/limit of 25 /], { maxHeaderBytes: header.length - 1 });
  assert.deepEqual(parseSafetensors(file(header), { maxHeaderBytes: header.length }).metadata, { k: 'v' });
});

test('a header that is not UTF-8, or not JSON', () => {
  assertMalformed(file(Uint8Array.from([0x7b, 0xff, 0x7d])), [/not valid UTF-8/, /bytes 8 to 11/]);
  assertMalformed(file(Uint8Array.from([0x7b, 0xed, 0xa0, 0x80, 0x7d])), [/not valid UTF-8/]); // a surrogate
  assertMalformed(file('{"w":'), [/not valid JSON/]);
  assertMalformed(file(''), [/not valid JSON/]);
  assertMalformed(file('\uFEFF{}'), [/not valid JSON/]); // a byte-order mark is not JSON whitespace
  assertMalformed(file('{} {}'), [/not valid JSON/]);
});

test('a header that is not a JSON object', () => {
  assertMalformed(file('[]'), [/must be a JSON object/, /got \[\]/]);
  assertMalformed(file('null'), [/got null/]);
  assertMalformed(file('"w"'), [/got the string "w"/]);
  assertMalformed(file('42  '), [/got 42/]);
});

test('a tensor entry that is not an object, or lacks a field', () => {
  assertMalformed(file(one('[1, 2]')), [/tensor "w": expected an object/, /got \[1, 2\]/]);
  assertMalformed(file(one('"F32"')), [/tensor "w": expected an object/, /the string "F32"/]);
  assertMalformed(file(one('{"shape":[],"data_offsets":[0,1]}'), [0]), [
    /tensor "w" has no "dtype" field/,
    /expected one of BOOL, U8, I8/,
  ]);
  assertMalformed(file(one('{"dtype":"U8","data_offsets":[0,1]}'), [0]), [
    /tensor "w" has no "shape" field/,
    /non-negative integers/,
  ]);
  assertMalformed(file(one('{"dtype":"U8","shape":[1]}'), [0]), [
    /tensor "w" has no "data_offsets" field/,
    /\[begin, end\]/,
  ]);
});

test('fields of the wrong type', () => {
  assertMalformed(file(one('{"dtype":5,"shape":[1],"data_offsets":[0,1]}'), [0]), [
    /tensor "w": "dtype" must be a string/,
    /got 5/,
  ]);
  assertMalformed(file(one('{"dtype":"U8","shape":"1","data_offsets":[0,1]}'), [0]), [
    /tensor "w": "shape" must be an array/,
    /got the string "1"/,
  ]);
  assertMalformed(file(one('{"dtype":"U8","shape":{},"data_offsets":[0,1]}'), [0]), [/got an object/]);
  for (const offsets of ['{}', '[0]', '[0,1,1]', '"0,1"', '[[0],[1]]', '[null,1]']) {
    assertMalformed(file(one(`{"dtype":"U8","shape":[1],"data_offsets":${offsets}}`), [0]), [
      /tensor "w": "data_offsets" must be a pair \[begin, end\]/,
    ]);
  }
});

test('negative, fractional and unsafe shapes', () => {
  const entry = (shape: string): Uint8Array =>
    file(one(`{"dtype":"U8","shape":${shape},"data_offsets":[0,0]}`));
  assertMalformed(entry('[2,-1]'), [
    /tensor "w": "shape" must hold non-negative integers/,
    /element 1 is -1/,
  ]);
  assertMalformed(entry('[1.5]'), [/element 0 is 1.5/]);
  assertMalformed(entry('[9007199254740992]'), [/below 2\^53/, /element 0 is 9007199254740992/]);
  assertMalformed(entry('[1e400]'), [/element 0 is Infinity/]);
  assertMalformed(entry('["2"]'), [/element 0 is the string "2"/]);
  assertMalformed(entry('[[2]]'), [/element 0 is \[2\]/]);
});

test('negative, fractional and unsafe data offsets', () => {
  const entry = (offsets: string): Uint8Array =>
    file(one(`{"dtype":"U8","shape":[0],"data_offsets":${offsets}}`));
  assertMalformed(entry('[-4,0]'), [/"data_offsets" must be a pair/, /got \[-4, 0\]/]);
  assertMalformed(entry('[0.5,4]'), [/got \[0.5, 4\]/]);
  assertMalformed(entry('[0,9007199254740993]'), [/below 2\^53/]);
});

test('data offsets out of range, or beginning after they end', () => {
  assertMalformed(file(one('{"dtype":"U8","shape":[100],"data_offsets":[0,100]}'), zeros(8)), [
    /tensor "w": data_offsets \[0, 100\] run past the end of the data buffer, which holds 8 bytes/,
  ]);
  assertMalformed(file(one('{"dtype":"U8","shape":[0],"data_offsets":[8,4]}'), zeros(8)), [
    /tensor "w": data_offsets \[8, 4\] begin after they end/,
  ]);
});

test('overlapping tensors, gaps, and bytes after the last tensor', () => {
  const two = (a: string, b: string, n: number): Uint8Array =>
    file(
      `{"a":{"dtype":"F32","shape":[2],"data_offsets":${a}},"b":{"dtype":"F32","shape":[2],"data_offsets":${b}}}`,
      zeros(n),
    );
  assertMalformed(two('[0,8]', '[4,12]', 12), [
    /tensor "b" at data_offsets \[4, 12\] overlaps tensor "a" at \[0, 8\]/,
  ]);
  assertMalformed(two('[0,8]', '[0,8]', 8), [/overlaps/]);
  assertMalformed(two('[0,8]', '[12,20]', 20), [
    /bytes 8 to 12 of the data buffer, before tensor "b", belong to no tensor/,
  ]);
  assertMalformed(two('[4,12]', '[12,20]', 20), [/bytes 0 to 4 .* before tensor "a"/]);
  assertMalformed(two('[0,8]', '[8,16]', 19), [
    /holds 19 bytes but the tensors end at byte 16/,
    /last 3 byte/,
  ]);
  assertMalformed(file('{}', [1]), [/holds 1 bytes but the tensors end at byte 0/]);
  // An empty tensor inside another one's bytes.
  assertMalformed(
    file(
      '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"e":{"dtype":"F64","shape":[0],"data_offsets":[2,2]}}',
      zeros(4),
    ),
    [/tensor "e" .* overlaps tensor "a"/],
  );
});

test('a byte size that does not match shape and dtype', () => {
  assertMalformed(file(one('{"dtype":"F32","shape":[3],"data_offsets":[0,8]}'), zeros(8)), [
    /tensor "w": shape \[3\] of F32 needs 12 bytes; data_offsets \[0, 8\] hold 8/,
  ]);
  assertMalformed(file(one('{"dtype":"BF16","shape":[],"data_offsets":[0,1]}'), zeros(1)), [
    /shape \[\] of BF16 needs 2 bytes/,
  ]);
  // A product beyond 2^53 is reported as such, not as a rounded number.
  assertMalformed(file(one('{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}')), [
    /needs more than 2\^53 bytes/,
  ]);
  // Many dimensions are abbreviated in the message.
  const shape = `[${new Array(20).fill(2).join(',')}]`;
  assertMalformed(file(one(`{"dtype":"U8","shape":${shape},"data_offsets":[0,0]}`)), [
    /shape \[2, 2, 2, 2, 2, 2, 2, 2, … \(20 elements\)\] of U8 needs 1048576 bytes/,
  ]);
});

test('unknown and unsupported dtypes name the dtype and the supported list', () => {
  const entry = (dtype: string): Uint8Array =>
    file(one(`{"dtype":${JSON.stringify(dtype)},"shape":[1],"data_offsets":[0,8]}`), zeros(8));
  const list = /expected one of BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F16, BF16, I32, F32, F64$/;
  assertMalformed(entry('F128'), [/tensor "w": dtype "F128" is not a safetensors dtype/, list]);
  assertMalformed(entry('I64'), [/dtype "I64" is a safetensors dtype that sparq has no type for/, list]);
  assertMalformed(entry('f32'), [/"f32" is not a safetensors dtype/]);
  // Prototype members are not dtypes.
  assertMalformed(entry('toString'), [/"toString" is not a safetensors dtype/]);
  assertMalformed(entry('__proto__'), [/"__proto__" is not a safetensors dtype/]);
});

test('duplicate names and keys, which JSON.parse would silently merge', () => {
  const w = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}';
  assertMalformed(file(`{"w":${w},"w":${w}}`, [0]), [/names "w" twice/, /unique/]);
  assertMalformed(file(`{"w":${w},"\\u0077":${w}}`, [0]), [/names "w" twice/]);
  assertMalformed(file(one('{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}'), [0]), [
    /entry "w" has the key "dtype" twice/,
  ]);
  assertMalformed(file('{"__metadata__":{"k":"1","k":"2"}}'), [/entry "__metadata__" has the key "k" twice/]);
  assertMalformed(file('{"__metadata__":{},"__metadata__":{}}'), [/names "__metadata__" twice/]);
});

test('metadata that is not an object of strings', () => {
  assertMalformed(file('{"__metadata__":{"epoch":1}}'), [
    /"__metadata__" entry "epoch" must be a string; got 1/,
  ]);
  assertMalformed(file('{"__metadata__":{"a":null}}'), [/entry "a" must be a string; got null/]);
  assertMalformed(file('{"__metadata__":{"a":["x"]}}'), [/got \["x"\]/]);
  assertMalformed(file('{"__metadata__":[]}'), [/"__metadata__" must be an object of strings; got \[\]/]);
  assertMalformed(file('{"__metadata__":"v"}'), [/got the string "v"/]);
});

test('bool elements other than 0 and 1', () => {
  assertMalformed(file(one('{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}'), [1, 0, 2]), [
    /tensor "w" is BOOL, whose bytes are 0 or 1; element 2 is 2/,
  ]);
});

test('messages stay short whatever the file holds', () => {
  const longName = 'n'.repeat(100_000);
  const bytes = file(
    `{${JSON.stringify(longName)}:{"dtype":"${'X'.repeat(100_000)}","shape":[1],"data_offsets":[0,1]}}`,
    [0],
  );
  assert.throws(
    () => parseSafetensors(bytes),
    (e: unknown) => e instanceof MalformedFileError && e.message.length < 400 && /"n{64}…"/.test(e.message),
  );
  // A deeply nested value is described, not printed.
  const nested = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
  assertMalformed(file(one(`{"dtype":"U8","shape":[${nested}],"data_offsets":[0,0]}`)), [
    /element 0 is an array of 1 element$/,
  ]);
});
