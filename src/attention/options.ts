/**
 * The options every attention function shares, and their validation. `resolveAttentionProblem` reads
 * only `{ shape, dtype }`, so host and GPU tensors go through the same checks and every backend sees
 * the same resolved problem (defaults filled in, dimensions read from the layout).
 *
 * Zero-length rules (one place, so every backend agrees):
 * - Nq = 0 (and B = 0) is allowed: the output and the LSE are empty tensors of the right shape.
 * - Nk = 0 is a ShapeError: a softmax over no keys has no value, and an empty KV cache passed to
 *   attention is far more often a bug than a request for zeros. Rows that see no key because of
 *   causal masking are a different case: they are defined to give zeros and LSE -Infinity.
 */
import { type DType } from '../core/dtype.js';
import { DTypeError, NonFiniteInputError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { type Layout, assertLayout, layoutDims } from '../core/layout.js';
import { type Tensor, formatShape, type Shape } from '../core/tensor.js';

/**
 * Which diagonal a causal mask follows when Nq ≠ Nk (research notes sageattention.md §6.3).
 * - 'top-left': key j is kept for query i iff j ≤ i. PyTorch SDPA `is_causal` and SageAttention2's
 *   kernels (both documented as meant for Nq = Nk).
 * - 'bottom-right': key j is kept iff j ≤ i + Nk − Nq, so the last query sees every key. FlashAttention
 *   ≥ 2.1 and SageAttention3; the right choice for KV-cache decoding, where the queries are the newest
 *   tokens. With Nq > Nk the first Nq − Nk rows see no key at all.
 * The two agree when Nq = Nk.
 */
export type CausalAlignment = 'top-left' | 'bottom-right';

/**
 * What to do with NaN and ±Infinity in the inputs.
 * - 'propagate': plain IEEE arithmetic, with no extra scan. A non-finite value reaches only the outputs
 *   whose computation touches it: a bad query row only its own output row; a bad key or value row only
 *   the rows whose causal window (or mask) includes that key. A key outside a row's window is never read
 *   for that row. Finite inputs whose logits overflow float64 follow IEEE too (inf − inf = NaN).
 * - 'error': host inputs are scanned before any work and a NonFiniteInputError names the tensor and the
 *   first bad index. GPU tensors are not scanned (it would need a read-back).
 */
export type NanPolicy = 'propagate' | 'error';

export interface AttentionOptions {
  /** Tensor layout of q, k, v and the output: 'HND' = [B, H, N, D] (default), 'NHD' = [B, N, H, D]. */
  layout?: Layout;
  /** Causal masking (default false). */
  causal?: boolean;
  /** Diagonal of the causal mask when Nq ≠ Nk (default 'top-left', as PyTorch SDPA and SA2). */
  causalAlignment?: CausalAlignment;
  /** Softmax scale σ in S = σ·QKᵀ (default 1/√D, D the head dim before any kernel padding). */
  smScale?: number;
  /**
   * Also return the natural-log log-sum-exp of each row's scaled logits, shape [B, Hq, Nq]: what
   * ring/context-parallel attention merges (research notes sageattention.md §6.4). Float32 from the
   * kernels, float64 from the oracle. Rows that see no key have LSE -Infinity.
   */
  returnLse?: boolean;
  /** NaN/Infinity handling (default 'propagate'); see `NanPolicy`. */
  nanPolicy?: NanPolicy;
}

/** Output and LSE, returned when `returnLse: true`. */
export interface AttentionWithLse<T> {
  out: T;
  lse: T;
}

/**
 * What an attention function returns. Every attention function uses the same overloads, so callers get
 * the precise type from their options:
 * ```ts
 * function f(q, k, v, opts: Opts & { returnLse: true }): AttentionWithLse<T>;
 * function f(q, k, v, opts?: Opts & { returnLse?: false }): T;
 * function f(q, k, v, opts?: Opts): AttentionResult<T>;
 * ```
 */
export type AttentionResult<T> = T | AttentionWithLse<T>;

/** The float dtypes attention accepts for q, k and v. */
export type AttentionDType = 'float64' | 'float32' | 'float16' | 'bfloat16';
const ATTENTION_DTYPES: readonly string[] = ['float64', 'float32', 'float16', 'bfloat16'];

/** A validated attention call with every default filled in. */
export interface AttentionProblem {
  batch: number;
  headsQ: number;
  headsKv: number;
  tokensQ: number;
  tokensKv: number;
  headDim: number;
  dtype: AttentionDType;
  layout: Layout;
  causal: boolean;
  causalAlignment: CausalAlignment;
  smScale: number;
  returnLse: boolean;
  nanPolicy: NanPolicy;
}

/** What validation reads from a tensor, so GPU tensors can be checked without a read-back. */
export interface ShapedLike {
  readonly shape: Shape;
  readonly dtype: DType;
}

const OPTION_KEYS: readonly (keyof AttentionOptions)[] = [
  'layout',
  'causal',
  'causalAlignment',
  'smScale',
  'returnLse',
  'nanPolicy',
];

/**
 * Validates q, k, v and the options of an attention call and fills in the defaults. Throws a ShapeError,
 * DTypeError or UnsupportedOptionError whose message says what was expected and what was given.
 * `extraKeys` names the options the calling function adds on top of `AttentionOptions` (it validates
 * their values itself); any other key is rejected, so a typo such as `casual` cannot silently do nothing.
 */
export function resolveAttentionProblem(
  q: ShapedLike,
  k: ShapedLike,
  v: ShapedLike,
  opts: AttentionOptions | undefined,
  extraKeys: readonly string[] = [],
): AttentionProblem {
  const o: AttentionOptions = opts ?? {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new UnsupportedOptionError(`attention options must be an object; got ${JSON.stringify(o)}`);
  }
  assertKnownKeys(o, [...OPTION_KEYS, ...extraKeys]);

  const layout = o.layout ?? 'HND';
  assertLayout(layout);
  const causal = booleanOption(o.causal, 'causal', false);
  const returnLse = booleanOption(o.returnLse, 'returnLse', false);
  const causalAlignment = o.causalAlignment ?? 'top-left';
  if (causalAlignment !== 'top-left' && causalAlignment !== 'bottom-right') {
    throw new UnsupportedOptionError(
      `causalAlignment must be 'top-left' (key j kept iff j <= i, PyTorch SDPA / SA2) or 'bottom-right' ` +
        `(j <= i + Nk - Nq, FlashAttention >= 2.1 / SA3); got ${JSON.stringify(causalAlignment)}`,
    );
  }
  const nanPolicy = o.nanPolicy ?? 'propagate';
  if (nanPolicy !== 'propagate' && nanPolicy !== 'error') {
    throw new UnsupportedOptionError(
      `nanPolicy must be 'propagate' or 'error'; got ${JSON.stringify(nanPolicy)}`,
    );
  }

  const dtype = assertAttentionDTypes(q, k, v);
  const qd = layoutDims(q.shape, layout, 'q');
  const kd = layoutDims(k.shape, layout, 'k');
  const vd = layoutDims(v.shape, layout, 'v');
  const axes = layout === 'HND' ? '[B, H, N, D]' : '[B, N, H, D]';

  if (kd.batch !== qd.batch || vd.batch !== qd.batch) {
    throw new ShapeError(
      `q, k and v must have the same batch size; got q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, ` +
        `v ${formatShape(v.shape)} (layout '${layout}' = ${axes})`,
    );
  }
  if (kd.headDim !== qd.headDim) {
    throw new ShapeError(
      `q and k must have the same head dim D; got q ${formatShape(q.shape)} and k ${formatShape(k.shape)} ` +
        `(layout '${layout}' = ${axes})`,
    );
  }
  if (vd.headDim !== qd.headDim) {
    throw new ShapeError(
      `v's head dim must equal q's head dim D = ${qd.headDim} (sparq does not support a separate value ` +
        `head dim); got v ${formatShape(v.shape)} (layout '${layout}' = ${axes})`,
    );
  }
  if (kd.heads !== vd.heads || kd.tokens !== vd.tokens) {
    throw new ShapeError(
      `k and v must have identical shapes; got k ${formatShape(k.shape)} and v ${formatShape(v.shape)}`,
    );
  }
  if (qd.headDim < 1) {
    throw new ShapeError(`head dim D must be at least 1; got q ${formatShape(q.shape)}`);
  }
  if (qd.heads < 1 || kd.heads < 1) {
    throw new ShapeError(
      `q and k/v need at least one head; got q ${formatShape(q.shape)} and k ${formatShape(k.shape)} ` +
        `(layout '${layout}' = ${axes})`,
    );
  }
  if (qd.heads % kd.heads !== 0) {
    throw new ShapeError(
      `the number of query heads (${qd.heads}) must be a multiple of the number of kv heads (${kd.heads}) ` +
        `for grouped-query attention; got q ${formatShape(q.shape)} and k ${formatShape(k.shape)} ` +
        `(layout '${layout}' = ${axes}). Check the layout option if the heads and tokens look swapped.`,
    );
  }
  if (kd.tokens < 1) {
    throw new ShapeError(
      `k and v need at least one token (a softmax over no keys is undefined); got k ${formatShape(k.shape)}. ` +
        `Skip the call, or use zeros for the output, when the KV sequence is empty.`,
    );
  }

  const smScale = o.smScale ?? 1 / Math.sqrt(qd.headDim);
  if (typeof smScale !== 'number' || !Number.isFinite(smScale) || smScale <= 0) {
    throw new UnsupportedOptionError(
      `smScale must be a finite number > 0 (default 1/sqrt(D) = ${1 / Math.sqrt(qd.headDim)}); got ${String(smScale)}`,
    );
  }

  return {
    batch: qd.batch,
    headsQ: qd.heads,
    headsKv: kd.heads,
    tokensQ: qd.tokens,
    tokensKv: kd.tokens,
    headDim: qd.headDim,
    dtype,
    layout,
    causal,
    causalAlignment,
    smScale,
    returnLse,
    nanPolicy,
  };
}

/**
 * The kv head that query head h reads under grouped-query attention: consecutive query heads share a kv
 * head (h / (Hq/Hkv), as torch's repeat_interleave and SageAttention's `num_kv_groups`), not h % Hkv.
 */
export function kvHeadOf(h: number, headsQ: number, headsKv: number): number {
  return Math.floor(h / (headsQ / headsKv));
}

/**
 * The `nanPolicy: 'error'` scan: throws a NonFiniteInputError naming the first tensor (in argument order)
 * that holds NaN or ±Infinity, with the index of the first such element.
 */
export function assertFiniteInputs(inputs: Readonly<Record<string, Tensor>>): void {
  for (const [name, t] of Object.entries(inputs)) {
    const values = t.dtype === 'float32' || t.dtype === 'float64' ? t.data : t.toFloat32();
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) {
        throw new NonFiniteInputError(
          `${name}${formatShape(unravel(i, t.shape))} is ${values[i]} (nanPolicy 'error' requires finite ` +
            `inputs; ${name} has shape ${formatShape(t.shape)}). Fix the input, or use nanPolicy ` +
            `'propagate' to let non-finite values flow through IEEE arithmetic.`,
        );
      }
    }
  }
}

