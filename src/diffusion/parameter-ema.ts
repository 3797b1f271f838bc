/**
 * Exponential moving average of parameters, θ⁻ ← μ·θ⁻ + (1 − μ)·θ: the target network of consistency
 * distillation (Song et al. 2023 §3; CTM's "sg f_θ⁻" with μ = 0.999 in training_methods.md §5.5) and
 * the EMA weights diffusion models are sampled with (GFT's DiT uses 0.9999, §3.3).
 */
import { ShapeError } from '../core/errors.js';
import type { Var } from '../autograd/var.js';
import { checkInRange } from './checks.js';

/** target ← decay·target + (1 − decay)·source, parameter by parameter (in place on target's values). */
export function emaUpdate(target: readonly Var[], source: readonly Var[], decay: number): void {
  checkInRange('EMA decay', decay, 0, 1);
  if (target.length !== source.length) {
    throw new ShapeError(
      `EMA needs as many target as source parameters; got ${target.length} and ${source.length}`,
    );
  }
  target.forEach((t, i) => {
    const a = t.value.data as Float64Array;
    const b = source[i].value.data;
    if (a.length !== b.length) throw new ShapeError(`EMA parameter ${i}: ${a.length} vs ${b.length} values`);
    for (let k = 0; k < a.length; k++) a[k] = decay * a[k] + (1 - decay) * b[k];
  });
}

/** Copies source's parameter values into target (same architecture). */
export function copyParameters(target: readonly Var[], source: readonly Var[]): void {
  emaUpdate(target, source, 0);
}
