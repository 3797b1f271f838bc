/**
 * The two feed-forward blocks the low-bit experiments compare (training_methods.md §2.4):
 * - SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6; Llama's MLP):
 *   down(silu(gate(x)) ⊙ up(x)). The elementwise product of two projections is what grows the large,
 *   sparse outliers in the down-projection input that break block INT8 (Fallback Quantization's
 *   abstract, note §2.1).
 * - GELU (Vaswani et al. 2017 §3.3 with Hendrycks & Gimpel's GELU, as GPT-2): down(gelu(up(x))).
 *
 * Weights are [out, in] (PyTorch's nn.Linear layout, what `linear` takes). Each projection goes
 * through the caller's `project`, so the block's precision mode (and any per-layer state such as a
 * Q-EMA) is the caller's choice. The down projection's input is returned too: it is the tensor whose
 * outlier statistics the int8-glu experiment reports.
 */
import type { Var } from '../autograd/var.js';
import { mul, silu } from '../autograd/elementwise.js';
import { gelu } from '../autograd/gelu.js';

export type MlpKind = 'swiglu' | 'gelu';

export const MLP_KINDS: readonly MlpKind[] = ['swiglu', 'gelu'];

/** Which projection of the block a weight is. SwiGLU has all three; GELU has 'up' and 'down'. */
export type MlpProjection = 'gate' | 'up' | 'down';

/** The projections each kind has, in the order their weights are created. */
export function mlpProjections(kind: MlpKind): readonly MlpProjection[] {
  return kind === 'swiglu' ? ['gate', 'up', 'down'] : ['up', 'down'];
}

export interface MlpResult {
  readonly out: Var;
  /** The down projection's input [..., hidden]: silu(gate)⊙up, or gelu(up). */
  readonly downInput: Var;
}

/** Applies the block; `project(name, x)` computes x·Wᵀ for the named projection. */
export function mlp(x: Var, kind: MlpKind, project: (name: MlpProjection, x: Var) => Var): MlpResult {
  const downInput =
    kind === 'swiglu' ? mul(silu(project('gate', x)), project('up', x)) : gelu(project('up', x));
  return { out: project('down', downInput), downInput };
}
