/**
 * The float64 oracle: softmax(σ·QKᵀ + mask)·V computed one query row at a time, in float64, with no
 * tiling and no approximation beyond float64 rounding. Every accuracy figure in sparq is measured
 * against it, so it favours being obviously right over being fast.
 *
 * Which keys a row reads: those inside its causal window (causal.ts) and not dropped by the mask (a
 * boolean false or an additive -Infinity; both mean the key is never read, so the two are equivalent
 * even when that key holds NaN). Among the keys a row reads, arithmetic is plain IEEE: under
 * `nanPolicy: 'propagate'` a NaN there makes that row's output and LSE NaN, and nothing else.
 * A row that reads no key, or whose logits are all -Infinity, gives zeros and LSE -Infinity, never NaN.
 */
import { DTypeError, NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { convertLayout, type Layout } from '../core/layout.js';
import { Tensor, formatShape, type Shape } from '../core/tensor.js';
import { visibleKeys } from './causal.js';
import {
  type AttentionOptions,
  type AttentionProblem,
  type AttentionResult,
  type AttentionWithLse,
  assertFiniteInputs,
  kvHeadOf,
  resolveAttentionProblem,
} from './options.js';

export interface ReferenceOptions extends AttentionOptions {
  /**
   * Optional attention mask, broadcastable to [B, Hq, Nq, Nk] (see `broadcastStrides`). dtype 'bool': 1 keeps the key, 0 drops it. A float dtype:
   * added to the scaled logits σ·q·k (so -Infinity drops the key). It combines with `causal`: a key is
   * read only if both keep it.
   */
  mask?: Tensor;
}

/** One row of the oracle's attention probabilities, handed to a `forEachSoftmaxRow` visitor. */
export interface SoftmaxRow {
  b: number;
  h: number;
  i: number;
  /** softmax probabilities over all Nk keys; exactly 0 for keys the row does not read. Reused per row. */
  probs: Float64Array;
  /**
   * Indices of the keys that carry the row's probability mass, in the first `count` entries: the keys it
   * reads, or none when its max logit is -Infinity. Reused per row.
   */
  keys: Int32Array;
  count: number;
  /** Natural-log log-sum-exp of the row's logits; -Infinity when the row reads no key. */
  lse: number;
}

/**
 * Plain softmax attention in float64 (the oracle). Inputs of any float dtype are decoded to float64; the
 * output is float64 in the input layout; with `returnLse` the LSE is float64 [B, Hq, Nq].
 */
export function attentionReference(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: ReferenceOptions & { returnLse: true },
): AttentionWithLse<Tensor<'float64'>>;
export function attentionReference(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: ReferenceOptions & { returnLse?: false },
): Tensor<'float64'>;
export function attentionReference(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: ReferenceOptions,
): AttentionResult<Tensor<'float64'>>;
export function attentionReference(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts?: ReferenceOptions,
): AttentionResult<Tensor<'float64'>> {
  const { problem, qh, kh, mask } = prepare(q, k, v, opts);
  const { batch, headsQ, headsKv, tokensQ, tokensKv, headDim: d } = problem;
  const vh = toHnd(v, problem.layout);
  const out = new Float64Array(batch * headsQ * tokensQ * d);
  const lse = new Float64Array(batch * headsQ * tokensQ);
  softmaxRows(problem, qh, kh, mask, (row) => {
    const kvBase = (row.b * headsKv + kvHeadOf(row.h, headsQ, headsKv)) * tokensKv * d;
    const rowIndex = (row.b * headsQ + row.h) * tokensQ + row.i;
    const o = rowIndex * d;
    for (let t = 0; t < row.count; t++) {
      const j = row.keys[t];
      const p = row.probs[j];
      const vj = kvBase + j * d;
      for (let c = 0; c < d; c++) out[o + c] += p * vh[vj + c];
    }
    lse[rowIndex] = row.lse;
  });
  const outHnd = new Tensor(out, [batch, headsQ, tokensQ, d], 'float64');
  const result = convertLayout(outHnd, 'HND', problem.layout);
  if (!problem.returnLse) return result;
  return { out: result, lse: new Tensor(lse, [batch, headsQ, tokensQ], 'float64') };
}

/**
 * Visits every (b, h, i) row of the oracle's softmax(σ·QKᵀ + mask), in b, h, i order, without
 * materialising the [B, Hq, Nq, Nk] probability tensor (metrics.recall uses it on long sequences).
 * Options are those of `attentionReference`; `returnLse` is accepted and irrelevant here.
 */
export function forEachSoftmaxRow(
  q: Tensor,
  k: Tensor,
  opts: ReferenceOptions | undefined,
  visit: (row: SoftmaxRow) => void,
): AttentionProblem {
  const { problem, qh, kh, mask } = prepare(q, k, k, opts);
  softmaxRows(problem, qh, kh, mask, visit);
  return problem;
}

/** A mask with broadcast strides over [B, Hq, Nq, Nk] (stride 0 along broadcast dims). */
interface MaskView {
  additive: boolean;
  values: Float64Array;
  strides: [number, number, number, number];
}

function prepare(q: Tensor, k: Tensor, v: Tensor, opts: ReferenceOptions | undefined) {
  const problem = resolveAttentionProblem(q, k, v, opts, ['mask']);
  const mask = opts?.mask === undefined ? undefined : maskView(opts.mask, problem);
  if (problem.nanPolicy === 'error') {
    assertFiniteInputs({ q, k, v });
    if (mask?.additive) assertNoNanOrPosInf(mask.values, opts?.mask as Tensor);
  }
  return { problem, qh: toHnd(q, problem.layout), kh: toHnd(k, problem.layout), mask };
}

/** Values as float64 in HND order, the order the loops below index. */
function toHnd(t: Tensor, layout: Layout): Float64Array {
  return convertLayout(new Tensor(t.toFloat64(), t.shape, 'float64'), layout, 'HND').data as Float64Array;
}

/**
 * The row loop of the oracle. Stable softmax: the row max m is subtracted before exp, so exp never
 * overflows, and LSE = m + log Σ exp(s − m). A row whose max is -Infinity (no key read, or every logit
 * -Infinity) is defined as probabilities 0 and LSE -Infinity instead of computing exp(-inf − -inf) = NaN.
 */
function softmaxRows(
  problem: AttentionProblem,
  qh: Float64Array,
  kh: Float64Array,
  mask: MaskView | undefined,
  visit: (row: SoftmaxRow) => void,
): void {
  const { batch, headsQ, headsKv, tokensQ, tokensKv, headDim: d, smScale } = problem;
  const logits = new Float64Array(tokensKv);
  const row: SoftmaxRow = {
    b: 0,
    h: 0,
    i: 0,
    probs: new Float64Array(tokensKv),
    keys: new Int32Array(tokensKv),
    count: 0,
    lse: 0,
  };
  const [mb, mh, mi, mj] = mask?.strides ?? [0, 0, 0, 0];
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < headsQ; h++) {
      const kBase = (b * headsKv + kvHeadOf(h, headsQ, headsKv)) * tokensKv * d;
      for (let i = 0; i < tokensQ; i++) {
        const qBase = ((b * headsQ + h) * tokensQ + i) * d;
        const maskRow = b * mb + h * mh + i * mi;
        const kept = visibleKeys(i, problem);
        row.probs.fill(0);
        let count = 0;
        let m = -Infinity;
        for (let j = 0; j < kept; j++) {
          let bias = 0;
          if (mask) {
            const mv = mask.values[maskRow + j * mj];
            if (mask.additive ? mv === -Infinity : mv === 0) continue;
            if (mask.additive) bias = mv;
          }
          let dot = 0;
          const kj = kBase + j * d;
          for (let c = 0; c < d; c++) dot += qh[qBase + c] * kh[kj + c];
          const s = smScale * dot + bias;
          logits[j] = s;
          row.keys[count++] = j;
          m = Math.max(m, s);
        }
        let lse = -Infinity;
        if (m === -Infinity) {
          count = 0;
        } else {
          let sum = 0;
          for (let t = 0; t < count; t++) {
            const j = row.keys[t];
            const e = Math.exp(logits[j] - m);
            row.probs[j] = e;
            sum += e;
          }
          for (let t = 0; t < count; t++) row.probs[row.keys[t]] /= sum;
          lse = m + Math.log(sum);
        }
        row.b = b;
        row.h = h;
        row.i = i;
        row.count = count;
        row.lse = lse;
        visit(row);
      }
    }
  }
}

