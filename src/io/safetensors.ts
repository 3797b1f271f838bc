/**
 * safetensors in memory: bytes to tensors and back. Browser-safe (no Node modules); file paths are
 * handled by safetensors-file.ts.
 *
 * Reading never trusts the file: every malformed header is a MalformedFileError naming the tensor,
 * and nothing is allocated beyond the header (bounded by `maxHeaderBytes`) and tensor copies (bounded
 * by the input's size). Writing follows the reference writer (safetensors/src/tensor.rs `prepare`):
 * the same tensors give the same bytes as it does, except that it orders metadata keys by a hash
 * and this writer sorts them.
 */
import { type DType, type TypedArray } from '../core/dtype.js';
import { DTypeError, MalformedFileError, UnsupportedOptionError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { type SafetensorsDType, layoutRank, safetensorsDType } from './safetensors-dtypes.js';
import {
  DEFAULT_MAX_HEADER_BYTES,
  LENGTH_FIELD_BYTES,
  METADATA_KEY,
  defineEntry,
  parseSafetensorsHeader,
  quote,
} from './safetensors-header.js';
import { elementsFromBytes, writeElements } from './tensor-bytes.js';

/** What a safetensors file holds. */
export interface SafetensorsContents {
  /** Tensors by name, added in the order of their data in the file (JS lists integer-like names first). */
  tensors: Record<string, Tensor>;
  /** The header's "__metadata__" (empty when the file has none). */
  metadata: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /**
   * Largest header accepted, in bytes. Default 100,000,000, the reference reader's MAX_HEADER_SIZE: a
   * length field beyond it is taken for corruption rather than allocated.
   */
  maxHeaderBytes?: number;
  /**
   * Copy every tensor's data. Default false: a tensor whose data is aligned to its element size is a
   * view of the input's buffer (zero-copy; it changes if the input bytes change). Unaligned data, and
   * all data on a big-endian host, is always copied.
   */
  copy?: boolean;
}

export interface WriteSafetensorsOptions {
  /** String-to-string metadata, written as the header's "__metadata__" when it has any entry. */
  metadata?: Record<string, string>;
}

/**
 * Parses a safetensors file held in memory. Throws MalformedFileError for anything that does not follow
 * the format: see safetensors-header.ts for the checks, plus bool elements other than 0 and 1.
 */
export function parseSafetensors(
  bytes: Uint8Array | ArrayBuffer,
  opts: ReadSafetensorsOptions = {},
): SafetensorsContents {
  return parseLabelled(bytes, opts, 'safetensors');
}

/** parseSafetensors with `label` (such as the file's path) opening every error message. */
export function parseLabelled(
  bytes: Uint8Array | ArrayBuffer,
  opts: ReadSafetensorsOptions,
  label: string,
): SafetensorsContents {
  const input = asBytes(bytes);
  const maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 0) {
    throw new UnsupportedOptionError(
      `maxHeaderBytes must be a non-negative integer; got ${String(opts.maxHeaderBytes)}`,
    );
  }
  const header = parseSafetensorsHeader(input, maxHeaderBytes, label);
  const tensors: Record<string, Tensor> = {};
  for (const entry of header.tensors) {
    const data = elementsFromBytes(
      input,
      header.dataStart + entry.begin,
      entry.end - entry.begin,
      entry.dtype,
      {
        copy: opts.copy,
      },
    );
    if (entry.dtype === 'bool') {
      const bad = data.findIndex((b) => b > 1);
      if (bad >= 0) {
        throw new MalformedFileError(
          `${label}: tensor ${quote(entry.name)} is BOOL, whose bytes are 0 or 1; ` +
            `element ${bad} is ${data[bad]}`,
        );
      }
    }
    defineEntry(tensors, entry.name, new Tensor(data, entry.shape, entry.dtype));
  }
  return { tensors, metadata: header.metadata };
}

function asBytes(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new UnsupportedOptionError(
    `safetensors bytes must be a Uint8Array or an ArrayBuffer; got ${Object.prototype.toString.call(bytes)}`,
  );
}

interface Placed {
  readonly name: string;
  readonly data: TypedArray;
  readonly shape: readonly number[];
  readonly dtypeName: SafetensorsDType;
  begin: number;
}

