/**
 * A tiny bidirectional mask predictor for the masked-diffusion tests: logits at position i are
 * bias[i] + Σ_{k≠i} table[i, k, x_k] (x_k may be [MASK]), a pairwise model whose predictions depend
 * strongly on the context, so ELBO and likelihood differ visibly. Its parameters are autograd Vars
 * (one [T·T·(V+1), V] table), so losses built on it can be backpropagated and gradient-checked.
 */
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import * as ag from '../../src/autograd/index.js';
import type { MaskPredictor } from '../../src/diffusion/mask-predictor.js';

export class PairwisePredictor implements MaskPredictor {
  readonly maskToken: number;
  readonly table: ag.Var;
  constructor(
    readonly vocabSize: number,
    readonly maxLength: number,
    seed: number,
    scale = 1.5,
  ) {
    this.maskToken = vocabSize;
    const data = new Float64Array(maxLength * maxLength * (vocabSize + 1) * vocabSize);
    Rng.fromSeed(seed).fillNormal(data, 0, scale);
    this.table = ag.param(new Tensor(data, [maxLength * maxLength * (vocabSize + 1), vocabSize], 'float64'));
  }

  logits(tokens: Int32Array, batch: number, length: number): ag.Var {
    const v1 = this.vocabSize + 1;
    const t = this.maxLength;
    const ids = new Int32Array(batch * length * length);
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < length; i++) {
        for (let k = 0; k < length; k++) {
          // k = i reads row (i, i, MASK): a per-position bias independent of x_i itself.
          const x = k === i ? this.maskToken : tokens[b * length + k];
          ids[(b * length + i) * length + k] = (i * t + k) * v1 + x;
        }
      }
    }
    return ag.sum(ag.embedding(this.table, ids, [batch, length, length]), 2);
  }

  parameters(): ag.Var[] {
    return [this.table];
  }
}

/** Mean and standard error of the mean. */
export function meanSe(xs: ArrayLike<number>): { mean: number; se: number; variance: number } {
  const n = xs.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - mean) ** 2;
  const variance = ss / (n - 1);
  return { mean, se: Math.sqrt(variance / n), variance };
}

/** All length-r sequences over v tokens, in lexicographic order. */
export function allSequences(v: number, r: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let code = 0; code < v ** r; code++) {
    const s = new Int32Array(r);
    let c = code;
    for (let i = r - 1; i >= 0; i--) {
      s[i] = c % v;
      c = Math.floor(c / v);
    }
    out.push(s);
  }
  return out;
}

/**
 * Sets every "position k is [MASK]" context row to (c, −c, 0, …): predictions then move with the
 * number of masked tokens, so the l-form's E[ℓ' | l] varies with l and V_t is large (Lemma 5's
 * allocation effect becomes visible).
 */
export function makeMaskCountSensitive(model: PairwisePredictor, c: number): PairwisePredictor {
  const v = model.vocabSize;
  const t = model.maxLength;
  const data = model.table.value.data as Float64Array;
  for (let i = 0; i < t; i++) {
    for (let k = 0; k < t; k++) {
      if (k === i) continue;
      const o = ((i * t + k) * (v + 1) + v) * v;
      data.fill(0, o, o + v);
      data[o] = c;
      if (v > 1) data[o + 1] = -c;
    }
  }
  return model;
}