function maskView(mask: unknown, problem: AttentionProblem): MaskView {
  if (!(mask instanceof Tensor)) {
    throw new UnsupportedOptionError(
      `mask must be a host Tensor (dtype bool, or a float dtype for an additive mask); got ${String(mask)}`,
    );
  }
  const additive = ['float64', 'float32', 'float16', 'bfloat16'].includes(mask.dtype);
  if (!additive && mask.dtype !== 'bool') {
    throw new DTypeError(
      `mask must be dtype bool (1 keeps a key, 0 drops it) or a float dtype (added to the logits); ` +
        `got ${mask.dtype}. Convert it with tensor(values, shape, 'bool').`,
    );
  }
  const target = [problem.batch, problem.headsQ, problem.tokensQ, problem.tokensKv];
  const [sb, sh, si, sj] = broadcastStrides(mask.shape, target, 'mask');
  return { additive, values: mask.toFloat64(), strides: [sb, sh, si, sj] };
}

/**
 * Element strides that read a row-major tensor of `shape` as if broadcast to `target` (NumPy's
 * trailing-dims rule: aligned to the right, each dim is 1 or equal; stride 0 along broadcast dims).
 * Throws a ShapeError naming `what` when the shape does not broadcast.
 */
export function broadcastStrides(shape: Shape, target: readonly number[], what: string): number[] {
  const offset = target.length - shape.length;
  if (offset < 0 || !shape.every((dim, a) => dim === 1 || dim === target[offset + a])) {
    throw new ShapeError(
      `${what} must be broadcastable to ${formatShape(target)} (each dim, aligned to the right, 1 or ` +
        `equal); got ${formatShape(shape)}`,
    );
  }
  const strides = new Array<number>(target.length).fill(0);
  let stride = 1;
  for (let a = shape.length - 1; a >= 0; a--) {
    if (shape[a] !== 1) strides[offset + a] = stride;
    stride *= shape[a];
  }
  return strides;
}

/** nanPolicy 'error' for an additive mask: -Infinity is how it drops keys, so only NaN and +Infinity. */
function assertNoNanOrPosInf(values: Float64Array, mask: Tensor): void {
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i]) || values[i] === Infinity) {
      throw new NonFiniteInputError(
        `mask element ${i} (flat index, mask shape ${formatShape(mask.shape)}) is ${values[i]}; an additive ` +
          `mask may hold -Infinity to drop a key but not NaN or +Infinity under nanPolicy 'error'.`,
      );
    }
  }
}
