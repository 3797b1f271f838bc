/**
 * A tiny configurable pre-norm transformer on the float64 autograd, the model the low-bit training
 * experiments (int8-glu, sagebwd-*) and the masked-diffusion LMs train. GPT-2/Llama layout:
 *
 *   h₀ = tok_emb[tokens] + pos_emb[0..T) (+ extra)
 *   per block l:  h ← h + proj(attention(q(n₁(h)), k(n₁(h)), v(n₁(h))))
 *                 h ← h + mlp(n₂(h))                      (SwiGLU or GELU, see mlp.ts)
 *   logits = head(n_f(h))
 *
 * with n = RMSNorm (Llama) or LayerNorm (GPT-2) and learned absolute positions (GPT-2; no RoPE, to
 * keep the op set small). The block's linear layers (attn.q/k/v/proj, mlp.gate/up/down) run in the
 * precision mode `config.linear` gives; the embeddings, norms and the head stay fp32, as TetraJet
 * quantizes only the block linears (training_methods.md §1.4) and Fallback Quantization's outliers
 * are a block-linear matter (§2.3). Q, K and V are three [D, D] projections rather than one fused
 * [3D, D]: with D a multiple of 32 every INT8 32×32 block and every MXFP4 1×32 group is the same as
 * the fused layer's, and no split op is needed.
 *
 * API (others build on it; keep it stable):
 *
 *   const model = transformer({ vocab: 65, dim: 64, heads: 4, layers: 2, maxLen: 32, hidden: 128 });
 *   const { logits, taps } = model.forward(tokens, { step });   // tokens: int32 Tensor [B, T]
 *   // logits: Var [B, T, vocab]; taps.mlpDownInputs[l]: Var [B, T, hidden]
 *   const loss = crossEntropy(reshape(logits, [-1, vocab]), targets);
 *   const opt = adamw(model.parameters(), { lr: 1e-3 });      // saveCheckpoint({ params: model.params, … })
 *
 * Config fields and defaults: mlp 'swiglu', causal true (false: bidirectional, for a mask predictor),
 * norm 'rms', bias false (Llama), linear { mode: 'fp32' } or a function of the `LinearSite` (so each
 * layer can carry its own Q-EMA), attention `scaledDotProductAttention` (pluggable: any
 * (q, k, v [B, H, T, D/H], { causal }) → [B, H, T, D/H], e.g. SageBwd), seed 0, initStd 0.02.
 * Initialisation (GPT-2): N(0, initStd²) for embeddings, head and block linears, the residual
 * output projections (attn.proj, mlp.down) scaled by 1/√(2·layers); norm weights 1, biases 0. Each
 * parameter draws from Rng.fromSeed(seed).split(its index), so the same config gives the same bits.
 *
 * `forward` options: `step` selects the stochastic-rounding stream of the quantized backward (pass
 * the training step so steps differ; each linear site gets its own seed derived from the linear
 * options' seed, default the model seed, and the site index); `extra` is added to the input
 * embedding (any Var broadcastable to [B, T, dim]: a timestep or class embedding); `linear`
 * replaces the configured precision for one call.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Rng, type Seed } from '../core/rng.js';
import { Tensor, formatShape } from '../core/tensor.js';
import { scaledDotProductAttention } from '../autograd/attention.js';
import { add } from '../autograd/elementwise.js';
import { embedding } from '../autograd/embedding.js';
import { layerNorm, rmsNorm } from '../autograd/norms.js';
import { permute, reshape } from '../autograd/shape-ops.js';
import { type Var, param } from '../autograd/var.js';
import { type LinearOptions, linear } from './linear.js';
import { MLP_KINDS, type MlpKind, type MlpProjection, mlp, mlpProjections } from './mlp.js';

/** Attention over heads: q, k, v [B, H, T, D/H] → [B, H, T, D/H]. */
export type AttentionFn = (q: Var, k: Var, v: Var, opts: { causal: boolean }) => Var;

export type NormKind = 'rms' | 'layer';

/** Names of a block's linear layers. */
export type LinearSiteName = 'attn.q' | 'attn.k' | 'attn.v' | 'attn.proj' | `mlp.${MlpProjection}`;

/** One block linear layer: where it is and which parameter holds its weight. */
export interface LinearSite {
  /** Running number over all sites, block by block in `linearSites()` order. */
  readonly index: number;
  readonly layer: number;
  readonly name: LinearSiteName;
  /** Key of its weight [out, in] in `params`, e.g. 'blocks.0.mlp.down.weight'. */
  readonly weight: string;
}

