/**
 * Elementwise ops from one spec each: the forward formula and its derivative, so the CPU kernel and
 * its backward come from the same few lines (webgpu-torch's idea). Binary ops broadcast as NumPy.
 */
import { shapeSize, tensor } from '../core/tensor.js';
import { applyOp, registerOp } from './op-table.js';
import { broadcastIndex, broadcastShapes, f64, reduceToShape } from './broadcast.js';
import { Var, constant } from './var.js';

export interface UnarySpec {
  f(x: number): number;
  /** dy/dx given the input x and the output y. */
  df(x: number, y: number): number;
}

interface BinarySpec {
  f(a: number, b: number): number;
  da(a: number, b: number): number;
  db(a: number, b: number): number;
}

export function defineUnary(name: string, spec: UnarySpec): (x: Var) => Var {
  registerOp<undefined>(name, 'cpu', {
    forward([x]) {
      const out = new Float64Array(x.size);
      for (let i = 0; i < out.length; i++) out[i] = spec.f(x.data[i]);
      return { out: f64(out, x.shape) };
    },
    backward(g, { inputs: [x], out }) {
      const gx = new Float64Array(x.size);
      for (let i = 0; i < gx.length; i++) gx[i] = g.data[i] * spec.df(x.data[i], out.data[i]);
      return [f64(gx, x.shape)];
    },
  });
  return (x) => applyOp(name, [x], undefined);
}

function defineBinary(name: string, spec: BinarySpec): (a: Var | number, b: Var | number) => Var {
  registerOp<undefined>(name, 'cpu', {
    forward([a, b]) {
      const shape = broadcastShapes(a.shape, b.shape);
      const out = new Float64Array(shapeSize(shape));
      // Same-shape operands (the common case: residuals, products of activations) need no index maps.
      if (sameShape(a.shape, b.shape)) {
        const x = a.data;
        const y = b.data;
        for (let k = 0; k < out.length; k++) out[k] = spec.f(x[k], y[k]);
        return { out: f64(out, shape), saved: null };
      }
      const ia = broadcastIndex(shape, a.shape);
      const ib = broadcastIndex(shape, b.shape);
      for (let k = 0; k < out.length; k++) out[k] = spec.f(a.data[ia[k]], b.data[ib[k]]);
      return { out: f64(out, shape), saved: [ia, ib] };
    },
    backward(g, { inputs: [a, b], saved, needs }) {
      const ga = needs[0] ? new Float64Array(g.size) : null;
      const gb = needs[1] ? new Float64Array(g.size) : null;
      if (saved === null) {
        for (let k = 0; k < g.size; k++) {
          const x = a.data[k];
          const y = b.data[k];
          if (ga !== null) ga[k] = g.data[k] * spec.da(x, y);
          if (gb !== null) gb[k] = g.data[k] * spec.db(x, y);
        }
        return [ga === null ? null : f64(ga, a.shape), gb === null ? null : f64(gb, b.shape)];
      }
      const [ia, ib] = saved as [Int32Array, Int32Array];
      for (let k = 0; k < g.size; k++) {
        const x = a.data[ia[k]];
        const y = b.data[ib[k]];
        if (ga !== null) ga[k] = g.data[k] * spec.da(x, y);
        if (gb !== null) gb[k] = g.data[k] * spec.db(x, y);
      }
      return [
        ga === null ? null : reduceToShape(f64(ga, g.shape), a.shape),
        gb === null ? null : reduceToShape(f64(gb, g.shape), b.shape),
      ];
    },
  });
  return (a, b) => applyOp(name, [lift(a), lift(b)], undefined);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A number as a scalar constant (shape [], broadcasts against anything). */
export function lift(x: Var | number): Var {
  return typeof x === 'number' ? constant(tensor(new Float64Array([x]), [], 'float64')) : x;
}

export const add = defineBinary('add', { f: (a, b) => a + b, da: () => 1, db: () => 1 });
export const sub = defineBinary('sub', { f: (a, b) => a - b, da: () => 1, db: () => -1 });
export const mul = defineBinary('mul', { f: (a, b) => a * b, da: (_, b) => b, db: (a) => a });
/** a / b; ∂/∂a = 1/b, ∂/∂b = −a/b². */
export const div = defineBinary('div', {
  f: (a, b) => a / b,
  da: (_, b) => 1 / b,
  db: (a, b) => -a / (b * b),
});

export const neg = defineUnary('neg', { f: (x) => -x, df: () => -1 });
export const exp = defineUnary('exp', { f: Math.exp, df: (_, y) => y });
export const log = defineUnary('log', { f: Math.log, df: (x) => 1 / x });
/** d tanh(x)/dx = 1 − tanh²(x). */
export const tanh = defineUnary('tanh', { f: Math.tanh, df: (_, y) => 1 - y * y });
/** Subgradient 0 at x = 0, as PyTorch. */
export const relu = defineUnary('relu', { f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : 0) });

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** SiLU / swish, x·σ(x) (Elfwing et al. 2017; Ramachandran et al. 2017); d/dx = σ(x)(1 + x(1 − σ(x))). */
export const silu = defineUnary('silu', {
  f: (x) => x * sigmoid(x),
  df: (x) => {
    const s = sigmoid(x);
    return s * (1 + x * (1 - s));
  },
});
