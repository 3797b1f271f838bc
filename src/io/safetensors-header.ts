/**
 * The safetensors header: an 8-byte little-endian length N, then N bytes of UTF-8 JSON that map each
 * tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets into the data buffer that follows
 * the header) and may hold "__metadata__", an object of strings. The checks are the reference crate's
 * (safetensors/src/tensor.rs: `read_metadata`, `Metadata::validate`) — including that the tensors tile
 * the data buffer exactly, with no gap, overlap or trailing byte — plus duplicate keys, which serde and
 * JSON.parse both let through. Every failure is a MalformedFileError that names the tensor, what was
 * expected and what was found; nothing here allocates more than the header's own size.
 */
import { bytesPerElement, type DType } from '../core/dtype.js';
import { MalformedFileError } from '../core/errors.js';
import { findDuplicateKey } from './json-keys.js';
import {
  SAFETENSORS_DTYPES,
  dtypeFromSafetensors,
  isUnsupportedSafetensorsDType,
} from './safetensors-dtypes.js';

/** The reference crate's MAX_HEADER_SIZE: a longer header is taken for a corrupt length field. */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

/** Bytes of the little-endian header length that opens every file. */
export const LENGTH_FIELD_BYTES = 8;

/** The header key that holds the string-to-string metadata instead of a tensor. */
export const METADATA_KEY = '__metadata__';

