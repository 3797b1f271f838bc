/**
 * Seeded, splittable, counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011). Counter-based means the i-th block of bits depends only on
 * (key, i), so a GPU kernel or a chunked CPU loop can reproduce exactly the stream a serial loop sees,
 * and `split` derives independent child streams without sharing state. Imports nothing.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const lolo = aLo * bLo;
  const lohi = aLo * bHi;
  const hilo = aHi * bLo;
  const hihi = aHi * bHi;
  const mid = (lolo >>> 16) + (lohi & 0xffff) + (hilo & 0xffff);
  return (hihi + (lohi >>> 16) + (hilo >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/**
 * One Philox4x32-10 block: 128 random bits from a 128-bit counter and a 64-bit key. `out` receives four
 * uint32 words; it may alias nothing else passed in.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** Seeds accepted everywhere: a non-negative safe integer or a bigint below 2^64. */
export type Seed = number | bigint;

function seedToKey(seed: Seed): [number, number] {
  const s = typeof seed === 'bigint' ? seed : BigInt(seed);
  if (typeof seed === 'number' && (!Number.isSafeInteger(seed) || seed < 0)) {
    throw new RangeError(`seed must be a non-negative safe integer or a bigint, got ${seed}`);
  }
  if (s < 0n || s >= 1n << 64n) throw new RangeError(`seed must be in [0, 2^64), got ${seed}`);
  return [Number(s & 0xffffffffn), Number((s >> 32n) & 0xffffffffn)];
}

/** Tag in counter word 3 that separates key derivation (split) from ordinary output blocks. */
const SPLIT_TAG = 0x5eed5eed;

/**
 * A stream of random numbers. The same seed gives the same numbers on every platform; `split(i)` gives
 * the i-th child stream, independent of how much of the parent has been consumed.
 */
export class Rng {
  readonly key0: number;
  readonly key1: number;
  private counter = 0;
  private readonly block = new Uint32Array(4);
  private used = 4;

  private constructor(key0: number, key1: number) {
    this.key0 = key0 >>> 0;
    this.key1 = key1 >>> 0;
  }

  static fromSeed(seed: Seed): Rng {
    const [k0, k1] = seedToKey(seed);
    return new Rng(k0, k1);
  }

  /** The i-th child stream (0 ≤ i < 2^32). Children of different parents or indices never share keys. */
  split(index: number): Rng {
    if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
      throw new RangeError(`split index must be an integer in [0, 2^32), got ${index}`);
    }
    const out = new Uint32Array(4);
    philox4x32(index >>> 0, 0, 0, SPLIT_TAG, this.key0, this.key1, out);
    return new Rng(out[0], out[1]);
  }

  /** Next uniform uint32. */
  nextUint32(): number {
    if (this.used === 4) {
      const c = this.counter++;
      philox4x32(c >>> 0, Math.floor(c / 0x100000000) >>> 0, 0, 0, this.key0, this.key1, this.block);
      this.used = 0;
    }
    return this.block[this.used++];
  }

  /** Uniform float64 in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal sample (Box–Muller on two 53-bit uniforms; 1 − u keeps log away from 0). */
  normal(): number {
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  fillUniform(out: Float32Array | Float64Array, low = 0, high = 1): void {
    const span = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + span * this.uniform();
  }

  fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1): void {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
  }
}