/**
 * A safetensors file holding `tensors` (and `opts.metadata`), laid out as the reference writer does:
 * the header is compact JSON — "__metadata__" first, with its keys sorted, then the tensors in data
 * order — padded with spaces to a multiple of 8 bytes; the data follow in descending dtype width
 * (the reference's dtype order), then by name in code-point order, so every tensor is aligned to its
 * element size. float4_e2m1fn and int4 have no safetensors type (DTypeError, saying what to store
 * instead), and bool elements must be 0 or 1 (DTypeError). Names and metadata must be well-formed
 * Unicode, and no tensor may be called "__metadata__" (UnsupportedOptionError).
 */
export function writeSafetensors(
  tensors: Record<string, Tensor>,
  opts: WriteSafetensorsOptions = {},
): Uint8Array {
  if (typeof tensors !== 'object' || tensors === null) {
    throw new UnsupportedOptionError(`tensors must be an object of Tensors by name; got ${String(tensors)}`);
  }
  const parts: string[] = [];
  const metadata = opts.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null) {
    throw new UnsupportedOptionError(`metadata must be an object of strings; got ${String(metadata)}`);
  }
  const metadataKeys = Object.keys(metadata).sort(compareCodePoints);
  for (const key of metadataKeys) {
    const value = metadata[key] as unknown;
    if (typeof value !== 'string') {
      throw new UnsupportedOptionError(
        `metadata ${JSON.stringify(key)} must be a string; got ${typeof value}`,
      );
    }
    checkWellFormed(key, `metadata key ${JSON.stringify(key)}`);
    checkWellFormed(value, `metadata ${JSON.stringify(key)}`);
  }
  if (metadataKeys.length > 0) {
    const entries = metadataKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    parts.push(`"${METADATA_KEY}":{${entries.join(',')}}`);
  }

  const placed: Placed[] = Object.keys(tensors).map((name) => {
    const where = `tensor ${JSON.stringify(name)}`;
    const t = tensors[name] as unknown;
    if (!(t instanceof Tensor)) {
      throw new UnsupportedOptionError(
        `${where} must be a host Tensor (download GPU tensors first); got ${typeof t}`,
      );
    }
    if (name === METADATA_KEY) {
      throw new UnsupportedOptionError(`"${METADATA_KEY}" is reserved for metadata; rename the tensor`);
    }
    checkWellFormed(name, where);
    checkBool(t.data, t.dtype, where);
    return { name, data: t.data, shape: t.shape, dtypeName: safetensorsDType(t.dtype, where), begin: 0 };
  });
  placed.sort(
    (a, b) => layoutRank(b.dtypeName) - layoutRank(a.dtypeName) || compareCodePoints(a.name, b.name),
  );
  let dataLength = 0;
  for (const p of placed) {
    p.begin = dataLength;
    dataLength += p.data.byteLength;
    parts.push(
      `${JSON.stringify(p.name)}:{"dtype":"${p.dtypeName}","shape":[${p.shape.join(',')}],` +
        `"data_offsets":[${p.begin},${dataLength}]}`,
    );
  }

  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > DEFAULT_MAX_HEADER_BYTES) {
    throw new UnsupportedOptionError(
      `the header would take ${headerLength} bytes; readers refuse more than ${DEFAULT_MAX_HEADER_BYTES}. ` +
        `Split the tensors over several files or shorten the metadata`,
    );
  }
  const dataStart = LENGTH_FIELD_BYTES + headerLength;
  const out = new Uint8Array(dataStart + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, LENGTH_FIELD_BYTES);
  out.fill(0x20, LENGTH_FIELD_BYTES + json.length, dataStart);
  for (const p of placed) writeElements(p.data, out, dataStart + p.begin);
  return out;
}

/** JSON.stringify escapes a lone surrogate as \udXXX, which the reference reader rejects. */
function checkWellFormed(s: string, where: string): void {
  if (/[\uD800-\uDFFF]/u.test(s)) {
    throw new UnsupportedOptionError(
      `${where} holds a lone UTF-16 surrogate; it must be well-formed Unicode`,
    );
  }
}

/** Readers reject bool bytes other than 0 and 1, so they are never written. */
function checkBool(data: TypedArray, dtype: DType, where: string): void {
  if (dtype !== 'bool') return;
  const bad = data.findIndex((b) => b > 1);
  if (bad >= 0) throw new DTypeError(`${where} is bool, which holds 0 or 1; element ${bad} is ${data[bad]}`);
}

/** Code-point order, which is the UTF-8 byte order the reference writer sorts names by. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a.charCodeAt(i) !== b.charCodeAt(i))
      return (a.codePointAt(i) as number) - (b.codePointAt(i) as number);
  }
  return a.length - b.length;
}
