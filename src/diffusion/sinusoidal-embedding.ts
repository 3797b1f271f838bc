/**
 * Sinusoidal embeddings of scalars (Vaswani et al. 2017 §3.5, as GLIDE/DiT's `timestep_embedding`,
 * which GFT's β embedding reuses, training_methods.md §3.1): for half = dim/2 frequencies
 * f_i = exp(−ln(maxPeriod)·i/half), emb(v) = [cos(v·f_0) … cos(v·f_{half−1}), sin(v·f_0) …], with a
 * zero column appended when dim is odd. Frequencies run from 1 down to ≈ 1/maxPeriod, so inputs
 * should be spread over O(1 … maxPeriod) — DiT embeds the timestep index 0 … 999 and β·1000.
 */
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkInteger, checkPositive } from './checks.js';

/** [n, dim] embedding of n scalars (module comment); maxPeriod default 10000 (DiT/GLIDE). */
export function sinusoidalEmbedding(values: ArrayLike<number>, dim: number, maxPeriod = 10000): F64 {
  checkInteger('embedding dim', dim, 1);
  checkPositive('maxPeriod', maxPeriod);
  const n = values.length;
  const half = dim >> 1;
  const freqs = Float64Array.from({ length: half }, (_, i) => Math.exp((-Math.log(maxPeriod) * i) / half));
  const out = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) {
    const v = values[r];
    for (let i = 0; i < half; i++) {
      out[r * dim + i] = Math.cos(v * freqs[i]);
      out[r * dim + half + i] = Math.sin(v * freqs[i]);
    }
  }
  return new Tensor(out, [n, dim], 'float64');
}
