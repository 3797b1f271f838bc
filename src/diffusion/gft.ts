/**
 * GFT, guidance-free training (Chen et al., "Visual Generation Without Guidance", ICML 2025, §3;
 * training_methods.md §3.1–§3.2; code `thu-ml/GFT` `DiT/diffusion/gaussian_diffusion.py::training_losses`
 * and `DiT/models.py`). The network is the *sampling* model ε^s_θ(x_t | c, β); the conditional model
 * is defined implicitly through it,
 *
 *   ε^c_θ(x_t | c) := β·ε^s_θ(x_t | c, β) + (1 − β)·sg[ε^u_θ(x_t | ∅, β = 1)],
 *
 * and trained with the ordinary diffusion loss ‖ε^c_θ − ε‖². Per sample β ~ U(β_min, β_max) = U(0, 1);
 * 10 % of labels are replaced by the null token, and those samples feed β = 1 to the network (the
 * model forces it, `torch.where(drop_ids, 1.0, beta)`) while the interpolation keeps the sampled β —
 * so they train the unconditional branch with their gradient scaled by β, exactly as the code does.
 * The unconditional branch ε^u runs without recording a graph and its output is detached (sg =
 * stop-gradient; the reference runs it in eval mode under no_grad — this MLP has no train/eval
 * difference). At the optimum ε^s = ε^u + (1/β)·(ε^c − ε^u) (paper Thm 1), i.e. CFG with w = 1/β, so
 * one forward at β = 1/w samples what CFG samples with two.
 *
 * `stopGradient: false` is the ablation the note asks for (§3.5, "run the sg-free variant"): the
 * unconditional branch is recorded and receives gradient (1 − β)·∂L.
 *
 * Random streams (shared with epsilonLoss so arms see the same draws): t split(0), ε split(1),
 * label dropout split(2), β split(3).
 */
import { ShapeError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { add, mul } from '../autograd/elementwise.js';
import { type F64, type Var, constant, noGrad } from '../autograd/var.js';
import { checkInRange } from './checks.js';
import { dropLabels, meanSquaredError, noiseBatch } from './epsilon-loss.js';
import type { EpsModel } from './models.js';
import type { VpSchedule } from './vp.js';

/** ε^s_θ(x_t | labels, β): t as float timestep indices, labels with `numClasses` the null token. */
export type GftNetwork = (xt: Var, t: Float64Array, labels: Int32Array, beta: Float64Array) => Var;

export interface GftLossOptions {
  schedule: VpSchedule;
  numClasses: number;
  /** Label dropout probability (default 0.1). */
  labelDropout?: number;
  /** β ~ U(betaMin, betaMax); defaults 0 and 1 (GFT's `min_beta`, `max_beta`). */
  betaMin?: number;
  betaMax?: number;
  /** Detach the unconditional branch (default true, as GFT); false is the sg-free ablation. */
  stopGradient?: boolean;
}

export interface GftLossResult {
  loss: Var;
  /** The sampled β per row (before dropped rows are forced to 1 at the network input). */
  beta: Float64Array;
  dropped: Uint8Array;
}

/** GFT's training loss for one batch (module comment). */
export function gftLoss(
  net: GftNetwork,
  x0: F64,
  labels: Int32Array,
  rng: Rng,
  opts: GftLossOptions,
): GftLossResult {
  const { schedule, numClasses, labelDropout = 0.1, betaMin = 0, betaMax = 1, stopGradient = true } = opts;
  checkInRange('betaMin', betaMin, 0, 1);
  checkInRange('betaMax', betaMax, betaMin, 1);
  const n = x0.shape[0];
  if (labels.length !== n) throw new ShapeError(`labels needs ${n} entries; got ${labels.length}`);
  const { xt, eps, t } = noiseBatch(x0, schedule, rng);
  const { labels: netLabels, dropped } = dropLabels(labels, numClasses, labelDropout, rng);
  const betaRng = rng.split(3);
  const beta = Float64Array.from({ length: n }, () => betaMin + (betaMax - betaMin) * betaRng.uniform());
  const netBeta = Float64Array.from(beta, (b, i) => (dropped[i] ? 1 : b));
  const x = constant(xt);
  const epsS = net(x, t, netLabels, netBeta);
  const nullLabels = new Int32Array(n).fill(numClasses);
  const ones = new Float64Array(n).fill(1);
  const epsU = stopGradient
    ? noGrad(() => net(x, t, nullLabels, ones)).detach()
    : net(x, t, nullLabels, ones);
  const b = constant(new Tensor(beta, [n, 1], 'float64'));
  const oneMinusB = constant(
    new Tensor(
      Float64Array.from(beta, (v) => 1 - v),
      [n, 1],
      'float64',
    ),
  );
  const epsC = add(mul(b, epsS), mul(oneMinusB, epsU));
  return { loss: meanSquaredError(epsC, constant(eps)), beta, dropped };
}

/** GFT's sampling temperature for a CFG scale: β = 1/w (w ≥ 1, so β ∈ (0, 1]). */
export function gftBetaForGuidance(w: number): number {
  checkInRange('GFT guidance scale w (β = 1/w needs w ≥ 1)', w, 1, Number.MAX_VALUE);
  return 1 / w;
}

/**
 * The one-forward sampler model of GFT at temperature β ∈ (0, 1]: ε^s_θ(x_t | labels, β), evaluated
 * without a graph; nfePerCall = 1 (CFG's is 2).
 */
export function gftEpsModel(net: GftNetwork, labels: Int32Array, beta: number): EpsModel {
  checkInRange('GFT sampling β', beta, 0, 1, { lo: true });
  const b = new Float64Array(labels.length).fill(beta);
  return {
    nfePerCall: 1,
    predict: (x, t) => noGrad(() => net(constant(x), new Float64Array(x.shape[0]).fill(t), labels, b).value),
  };
}
