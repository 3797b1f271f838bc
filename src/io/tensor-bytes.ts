/**
 * Tensor elements to and from little-endian bytes, the storage order of safetensors (and of every
 * mainstream host, where both directions are plain copies or views).
 */
import { type DType, type TypedArray, storageOf } from '../core/dtype.js';
import { LITTLE_ENDIAN_HOST, swapByteOrder } from './byte-order.js';

export interface ElementsFromBytesOptions {
  /** Always copy, even where a view would do. Default false. */
  copy?: boolean;
  /** Byte order of this host; a parameter so tests can take the big-endian path. */
  littleEndianHost?: boolean;
}

/**
 * The elements of `dtype` held little-endian in `bytes[start, start + byteLength)`. Without `copy`, on
 * a little-endian host, and where the data's address in `bytes.buffer` is a multiple of the element
 * size, the result is a view of that buffer (no copy: it shares memory with `bytes`). Otherwise — an
 * unaligned offset, a big-endian host, or `copy` — it is a fresh, aligned copy.
 */
export function elementsFromBytes(
  bytes: Uint8Array,
  start: number,
  byteLength: number,
  dtype: DType,
  opts: ElementsFromBytesOptions = {},
): TypedArray {
  const Storage = storageOf(dtype);
  const size = Storage.BYTES_PER_ELEMENT;
  const length = byteLength / size;
  const littleEndianHost = opts.littleEndianHost ?? LITTLE_ENDIAN_HOST;
  const address = bytes.byteOffset + start;
  if (!opts.copy && littleEndianHost && address % size === 0) {
    // Shared buffers work too; the union of constructors is only typed for ArrayBuffer.
    return new Storage(bytes.buffer as ArrayBuffer, address, length);
  }
  const out = new Storage(length);
  const outBytes = new Uint8Array(out.buffer);
  outBytes.set(bytes.subarray(start, start + byteLength));
  if (!littleEndianHost) swapByteOrder(outBytes, size);
  return out;
}

/** Writes `data`'s elements little-endian into `out` from byte `offset` on. */
export function writeElements(
  data: TypedArray,
  out: Uint8Array,
  offset: number,
  littleEndianHost = LITTLE_ENDIAN_HOST,
): void {
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
  if (!littleEndianHost)
    swapByteOrder(out.subarray(offset, offset + data.byteLength), data.BYTES_PER_ELEMENT);
}
