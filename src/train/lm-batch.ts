/**
 * Language-model batches from a token stream: B windows of T + 1 consecutive tokens at uniformly
 * random offsets; the first T are the input and the last T the next-token targets (the standard
 * nanoGPT-style sampler). Offsets come from the caller's Rng, so a training step's batch is a
 * function of its seed and step.
 */
import { ShapeError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';

export interface LmBatch {
  /** int32 [B, T]. */
  readonly inputs: Tensor<'int32'>;
  /** Next-token ids, [B·T] row-major (what crossEntropy on logits reshaped to [B·T, V] takes). */
  readonly targets: Int32Array;
}

/** B random windows of `ids`, each T tokens of input and T targets shifted by one. */
export function sampleLmBatch(ids: Int32Array, batch: number, length: number, rng: Rng): LmBatch {
  if (!(Number.isSafeInteger(batch) && batch >= 1 && Number.isSafeInteger(length) && length >= 1)) {
    throw new ShapeError(`sampleLmBatch needs a positive integer batch and length; got ${batch}, ${length}`);
  }
  const span = ids.length - length;
  if (span < 1) {
    throw new ShapeError(`sampleLmBatch: ${ids.length} tokens cannot hold a window of ${length} + 1`);
  }
  const inputs = new Int32Array(batch * length);
  const targets = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const start = Math.floor(rng.uniform() * span);
    inputs.set(ids.subarray(start, start + length), b * length);
    targets.set(ids.subarray(start + 1, start + length + 1), b * length);
  }
  return { inputs: new Tensor(inputs, [batch, length], 'int32'), targets };
}