export interface TransformerConfig {
  readonly vocab: number;
  readonly dim: number;
  readonly heads: number;
  readonly layers: number;
  /** Longest sequence (rows of the position embedding). */
  readonly maxLen: number;
  /** MLP hidden width. */
  readonly hidden: number;
  /** Default 'swiglu'. */
  readonly mlp?: MlpKind;
  /** true (default): a causal LM; false: bidirectional (a masked-token predictor). */
  readonly causal?: boolean;
  /** Default 'rms'. */
  readonly norm?: NormKind;
  /** Biases on the block linears (default false, as Llama). */
  readonly bias?: boolean;
  /** Precision of the block linears: one LinearOptions for all, or one per site. Default fp32. */
  readonly linear?: LinearOptions | ((site: LinearSite) => LinearOptions);
  /** Default: autograd's scaledDotProductAttention. */
  readonly attention?: AttentionFn;
  /** Initialisation seed (default 0). */
  readonly seed?: Seed;
  /** Std of the initial weights (default 0.02, GPT-2). */
  readonly initStd?: number;
}

export interface TransformerForwardOptions {
  /** Training step: the stochastic-rounding stream of quantized backward passes (default 0). */
  readonly step?: number;
  /** Added to the input embedding; broadcastable to [B, T, dim]. */
  readonly extra?: Var;
  /** Replaces `config.linear` for this call (e.g. to evaluate quantization-trained weights in fp32). */
  readonly linear?: TransformerConfig['linear'];
}

/** Intermediate Vars a forward pass exposes (references, no copies). */
export interface TransformerTaps {
  /** Per block, the MLP down projection's input [B, T, hidden] (where GLU outliers live). */
  readonly mlpDownInputs: readonly Var[];
  /** Per block, the residual stream after the block [B, T, dim]. */
  readonly blockOutputs: readonly Var[];
  /** The final normalised hidden state [B, T, dim] the head reads. */
  readonly final: Var;
}

export interface TransformerOutput {
  readonly logits: Var;
  readonly taps: TransformerTaps;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new UnsupportedOptionError(`transformer ${name} must be a positive integer; got ${String(v)}`);
  }
  return v;
}

/** A seed for site `index` derived from `base` (independent streams per layer). */
function siteSeed(base: Seed, index: number): bigint {
  const r = Rng.fromSeed(base).split(index);
  return BigInt(r.key0) | (BigInt(r.key1) << 32n);
}

export class Transformer {
  /** Parameters by name (PyTorch-style keys), in creation order: what checkpoints and optimizers take. */
  readonly params: Record<string, Var> = {};
  readonly config: Required<Omit<TransformerConfig, 'linear' | 'attention'>> &
    Pick<TransformerConfig, 'linear' | 'attention'>;
  private readonly sites: LinearSite[] = [];

  constructor(config: TransformerConfig) {
    const vocab = positiveInt('vocab', config.vocab);
    const dim = positiveInt('dim', config.dim);
    const heads = positiveInt('heads', config.heads);
    const layers = positiveInt('layers', config.layers);
    const maxLen = positiveInt('maxLen', config.maxLen);
    const hidden = positiveInt('hidden', config.hidden);
    if (dim % heads !== 0) {
      throw new UnsupportedOptionError(
        `transformer dim ${dim} is not a multiple of heads ${heads}; pick heads dividing dim`,
      );
    }
    const mlpKind = config.mlp ?? 'swiglu';
    if (!MLP_KINDS.includes(mlpKind)) {
      throw new UnsupportedOptionError(
        `transformer mlp must be 'swiglu' or 'gelu'; got ${JSON.stringify(mlpKind)}`,
      );
    }
    const norm = config.norm ?? 'rms';
    if (norm !== 'rms' && norm !== 'layer') {
      throw new UnsupportedOptionError(
        `transformer norm must be 'rms' or 'layer'; got ${JSON.stringify(norm)}`,
      );
    }
    const initStd = config.initStd ?? 0.02;
    if (!(initStd >= 0) || !Number.isFinite(initStd)) {
      throw new UnsupportedOptionError(`transformer initStd must be finite and ≥ 0; got ${initStd}`);
    }
    this.config = {
      vocab,
      dim,
      heads,
      layers,
      maxLen,
      hidden,
      mlp: mlpKind,
      causal: config.causal ?? true,
      norm,
      bias: config.bias ?? false,
      seed: config.seed ?? 0,
      initStd,
      linear: config.linear,
      attention: config.attention,
    };
    const rng = Rng.fromSeed(this.config.seed);
    let count = 0;
    const make = (name: string, shape: number[], init: 'normal' | 'ones' | 'zeros', std = initStd) => {
      const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
      const r = rng.split(count++);
      if (init === 'normal') r.fillNormal(data, 0, std);
      else if (init === 'ones') data.fill(1);
      this.params[name] = param(new Tensor(data, shape, 'float64'));
    };
    const makeNorm = (prefix: string) => {
      make(`${prefix}.weight`, [dim], 'ones');
      if (norm === 'layer') make(`${prefix}.bias`, [dim], 'zeros');
    };
    const residualStd = initStd / Math.sqrt(2 * layers);
    const makeLinear = (layer: number, name: LinearSiteName, out: number, inp: number, std: number) => {
      const prefix = `blocks.${layer}.${name}`;
      make(`${prefix}.weight`, [out, inp], 'normal', std);
      if (this.config.bias) make(`${prefix}.bias`, [out], 'zeros');
      this.sites.push({ index: this.sites.length, layer, name, weight: `${prefix}.weight` });
    };
    make('tok_emb.weight', [vocab, dim], 'normal');
    make('pos_emb.weight', [maxLen, dim], 'normal');
    for (let l = 0; l < layers; l++) {
      makeNorm(`blocks.${l}.norm1`);
      makeLinear(l, 'attn.q', dim, dim, initStd);
      makeLinear(l, 'attn.k', dim, dim, initStd);
      makeLinear(l, 'attn.v', dim, dim, initStd);
      makeLinear(l, 'attn.proj', dim, dim, residualStd);
      makeNorm(`blocks.${l}.norm2`);
      for (const p of mlpProjections(mlpKind)) {
        if (p === 'down') makeLinear(l, 'mlp.down', dim, hidden, residualStd);
        else makeLinear(l, `mlp.${p}`, hidden, dim, initStd);
      }
    }
    makeNorm('norm_f');
    make('head.weight', [vocab, dim], 'normal');
  }

