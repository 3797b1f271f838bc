/**
 * A synthetic classification task the package generates (training_methods.md §1.11, data option A):
 * Gaussian inputs x ~ N(0, I_d) labelled by a seeded random "teacher" MLP
 * (d → hidden, tanh, → classes; weights N(0, 1/fan_in), the output layer scaled by `sharpness` so
 * the classes are not all decided by a tiny margin), with a fraction of training labels replaced by
 * a uniformly random class (label noise). Test labels are the teacher's, noise-free. Nothing is
 * shipped or downloaded, and the same seed gives the same task.
 */
import { Rng } from '../core/rng.js';

export interface TeacherTaskOptions {
  readonly inputs: number;
  readonly hidden: number;
  readonly classes: number;
  readonly train: number;
  readonly test: number;
  /** Share of training labels replaced by a random class. */
  readonly labelNoise: number;
  /** Multiplier of the teacher's output weights. */
  readonly sharpness: number;
}

export interface TeacherTask {
  readonly inputs: number;
  readonly classes: number;
  /** Row-major [train, inputs]. */
  readonly trainX: Float64Array;
  readonly trainY: Int32Array;
  readonly testX: Float64Array;
  readonly testY: Int32Array;
}

/** The task for `seed`: teacher from split(0), training inputs split(1), noise split(2), test split(3). */
export function teacherTask(o: TeacherTaskOptions, seed: number): TeacherTask {
  const root = Rng.fromSeed(seed);
  const tr = root.split(0);
  const w1 = new Float64Array(o.hidden * o.inputs);
  tr.fillNormal(w1, 0, 1 / Math.sqrt(o.inputs));
  const w2 = new Float64Array(o.classes * o.hidden);
  tr.fillNormal(w2, 0, o.sharpness / Math.sqrt(o.hidden));
  const h = new Float64Array(o.hidden);
  const label = (x: Float64Array, off: number): number => {
    for (let j = 0; j < o.hidden; j++) {
      let s = 0;
      for (let k = 0; k < o.inputs; k++) s += w1[j * o.inputs + k] * x[off + k];
      h[j] = Math.tanh(s);
    }
    let best = 0;
    let bestValue = -Infinity;
    for (let c = 0; c < o.classes; c++) {
      let s = 0;
      for (let j = 0; j < o.hidden; j++) s += w2[c * o.hidden + j] * h[j];
      if (s > bestValue) {
        bestValue = s;
        best = c;
      }
    }
    return best;
  };
  const make = (n: number, rng: Rng) => {
    const x = new Float64Array(n * o.inputs);
    rng.fillNormal(x);
    const y = Int32Array.from({ length: n }, (_, i) => label(x, i * o.inputs));
    return { x, y };
  };
  const train = make(o.train, root.split(1));
  const noise = root.split(2);
  for (let i = 0; i < o.train; i++) {
    const flip = noise.uniform() < o.labelNoise;
    const random = Math.floor(noise.uniform() * o.classes);
    if (flip) train.y[i] = random;
  }
  const test = make(o.test, root.split(3));
  return {
    inputs: o.inputs,
    classes: o.classes,
    trainX: train.x,
    trainY: train.y,
    testX: test.x,
    testY: test.y,
  };
}
