// A deterministic fuzz loop: thousands of mutations of a valid file, each of which must parse or fail
// with a MalformedFileError — never another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedFileError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { shapeSize, tensor } from '../../src/core/tensor.js';
import { parseSafetensors, writeSafetensors } from '../../src/io/safetensors.js';

const ITERATIONS = 4000;

const SEED_FILE = writeSafetensors(
  {
    'layer.0.weight': tensor([0.5, -1, 2, 3.25, 0, -0], [2, 3], 'float32'),
    'layer.0.bias': tensor([1, 2], [2], 'bfloat16'),
    scale: tensor([1.5], [], 'float64'),
    codes: tensor([1, 2, 3, 4, 5], [5], 'float8_e4m3fn'),
    e5: tensor([0.25], [1], 'float8_e5m2'),
    e8: tensor([4], [1], 'float8_e8m0fnu'),
    half: tensor([1, 2, 3], [3], 'float16'),
    ids: tensor([7, -7], [2], 'int32'),
    small: tensor([-3], [1], 'int8'),
    bytes: tensor([255, 0, 9], [3], 'uint8'),
    mask: tensor([1, 0, 1], [3], 'bool'),
    empty: tensor([], [0, 4], 'float32'),
  },
  { metadata: { format: 'pt', note: 'fuzz seed' } },
);

/** Header tokens a mutation may drop in: numbers at the edges, dtype names, structural strings. */
const NUMBERS = [
  '-1',
  '0',
  '1',
  '3',
  '8',
  '1.5',
  '1e400',
  '-0',
  '9007199254740992',
  '4294967296',
  '[]',
  'null',
];
const STRINGS = [
  '"F32"',
  '"BOOL"',
  '"I64"',
  '"toString"',
  '"__metadata__"',
  '"__proto__"',
  '"shape"',
  '"dtype"',
  '""',
];
const BYTES = [0x00, 0xff, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x2d, 0x30, 0x39, 0x5c, 0x80, 0xc3];

function below(rng: Rng, n: number): number {
  return Math.floor(rng.uniform() * n);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[below(rng, items.length)];
}

/** The file with its header text replaced, and its length field set to match (to reach deeper checks). */
function withHeader(bytes: Uint8Array, edit: (text: string) => string): Uint8Array {
  if (bytes.length < 8) return bytes;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + n > bytes.length) return bytes;
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const json = new TextEncoder().encode(edit(text));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

/** Replaces one random match of `pattern` in `text` by `replacement`. */
function replaceOne(rng: Rng, text: string, pattern: RegExp, replacement: string): string {
  const matches = [...text.matchAll(pattern)];
  if (matches.length === 0) return text;
  const m = pick(rng, matches);
  const at = m.index as number;
  return text.slice(0, at) + replacement + text.slice(at + m[0].length);
}

function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  let bytes = input;
  const len = bytes.length;
  switch (below(rng, 10)) {
    case 0: {
      bytes = bytes.slice();
      bytes[below(rng, len)] ^= 1 << below(rng, 8);
      return bytes;
    }
    case 1: {
      bytes = bytes.slice();
      bytes[below(rng, len)] = rng.uniform() < 0.5 ? pick(rng, BYTES) : below(rng, 256);
      return bytes;
    }
    case 2:
      return bytes.slice(0, below(rng, len + 1));
    case 3: {
      // Splice: a copy of one segment inserted somewhere else.
      const from = below(rng, len);
      const segment = bytes.slice(from, from + 1 + below(rng, 16));
      const at = below(rng, len + 1);
      return Uint8Array.from([...bytes.subarray(0, at), ...segment, ...bytes.subarray(at)]);
    }
    case 4: {
      const from = below(rng, len);
      return Uint8Array.from([...bytes.subarray(0, from), ...bytes.subarray(from + 1 + below(rng, 16))]);
    }
    case 5: {
      // The length field: small steps around the truth, or any 64-bit value.
      bytes = bytes.slice();
      const view = new DataView(bytes.buffer);
      if (len < 8) return bytes;
      const n = view.getBigUint64(0, true);
      const next =
        rng.uniform() < 0.5
          ? n + BigInt(below(rng, 17) - 8)
          : (BigInt(rng.nextUint32()) << 32n) | BigInt(rng.nextUint32());
      view.setBigUint64(0, BigInt.asUintN(64, next), true);
      return bytes;
    }
    case 6:
      return withHeader(bytes, (t) => replaceOne(rng, t, /-?\d+(\.\d+)?/g, pick(rng, NUMBERS)));
    case 7:
      return withHeader(bytes, (t) =>
        replaceOne(rng, t, /"[^"]*"/g, pick(rng, [...STRINGS, ...NUMBERS, '{}'])),
      );
    case 8:
      // Give one tensor the data offsets of another (or of itself), possibly reversed.
      return withHeader(bytes, (t) => {
        const pairs = [...t.matchAll(/\[(\d+),(\d+)\]/g)];
        if (pairs.length === 0) return t;
        const [a, b] = [pick(rng, pairs), pick(rng, pairs)];
        return t.replace(a[0], rng.uniform() < 0.5 ? b[0] : `[${b[2]},${b[1]}]`);
      });
    default: {
      // Delete or duplicate one header character.
      return withHeader(bytes, (t) => {
        const at = below(rng, t.length);
        return rng.uniform() < 0.5 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + t[at] + t.slice(at);
      });
    }
  }
}

test(`fuzz: ${ITERATIONS} mutated files each parse or throw MalformedFileError`, () => {
  assert.equal(Object.keys(parseSafetensors(SEED_FILE).tensors).length, 12);
  const rng = Rng.fromSeed(20260527);
  const outcomes = { parsed: 0, malformed: 0 };
  const messages = new Set<string>();
  for (let i = 0; i < ITERATIONS; i++) {
    let bytes = SEED_FILE;
    const rounds = 1 + below(rng, 3);
    for (let r = 0; r < rounds; r++) bytes = mutate(rng, bytes);
    try {
      const { tensors, metadata } = parseSafetensors(bytes, { copy: i % 2 === 0 });
      for (const t of Object.values(tensors)) assert.equal(t.data.length, shapeSize(t.shape));
      for (const v of Object.values(metadata)) assert.equal(typeof v, 'string');
      outcomes.parsed++;
    } catch (e) {
      if (!(e instanceof MalformedFileError)) {
        const hex = Buffer.from(bytes).toString('hex');
        assert.fail(`iteration ${i}: ${String(e)}\n${(e as Error).stack}\nfile: ${hex}`);
      }
      outcomes.malformed++;
      messages.add(
        e.message
          .replace(/"[^"]*"/g, 'S')
          .replace(/\d+/g, 'N')
          .slice(0, 60),
      );
    }
  }
  // Both outcomes occur, and the mutations reach most checks (messages with names and numbers blanked).
  assert.ok(outcomes.parsed > ITERATIONS / 40, JSON.stringify(outcomes));
  assert.ok(outcomes.malformed > ITERATIONS / 2, JSON.stringify(outcomes));
  assert.ok(messages.size >= 40, [...messages].sort().join('\n'));
});
