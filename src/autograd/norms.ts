/**
 * Normalisation over the last axis with a learnable per-feature weight (and bias for LayerNorm).
 * With x̂ the normalised row, r its inverse scale, D the row length and ĝ = g ⊙ w:
 *   RMSNorm (Zhang & Sennrich 2019): r = 1/√(mean x² + ε), x̂ = x·r,
 *     ∂L/∂x = r (ĝ − x̂ · mean(ĝ ⊙ x̂))
 *   LayerNorm (Ba et al. 2016): r = 1/√(var x + ε) (biased variance), x̂ = (x − mean x)·r,
 *     ∂L/∂x = r (ĝ − mean ĝ − x̂ · mean(ĝ ⊙ x̂))
 * and ∂L/∂w = Σ_rows g ⊙ x̂, ∂L/∂b = Σ_rows g.
 */
import { formatShape } from '../core/tensor.js';
import { ShapeError } from '../core/errors.js';
import { applyOp, registerOp } from './op-table.js';
import { f64 } from './broadcast.js';
import type { F64, Var } from './var.js';

export interface NormOptions {
  /** Added to the mean square / variance (default 1e-6 for RMSNorm, 1e-5 for LayerNorm, as PyTorch/Llama). */
  eps?: number;
}

interface Attrs {
  eps: number;
  center: boolean;
}

interface Saved {
  xhat: Float64Array;
  r: Float64Array;
}

function normForward(x: F64, w: F64, b: F64 | undefined, { eps, center }: Attrs): { out: F64; saved: Saved } {
  const d = w.size;
  const rows = x.size / d;
  const xhat = new Float64Array(x.size);
  const r = new Float64Array(rows);
  const out = new Float64Array(x.size);
  for (let row = 0; row < rows; row++) {
    const o = row * d;
    let mu = 0;
    if (center) {
      for (let j = 0; j < d; j++) mu += x.data[o + j];
      mu /= d;
    }
    let ms = 0;
    for (let j = 0; j < d; j++) ms += (x.data[o + j] - mu) ** 2;
    r[row] = 1 / Math.sqrt(ms / d + eps);
    for (let j = 0; j < d; j++) {
      xhat[o + j] = (x.data[o + j] - mu) * r[row];
      out[o + j] = xhat[o + j] * w.data[j] + (b === undefined ? 0 : b.data[j]);
    }
  }
  return { out: f64(out, x.shape), saved: { xhat, r } };
}

function normBackward(g: F64, x: F64, w: F64, { xhat, r }: Saved, center: boolean): F64[] {
  const d = w.size;
  const gx = new Float64Array(x.size);
  const gw = new Float64Array(d);
  const gb = new Float64Array(d);
  for (let row = 0; row < r.length; row++) {
    const o = row * d;
    let meanG = 0;
    let meanGX = 0;
    for (let j = 0; j < d; j++) {
      const gh = g.data[o + j] * w.data[j];
      meanG += gh;
      meanGX += gh * xhat[o + j];
      gw[j] += g.data[o + j] * xhat[o + j];
      gb[j] += g.data[o + j];
    }
    meanG = center ? meanG / d : 0;
    meanGX /= d;
    for (let j = 0; j < d; j++) {
      gx[o + j] = r[row] * (g.data[o + j] * w.data[j] - meanG - xhat[o + j] * meanGX);
    }
  }
  return [f64(gx, x.shape), f64(gw, w.shape), f64(gb, w.shape)];
}

registerOp<Attrs>('rms_norm', 'cpu', {
  forward([x, w], attrs) {
    return normForward(x, w, undefined, attrs);
  },
  backward(g, { inputs: [x, w], saved }) {
    return normBackward(g, x, w, saved as Saved, false).slice(0, 2);
  },
});

registerOp<Attrs>('layer_norm', 'cpu', {
  forward([x, w, b], attrs) {
    return normForward(x, w, b, attrs);
  },
  backward(g, { inputs: [x, w], saved }) {
    return normBackward(g, x, w, saved as Saved, true);
  },
});

function checkFeature(op: string, x: Var, p: Var): void {
  const d = x.shape[x.shape.length - 1];
  if (x.shape.length === 0 || p.shape.length !== 1 || p.shape[0] !== d) {
    throw new ShapeError(
      `${op}: parameters must have shape [${d}] (the last axis of ${formatShape(x.shape)}); got ${formatShape(p.shape)}`,
    );
  }
}

/** RMSNorm over the last axis: x / √(mean x² + ε) ⊙ weight. */
export function rmsNorm(x: Var, weight: Var, opts: NormOptions = {}): Var {
  checkFeature('rmsNorm', x, weight);
  return applyOp<Attrs>('rms_norm', [x, weight], { eps: opts.eps ?? 1e-6, center: false });
}

/** LayerNorm over the last axis: (x − mean) / √(var + ε) ⊙ weight + bias. */
export function layerNorm(x: Var, weight: Var, bias: Var, opts: NormOptions = {}): Var {
  checkFeature('layerNorm', x, weight);
  checkFeature('layerNorm', x, bias);
  return applyOp<Attrs>('layer_norm', [x, weight, bias], { eps: opts.eps ?? 1e-5, center: true });
}