function unravel(flat: number, shape: Shape): number[] {
  const index = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    index[a] = flat % shape[a];
    flat = Math.floor(flat / shape[a]);
  }
  return index;
}

function assertAttentionDTypes(q: ShapedLike, k: ShapedLike, v: ShapedLike): AttentionDType {
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    if (!ATTENTION_DTYPES.includes(t.dtype)) {
      throw new DTypeError(
        `${name} must have a float dtype (${ATTENTION_DTYPES.join(', ')}); got ${t.dtype}. ` +
          `Quantized inputs go through the SageAttention functions, not dense attention.`,
      );
    }
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) {
    throw new DTypeError(
      `q, k and v must share one dtype; got q ${q.dtype}, k ${k.dtype}, v ${v.dtype}. Convert them first.`,
    );
  }
  return q.dtype as AttentionDType;
}

function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new UnsupportedOptionError(`${name} must be true or false; got ${JSON.stringify(value)}`);
  }
  return value;
}

function assertKnownKeys(opts: object, known: readonly string[]): void {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue;
    const near = known.find((name) => editDistance(key.toLowerCase(), name.toLowerCase()) <= 2);
    throw new UnsupportedOptionError(
      `unknown attention option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; ` +
        `this function accepts ${known.map((n) => `'${n}'`).join(', ')}`,
    );
  }
}

/** Levenshtein distance, for "did you mean" hints on misspelt option names. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