/** One tensor as the header describes it; `begin` and `end` are offsets into the data buffer. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** The tensors in the order of their data. */
  readonly tensors: TensorEntry[];
  readonly metadata: Record<string, string>;
  /** Offset of the data buffer in the file: 8 + the header length. */
  readonly dataStart: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads and validates the header of the safetensors file in `bytes`; `label` opens every error message. */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  maxHeaderBytes: number,
  label = 'safetensors',
): SafetensorsHeader {
  const fail: Fail = (message) => {
    throw new MalformedFileError(`${label}: ${message}`);
  };
  if (bytes.length < LENGTH_FIELD_BYTES) {
    fail(`a file opens with an 8-byte header length; got a file of ${bytes.length} byte(s)`);
  }
  const declared = new DataView(bytes.buffer, bytes.byteOffset, LENGTH_FIELD_BYTES).getBigUint64(0, true);
  if (declared > BigInt(maxHeaderBytes)) {
    fail(
      `the header length field says ${declared} bytes, more than the limit of ${maxHeaderBytes} ` +
        `(maxHeaderBytes): the file is corrupt or not safetensors; raise maxHeaderBytes if it is genuine`,
    );
  }
  const headerLength = Number(declared);
  const dataStart = LENGTH_FIELD_BYTES + headerLength;
  if (dataStart > bytes.length) {
    fail(
      `the header length field says ${headerLength} bytes, but only ${bytes.length - LENGTH_FIELD_BYTES} ` +
        `follow it: the file is truncated or its length field is corrupt`,
    );
  }

  let headerBytes = bytes.subarray(LENGTH_FIELD_BYTES, dataStart);
  // Browsers' TextDecoder refuses views of shared memory.
  if (typeof SharedArrayBuffer !== 'undefined' && headerBytes.buffer instanceof SharedArrayBuffer) {
    headerBytes = headerBytes.slice();
  }
  let text = '';
  try {
    text = utf8.decode(headerBytes);
  } catch {
    fail(`the header (bytes ${LENGTH_FIELD_BYTES} to ${dataStart}) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(header)) {
    fail(`the header must be a JSON object of tensor entries; got ${showJson(header)}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    fail(
      duplicate.parent === undefined
        ? `the header names ${quote(duplicate.key)} twice; each tensor name must be unique`
        : `the header entry ${quote(duplicate.parent)} has the key ${quote(duplicate.key)} twice`,
    );
  }

  const dataLength = bytes.length - dataStart;
  const tensors: TensorEntry[] = [];
  for (const name of Object.keys(header)) {
    if (name !== METADATA_KEY) tensors.push(readEntry(name, header[name], dataLength, fail));
  }
  checkTiling(tensors, dataLength, fail);
  return { tensors, metadata: readMetadata(header[METADATA_KEY], fail), dataStart };
}

type Fail = (message: string) => never;

function readEntry(name: string, value: unknown, dataLength: number, fail: Fail): TensorEntry {
  const where = `tensor ${quote(name)}`;
  if (!isJsonObject(value)) {
    fail(`${where}: expected an object {"dtype", "shape", "data_offsets"}; got ${showJson(value)}`);
  }
  const field = (key: string, expected: string): unknown => {
    if (!Object.hasOwn(value, key)) fail(`${where} has no "${key}" field; expected ${expected}`);
    return value[key];
  };

  const dtypeName = field('dtype', `one of ${SAFETENSORS_DTYPES.join(', ')}`);
  if (typeof dtypeName !== 'string') {
    fail(
      `${where}: "dtype" must be a string, one of ${SAFETENSORS_DTYPES.join(', ')}; got ${showJson(dtypeName)}`,
    );
  }
  const dtype = dtypeFromSafetensors(dtypeName);
  if (dtype === undefined) {
    const kind = isUnsupportedSafetensorsDType(dtypeName)
      ? 'a safetensors dtype that sparq has no type for'
      : 'not a safetensors dtype';
    fail(`${where}: dtype ${quote(dtypeName)} is ${kind}; expected one of ${SAFETENSORS_DTYPES.join(', ')}`);
  }

  const shape = field('shape', 'an array of non-negative integers');
  if (!Array.isArray(shape)) {
    fail(`${where}: "shape" must be an array of non-negative integers; got ${showJson(shape)}`);
  }
  shape.forEach((d: unknown, i) => {
    if (!isSize(d)) {
      fail(`${where}: "shape" must hold non-negative integers below 2^53; element ${i} is ${showJson(d)}`);
    }
  });

  const offsets = field('data_offsets', 'a pair [begin, end]');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isSize(offsets[0]) || !isSize(offsets[1])) {
    fail(
      `${where}: "data_offsets" must be a pair [begin, end] of non-negative integers below 2^53; ` +
        `got ${showJson(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] begin after they end`);
  if (end > dataLength) {
    fail(
      `${where}: data_offsets [${begin}, ${end}] run past the end of the data buffer, ` +
        `which holds ${dataLength} bytes`,
    );
  }

  const needed = elementCount(shape) * bytesPerElement(dtype);
  if (needed !== end - begin) {
    const neededText = Number.isSafeInteger(needed) ? `${needed} bytes` : 'more than 2^53 bytes';
    fail(
      `${where}: shape ${showJson(shape)} of ${dtypeName} needs ${neededText}; ` +
        `data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** The tensors, sorted by offset, must cover [0, dataLength) exactly once, as the reference requires. */
function checkTiling(tensors: TensorEntry[], dataLength: number, fail: Fail): void {
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let previous: TensorEntry | undefined;
  let covered = 0;
  for (const t of tensors) {
    if (previous && t.begin < covered) {
      fail(
        `tensor ${quote(t.name)} at data_offsets [${t.begin}, ${t.end}] overlaps tensor ` +
          `${quote(previous.name)} at [${previous.begin}, ${previous.end}]; tensors must not share bytes`,
      );
    }
    if (t.begin > covered) {
      fail(
        `bytes ${covered} to ${t.begin} of the data buffer, before tensor ${quote(t.name)}, belong to no ` +
          `tensor; the tensors must follow one another without gaps`,
      );
    }
    covered = t.end;
    previous = t;
  }
  if (covered !== dataLength) {
    fail(
      `the data buffer holds ${dataLength} bytes but the tensors end at byte ${covered}; ` +
        `the last ${dataLength - covered} byte(s) belong to no tensor`,
    );
  }
}

function readMetadata(value: unknown, fail: Fail): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (value === undefined || value === null) return metadata;
  if (!isJsonObject(value)) fail(`"${METADATA_KEY}" must be an object of strings; got ${showJson(value)}`);
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (typeof v !== 'string') {
      fail(`"${METADATA_KEY}" entry ${quote(key)} must be a string; got ${showJson(v)}`);
    }
    defineEntry(metadata, key, v);
  }
  return metadata;
}

/** Sets `record[key]` as an own property, so that a key such as "__proto__" is stored, not obeyed. */
export function defineEntry<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

function isJsonObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isSize(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

/** Product of the dimensions, exact below 2^53 (a zero dimension makes it 0 whatever the others are). */
function elementCount(shape: number[]): number {
  if (shape.includes(0)) return 0;
  return shape.reduce((n, d) => n * d, 1);
}

/** A JSON string for a message, cut short: a header string may be megabytes long. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/** A bounded description of a parsed JSON value for an error message. */
function showJson(x: unknown): string {
  if (typeof x === 'string') return `the string ${quote(x)}`;
  if (Array.isArray(x)) {
    const count = `${x.length} element${x.length === 1 ? '' : 's'}`;
    if (!x.every((e) => e === null || typeof e !== 'object')) return `an array of ${count}`;
    const shown = x.slice(0, 8).map((e) => (typeof e === 'string' ? quote(e) : String(e)));
    return `[${shown.join(', ')}${x.length > 8 ? `, … (${count})` : ''}]`;
  }
  if (isJsonObject(x)) return 'an object';
  return String(x);
}
