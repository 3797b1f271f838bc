/**
 * Byte order. safetensors stores every element little-endian; typed arrays use the host's order, which
 * is little-endian on x86 and ARM but big-endian on s390x (a platform Node ships for). Imports nothing.
 */

/** True when the host stores multi-byte numbers least significant byte first. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the bytes of each `elementSize`-byte element in place (a no-op for 1-byte elements). */
export function swapByteOrder(bytes: Uint8Array, elementSize: number): void {
  if (bytes.length % elementSize !== 0) {
    throw new RangeError(`swapByteOrder: ${bytes.length} bytes are not whole ${elementSize}-byte elements`);
  }
  for (let start = 0; start < bytes.length; start += elementSize) {
    for (let i = start, j = start + elementSize - 1; i < j; i++, j--) {
      const b = bytes[i];
      bytes[i] = bytes[j];
      bytes[j] = b;
    }
  }
}
