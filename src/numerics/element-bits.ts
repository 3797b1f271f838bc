/**
 * Random bits addressed by element index, for stochastic rounding. Element i gets word i % 4 of the
 * Philox4x32-10 block with counter (⌊i/4⌋, 0, 0, 0) under the seed's key — which is exactly the i-th
 * uint32 of `Rng.fromSeed(seed)`'s stream. Because the bits depend only on (seed, i), encoding an
 * array in chunks (each chunk passing its first element's index as `offset`) gives the same codes
 * as encoding it whole, and a GPU kernel can reproduce them thread by thread.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { philox4x32, Rng, type Seed } from '../core/rng.js';

export class ElementBits {
  private readonly k0: number;
  private readonly k1: number;
  private readonly block = new Uint32Array(4);
  private counter = -1;

  constructor(seed: Seed) {
    const rng = Rng.fromSeed(seed);
    this.k0 = rng.key0;
    this.k1 = rng.key1;
  }

  /** The 32 random bits of element `index` (a non-negative safe integer), as a uint32. */
  at(index: number): number {
    const counter = Math.floor(index / 4);
    if (counter !== this.counter) {
      // Counter word 1 carries the high bits so indices past 2^34 keep distinct blocks, as Rng does.
      philox4x32(counter >>> 0, Math.floor(counter / 0x100000000) >>> 0, 0, 0, this.k0, this.k1, this.block);
      this.counter = counter;
    }
    return this.block[index % 4];
  }
}

/**
 * The per-element bit source for `rounding: 'stochastic'` (null for deterministic rounding, where
 * `seed` and `offset` are ignored). Throws UnsupportedOptionError for a missing or invalid seed or an
 * offset that is not a non-negative safe integer.
 */
export function elementBitsFor(
  rounding: string,
  seed: Seed | undefined,
  offset: number | undefined,
  what: string,
): ElementBits | null {
  if (rounding !== 'stochastic') return null;
  if (seed === undefined) {
    throw new UnsupportedOptionError(
      `${what}: rounding 'stochastic' needs a seed (a non-negative safe integer or a bigint below 2^64); ` +
        `pass { rounding: 'stochastic', seed }`,
    );
  }
  if (offset !== undefined && !(Number.isSafeInteger(offset) && offset >= 0)) {
    throw new UnsupportedOptionError(
      `${what}: offset must be a non-negative safe integer (the stream index of element 0); got ${offset}`,
    );
  }
  try {
    return new ElementBits(seed);
  } catch (err) {
    throw new UnsupportedOptionError(`${what}: invalid seed: ${(err as Error).message}`);
  }
}
