/**
 * What SGD and AdamW share: a list of parameter Vars updated in place, per-parameter float64 state
 * slots (momentum buffers, moments), a count of applied updates, and the non-finite guard. A step
 * whose gradients hold any NaN or ±inf is skipped for every parameter — no value, slot or step count
 * changes — and `skippedSteps` counts it, as mixed-precision loss scalers do (PyTorch's GradScaler
 * skips `optimizer.step()` on inf/NaN), so one bad batch cannot poison the weights or the moments.
 */
import { DTypeError, ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import type { F64, Var } from '../autograd/var.js';

/** An optimizer's complete state: enough to continue bit-identically after `loadState`. */
export interface OptimizerState {
  /** Updates applied so far (skipped steps not included); AdamW's bias correction uses it. */
  step: number;
  /** Steps skipped because a gradient held NaN or ±inf. */
  skippedSteps: number;
  /** State slots as float64 tensors named `<slot>.<parameter index>`, e.g. `exp_avg.0`. */
  tensors: Record<string, F64>;
}

export interface Optimizer {
  readonly params: readonly Var[];
  /**
   * The learning rate η the next update uses. Set it between steps to follow a schedule (as a
   * PyTorch LR scheduler writes `param_groups[i]['lr']`); it is not part of `state()`, since a
   * schedule is a function of the step a resumed run recomputes.
   */
  lr: number;
  /** Updates applied so far. */
  readonly stepCount: number;
  /** Steps skipped because a gradient held NaN or ±inf. */
  readonly skippedSteps: number;
  /** Applies one update from the parameters' `.grad`; false when skipped for a non-finite gradient. */
  step(): boolean;
  /** Clears every parameter's gradient. */
  zeroGrad(): void;
  /** A copy of the state. */
  state(): OptimizerState;
  /** Replaces the state with a copy of `s`; ShapeError where a slot does not match its parameter. */
  loadState(s: OptimizerState): void;
}

/** True when no parameter's gradient holds NaN or ±inf (parameters without a gradient pass). */
export function gradientsAreFinite(params: readonly Var[]): boolean {
  for (const p of params) {
    if (p.grad === null) continue;
    const g = p.grad.data;
    for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i])) return false;
  }
  return true;
}

/**
 * Base for optimizers with per-parameter slots of the parameter's shape. Subclasses name their slots
 * and implement `update` for one parameter; the guard, counters, zeroGrad and state round trip live
 * here. A parameter whose `.grad` is null is left alone (as PyTorch does for `grad is None`).
 */
export abstract class SlotOptimizer implements Optimizer {
  readonly params: readonly Var[];
  private readonly slots: Record<string, Float64Array[]>;
  private applied = 0;
  private skipped = 0;
  private learningRate = 0;

  protected constructor(params: readonly Var[], slotNames: readonly string[]) {
    params.forEach((p, i) => {
      if (!p.requiresGrad) {
        throw new UnsupportedOptionError(
          `parameter ${i} (shape ${formatShape(p.shape)}) does not require a gradient; use param()`,
        );
      }
    });
    this.params = [...params];
    this.slots = Object.fromEntries(
      slotNames.map((name) => [name, this.params.map((p) => new Float64Array(p.value.size))]),
    );
  }

  get lr(): number {
    return this.learningRate;
  }

  set lr(value: number) {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new UnsupportedOptionError(`lr must be finite and ≥ 0; got ${value}`);
    }
    this.learningRate = value;
  }

  get stepCount(): number {
    return this.applied;
  }

  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * Updates parameter `index` in place from `grad`; `slots` are its state buffers by slot name and `t`
   * the 1-based number of this update.
   */
  protected abstract update(
    value: Float64Array,
    grad: Float64Array,
    slots: Record<string, Float64Array>,
    t: number,
  ): void;

  step(): boolean {
    if (!gradientsAreFinite(this.params)) {
      this.skipped++;
      return false;
    }
    const t = this.applied + 1;
    this.params.forEach((p, i) => {
      if (p.grad === null) return;
      const slots = Object.fromEntries(Object.entries(this.slots).map(([name, bufs]) => [name, bufs[i]]));
      this.update(p.value.data as Float64Array, p.grad.data as Float64Array, slots, t);
    });
    this.applied = t;
    return true;
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  state(): OptimizerState {
    const tensors: Record<string, F64> = {};
    for (const [name, bufs] of Object.entries(this.slots)) {
      bufs.forEach((buf, i) => {
        tensors[`${name}.${i}`] = new Tensor(Float64Array.from(buf), this.params[i].shape, 'float64');
      });
    }
    return { step: this.applied, skippedSteps: this.skipped, tensors };
  }

  loadState(s: OptimizerState): void {
    for (const key of ['step', 'skippedSteps'] as const) {
      if (!Number.isSafeInteger(s[key]) || s[key] < 0) {
        throw new DTypeError(`optimizer state ${key} must be a non-negative integer; got ${s[key]}`);
      }
    }
    const expected = new Set<string>();
    for (const [name, bufs] of Object.entries(this.slots)) {
      bufs.forEach((_, i) => {
        const key = `${name}.${i}`;
        expected.add(key);
        const t = s.tensors[key] as Tensor | undefined;
        const want = this.params[i].shape;
        if (t === undefined) {
          throw new ShapeError(
            `optimizer state has no tensor ${key} for parameter ${i} of shape ${formatShape(want)}`,
          );
        }
        if (t.dtype !== 'float64')
          throw new DTypeError(`optimizer state ${key} must be float64; got ${t.dtype}`);
        if (t.shape.length !== want.length || t.shape.some((d, j) => d !== want[j])) {
          throw new ShapeError(
            `optimizer state ${key} has shape ${formatShape(t.shape)}; parameter ${i} has shape ${formatShape(want)}`,
          );
        }
      });
    }
    const extra = Object.keys(s.tensors).filter((k) => !expected.has(k));
    if (extra.length > 0) {
      throw new ShapeError(
        `optimizer state has tensors this optimizer (${this.params.length} parameters) does not: ${extra.join(', ')}`,
      );
    }
    for (const [name, bufs] of Object.entries(this.slots)) {
      bufs.forEach((buf, i) => buf.set(s.tensors[`${name}.${i}`].data));
    }
    this.applied = s.step;
    this.skipped = s.skippedSteps;
  }
}