  /** Every parameter, in `params` order. */
  parameters(): Var[] {
    return Object.values(this.params);
  }

  /** Total number of scalar parameters. */
  get parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.value.size, 0);
  }

  /** The block linear layers, block by block (attn.q, attn.k, attn.v, attn.proj, then the MLP's). */
  linearSites(): readonly LinearSite[] {
    return this.sites;
  }

  /** Logits [B, T, vocab] for int32 tokens [B, T] with T ≤ maxLen, and the taps. */
  forward(tokens: Tensor, opts: TransformerForwardOptions = {}): TransformerOutput {
    const { dim, heads, layers, maxLen, causal, mlp: mlpKind } = this.config;
    if (tokens.dtype !== 'int32' || tokens.shape.length !== 2) {
      throw new ShapeError(
        `transformer tokens must be an int32 tensor [B, T]; got ${tokens.dtype} ${formatShape(tokens.shape)}`,
      );
    }
    const [b, t] = tokens.shape;
    if (t > maxLen || t < 1 || b < 1) {
      throw new ShapeError(
        `transformer tokens [${b}, ${t}]: need B ≥ 1 and 1 ≤ T ≤ maxLen = ${maxLen}; shorten the sequence or raise maxLen`,
      );
    }
    const p = this.params;
    const step = opts.step ?? 0;
    const attention = this.config.attention ?? scaledDotProductAttention;
    const normed = (x: Var, prefix: string): Var =>
      this.config.norm === 'rms'
        ? rmsNorm(x, p[`${prefix}.weight`])
        : layerNorm(x, p[`${prefix}.weight`], p[`${prefix}.bias`]);
    const project = (site: LinearSite, x: Var): Var => {
      const spec = opts.linear ?? this.config.linear;
      const base: LinearOptions =
        spec === undefined ? { mode: 'fp32' } : typeof spec === 'function' ? spec(site) : spec;
      const opts2: LinearOptions = {
        ...base,
        seed: siteSeed(base.seed ?? this.config.seed, site.index),
        step,
      };
      const bias = this.config.bias ? p[site.weight.replace(/weight$/, 'bias')] : undefined;
      return linear(x, p[site.weight], bias, opts2);
    };
    const positions = Int32Array.from({ length: t }, (_, i) => i);
    let h = add(
      embedding(p['tok_emb.weight'], tokens.data, [b, t]),
      embedding(p['pos_emb.weight'], positions, [t]),
    );
    if (opts.extra !== undefined) h = add(h, opts.extra);
    const dh = dim / heads;
    const toHeads = (x: Var) => permute(reshape(x, [b, t, heads, dh]), [0, 2, 1, 3]);
    const mlpDownInputs: Var[] = [];
    const blockOutputs: Var[] = [];
    const perLayer = this.sites.length / layers;
    for (let l = 0; l < layers; l++) {
      const sites = this.sites.slice(l * perLayer, (l + 1) * perLayer);
      const site = (name: LinearSiteName) => sites.find((s) => s.name === name) as LinearSite;
      const a = normed(h, `blocks.${l}.norm1`);
      const o = attention(
        toHeads(project(site('attn.q'), a)),
        toHeads(project(site('attn.k'), a)),
        toHeads(project(site('attn.v'), a)),
        { causal },
      );
      const merged = reshape(permute(o, [0, 2, 1, 3]), [b, t, dim]);
      h = add(h, project(site('attn.proj'), merged));
      const m = mlp(normed(h, `blocks.${l}.norm2`), mlpKind, (name, x) => project(site(`mlp.${name}`), x));
      mlpDownInputs.push(m.downInput);
      h = add(h, m.out);
      blockOutputs.push(h);
    }
    const final = normed(h, 'norm_f');
    const logits = linear(final, p['head.weight'], undefined, { mode: 'fp32' });
    return { logits, taps: { mlpDownInputs, blockOutputs, final } };
  }
}

/** A transformer with freshly initialised parameters (see the module comment). */
export function transformer(config: TransformerConfig): Transformer {
  return new Transformer(config);
}
