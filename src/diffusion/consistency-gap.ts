/**
 * The consistency gap, measured (training_methods.md §5.2, §5.5 step 1): how far a preconditioned
 * jump is from the teacher's ODE solution. For a jump function f(x_t, t, s) — the teacher-initialised
 * student f = skip·x_t + out·D_φ(x_t, t), or a trained student — and x_t = x₀ + t·ε with x₀ from the
 * data, on every pair t > s of a time grid:
 *
 *   gap_x(t, s) = E‖f(x_t, t, s) − x_s^ODE‖ / √d                        (per-coordinate, data units)
 *   gap_D(t, s) = E‖D* − D_φ(x_t, t)‖ / E‖D_φ(x_t, t)‖,  D* = (x_s^ODE − skip·x_t)/out
 *
 * gap_D is the note's relative gap: the distance between the teacher and the denoiser that would make
 * the preconditioned jump exact — what a teacher-initialised student still has to learn. gap_x is the
 * same error seen where the loss is measured (x_s space); gap_x = out·‖D* − D_φ‖ for the
 * teacher-initialised jump. x_s^ODE comes from solveTeacherOdeAt (RK4 in ln t, steps ≤ 0.05).
 */
import type { Seed } from '../core/rng.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { F64 } from '../autograd/var.js';
import { checkInteger } from './checks.js';
import type { ConsistencyPreconditioning } from './consistency-preconditioning.js';
import { type EdmTeacher, solveTeacherOdeAt } from './teacher.js';

/** A jump x_t ↦ x̂_s for a batch with one (t, s). */
export type JumpFunction = (x: F64, t: number, s: number) => F64;

export interface GapPoint {
  t: number;
  s: number;
  /** ln(t/s). */
  logRatio: number;
  gapX: number;
  /** Only for teacher-initialised jumps (null for a trained student). */
  gapD: number | null;
}

export interface ConsistencyGapOptions {
  /** Decreasing times; every pair t > s is measured. */
  grid: readonly number[];
  /** Data samples per t (default 512). */
  samples?: number;
  seed?: Seed;
}

/** The teacher-initialised jump f = skip·x_t + out·D_φ(x_t, t) of a preconditioning. */
export function teacherInitialisedJump(
  teacher: EdmTeacher,
  precond: ConsistencyPreconditioning,
): JumpFunction {
  return (x, t, s) => {
    const { skip, out } = precond.coefficients(t, s);
    const D = teacher.denoise(x, t);
    return new Tensor(
      Float64Array.from(x.data, (v, i) => skip * v + out * D.data[i]),
      x.shape,
      'float64',
    );
  };
}

function norms(a: Float64Array, b: Float64Array | null, n: number, d: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (a[i * d + j] - (b === null ? 0 : b[i * d + j])) ** 2;
    total += Math.sqrt(s);
  }
  return total / n;
}

/** A jump to measure, and the preconditioning whose teacher-initialised jump it is (for gap_D). */
export interface NamedJump {
  readonly jump: JumpFunction;
  readonly precond?: ConsistencyPreconditioning;
}

/**
 * gap_x (and gap_D for jumps with a `precond`) on the grid, for several jumps at once: the teacher ODE
 * is solved once per t and shared. The same x₀ and ε (from the seed) are used at every t.
 */
export function consistencyGaps(
  teacher: EdmTeacher,
  jumps: Readonly<Record<string, NamedJump>>,
  opts: ConsistencyGapOptions,
): Record<string, GapPoint[]> {
  const { grid, samples = 512, seed = 0 } = opts;
  checkInteger('gap samples', samples, 1);
  const root = Rng.fromSeed(seed);
  const x0 = teacher.sampleData(samples, root.split(0));
  const eps = new Float64Array(x0.size);
  root.split(1).fillNormal(eps);
  const [n, d] = x0.shape;
  const out: Record<string, GapPoint[]> = Object.fromEntries(Object.keys(jumps).map((k) => [k, []]));
  for (let a = 0; a < grid.length; a++) {
    const t = grid[a];
    const below = grid.slice(a + 1).filter((s) => s < t);
    if (below.length === 0) continue;
    const xt = new Tensor(
      Float64Array.from(x0.data, (v, i) => v + t * eps[i]),
      x0.shape,
      'float64',
    );
    const odes = solveTeacherOdeAt(teacher, xt, t, below);
    const D = teacher.denoise(xt, t).data as Float64Array;
    const dNorm = norms(D, null, n, d);
    below.forEach((s, k) => {
      const xs = odes[k].data as Float64Array;
      for (const [name, { jump, precond }] of Object.entries(jumps)) {
        const f = jump(xt, t, s).data as Float64Array;
        let gapD: number | null = null;
        if (precond) {
          const { skip, out: o } = precond.coefficients(t, s);
          const star = Float64Array.from(xs, (v, i) => (v - skip * xt.data[i]) / o);
          gapD = norms(star, D, n, d) / dNorm;
        }
        out[name].push({ t, s, logRatio: Math.log(t / s), gapX: norms(f, xs, n, d) / Math.sqrt(d), gapD });
      }
    });
  }
  return out;
}
