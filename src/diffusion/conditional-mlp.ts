/**
 * A small conditional MLP denoiser for low-dimensional data — the network of the toy experiments
 * (training_methods.md §3.5: "MLP 3×256 with SiLU; inputs x_t, sinusoidal t-embedding, a learned
 * class embedding with a null token, and a sinusoidal β·1000 embedding added to the t-embedding";
 * §5.5: the consistency student with embeddings of t and s).
 *
 *   h₁ = SiLU(W_x·x + b + Σ_k P_k·emb(scale_k·c_k) + E[label])
 *   h_{l+1} = SiLU(W_l·h_l + b_l)        (layers − 1 times)
 *   out = W_o·h_L + b_o
 *
 * Each scalar condition c_k (a timestep, GFT's β, CTM's target time s) gets a sinusoidal embedding
 * (sinusoidal-embedding.ts) and its own linear projection into the first hidden layer. GFT's DiT adds
 * a projection of the β embedding to the t frequency embedding before the time MLP (`models.py`,
 * `beta_in='linear'`); with no time MLP here, the projection goes straight into the first layer —
 * the same additive conditioning, one linear map fewer. A projection with init 'zero' makes the
 * network start exactly as if the condition were absent: GFT's zero-initialised β projection for
 * fine-tuning from a CFG model (§3.1); 'default' is GFT's from-scratch `--pretrain` case.
 *
 * Initialisation: PyTorch's nn.Linear default, weights and biases U(−1/√fan_in, 1/√fan_in); the
 * class table (numClasses + 1 rows, the last the null token) PyTorch's nn.Embedding default N(0, 1).
 * Parameter i draws from Rng.fromSeed(seed).split(i), so the same config gives the same bits.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Rng, type Seed } from '../core/rng.js';
import { Tensor, formatShape } from '../core/tensor.js';
import { add, silu } from '../autograd/elementwise.js';
import { embedding } from '../autograd/embedding.js';
import { type Var, constant, param } from '../autograd/var.js';
import { linear } from '../nn/linear.js';
import { checkInteger, checkPositive } from './checks.js';
import { sinusoidalEmbedding } from './sinusoidal-embedding.js';

export interface ScalarCondition {
  readonly name: string;
  /** Multiplies the value before embedding (default 1): e.g. 1000 for GFT's β·1000. */
  readonly scale?: number;
  /** 'default' (PyTorch init) or 'zero' (the projection starts at 0). */
  readonly init?: 'default' | 'zero';
}

export interface ConditionalMlpConfig {
  readonly inputDim: number;
  /** Output dimension (default inputDim). */
  readonly outputDim?: number;
  /** Hidden width (default 128). */
  readonly hidden?: number;
  /** Number of hidden layers (default 3). */
  readonly layers?: number;
  /** Sinusoidal embedding width per scalar condition (default 64). */
  readonly embedDim?: number;
  readonly scalars?: readonly ScalarCondition[];
  /** Number of classes; 0 (default) for no class input. Label `numClasses` is the null token. */
  readonly numClasses?: number;
  readonly seed?: Seed;
}

export class ConditionalMlp {
  readonly config: Required<Omit<ConditionalMlpConfig, 'seed'>> & { seed: Seed };
  /** Parameters by name, in creation order (the names key a checkpoint). */
  readonly params: Record<string, Var>;

  constructor(config: ConditionalMlpConfig) {
    const c = {
      outputDim: config.inputDim,
      hidden: 128,
      layers: 3,
      embedDim: 64,
      scalars: [] as readonly ScalarCondition[],
      numClasses: 0,
      seed: 0 as Seed,
      ...config,
    };
    checkInteger('inputDim', c.inputDim, 1);
    checkInteger('outputDim', c.outputDim, 1);
    checkInteger('hidden', c.hidden, 1);
    checkInteger('layers', c.layers, 1);
    checkInteger('embedDim', c.embedDim, 2);
    checkInteger('numClasses', c.numClasses, 0);
    const names = new Set<string>();
    for (const s of c.scalars) {
      if (names.has(s.name) || !/^[a-z][a-zA-Z0-9]*$/.test(s.name)) {
        throw new UnsupportedOptionError(
          `scalar condition names must be unique identifiers; got '${s.name}'`,
        );
      }
      names.add(s.name);
      checkPositive(`scale of '${s.name}'`, s.scale ?? 1);
    }
    this.config = c;
    const root = Rng.fromSeed(c.seed);
    let index = 0;
    const params: Record<string, Var> = {};
    const uniform = (name: string, shape: number[], fanIn: number, zero = false) => {
      const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
      const bound = 1 / Math.sqrt(fanIn);
      if (!zero) root.split(index).fillUniform(data, -bound, bound);
      index++;
      params[name] = param(new Tensor(data, shape, 'float64'));
    };
    const H = c.hidden;
    uniform('in.weight', [H, c.inputDim], c.inputDim);
    uniform('in.bias', [H], c.inputDim);
    for (const s of c.scalars) uniform(`${s.name}.proj`, [H, c.embedDim], c.embedDim, s.init === 'zero');
    if (c.numClasses > 0) {
      const data = new Float64Array((c.numClasses + 1) * H);
      root.split(index++).fillNormal(data);
      params['class.embedding'] = param(new Tensor(data, [c.numClasses + 1, H], 'float64'));
    }
    for (let l = 1; l < c.layers; l++) {
      uniform(`hidden${l}.weight`, [H, H], H);
      uniform(`hidden${l}.bias`, [H], H);
    }
    uniform('out.weight', [c.outputDim, H], H);
    uniform('out.bias', [c.outputDim], H);
    this.params = params;
  }

  parameters(): Var[] {
    return Object.values(this.params);
  }

  /**
   * The network on a batch x [n, inputDim]; `scalars` holds n values per configured condition and
   * `labels` n class labels (0 … numClasses, the last the null token) when the network has classes.
   */
  forward(
    x: Var,
    scalars: Readonly<Record<string, ArrayLike<number>>> = {},
    labels?: ArrayLike<number>,
  ): Var {
    const c = this.config;
    if (x.shape.length !== 2 || x.shape[1] !== c.inputDim) {
      throw new ShapeError(`ConditionalMlp input must be [n, ${c.inputDim}]; got ${formatShape(x.shape)}`);
    }
    const n = x.shape[0];
    const fp32 = { mode: 'fp32' } as const;
    const p = this.params;
    let h = linear(x, p['in.weight'], p['in.bias'], fp32);
    for (const s of c.scalars) {
      const v = scalars[s.name];
      if (v === undefined || v.length !== n) {
        throw new ShapeError(
          `condition '${s.name}' needs ${n} values (one per row); got ${v?.length ?? 'none'}`,
        );
      }
      const scaled =
        s.scale === undefined || s.scale === 1 ? v : Float64Array.from(v, (u) => u * (s.scale as number));
      const emb = constant(sinusoidalEmbedding(scaled, c.embedDim));
      h = add(h, linear(emb, p[`${s.name}.proj`], undefined, fp32));
    }
    if (c.numClasses > 0) {
      if (labels === undefined) throw new ShapeError(`this network is class-conditional; pass ${n} labels`);
      if (labels.length !== n) throw new ShapeError(`labels needs ${n} entries; got ${labels.length}`);
      h = add(h, embedding(p['class.embedding'], labels));
    }
    h = silu(h);
    for (let l = 1; l < c.layers; l++)
      h = silu(linear(h, p[`hidden${l}.weight`], p[`hidden${l}.bias`], fp32));
    return linear(h, p['out.weight'], p['out.bias'], fp32);
  }
}
