/**
 * `linear(x, w, b, opts)`: Y = X·Wᵀ + b as one autograd op whose forward and backward GEMMs run in
 * the chosen precision mode, each with its own operand quantizers. X is [..., D] (leading axes are
 * tokens), W is [C, D], b is [C]; the op is registered as 'linear' on the cpu backend.
 *
 * Modes:
 * - 'fp32': exact float64 GEMMs, the reference.
 * - 'int8-block' (Jetfire, training_methods.md §2.2): X and W as 32×32-block INT8 with
 *   round-to-nearest; ∂Y as block INT8 with stochastic rounding, quantized once and used by both
 *   ∂X = ∂Y·W and ∂W = ∂Yᵀ·X (square blocks fit both orientations); every GEMM multiplies the
 *   integer codes and rescales per block pair.
 * - 'int8-fallback' (Fallback Quantization, §2.3 [recon]): as int8-block, but activation blocks the
 *   `fallback` criterion selects get an INT8 residual (≈16 bits), in the forward GEMM and in ∂W.
 *   Gradients do not fall back (the note leaves that unverified). `onFallback` receives the
 *   realised rate of every forward call.
 * - 'mxfp4' (TetraJet §3.3, Eq. 3–5; note §1.4): six MXFP4 quantizers with E8M0 scales per 32
 *   elements along each GEMM's reduction axis and the truncation-free scale 2^⌈log2(amax/6)⌉:
 *   Y = Q1_D(X)·Q2_D(W)ᵀ (1×32 groups along D); ∂X = Q3_S(∂Y)·Q4_S(Q2(W)) (groups along C);
 *   ∂W = Q5_S(∂Y)ᵀ·Q6_S(Q1(X)) (groups along the tokens). Q4 and Q6 re-quantize the forward's
 *   quantized tensors (double quantization, §3.4), so the gradient is an unbiased estimate of the
 *   straight-through gradient of the quantized forward. GEMMs are simulated on the dequantized
 *   operands, as TetraJet's code does.
 * - 'mxfp4-ocp': the same six quantizers with the OCP Microscaling scale 2^(⌊log2 amax⌋−2), which
 *   clips elements above 6 and so biases stochastic rounding (§1.2). (Microscaling's own backward,
 *   deterministic re-quantization of full-precision X and W, is not modelled.)
 *
 * The bias gradient of a quantized mode is the token sum of the quantized ∂Y that feeds ∂W (§1.4).
 * Stochastic rounding draws from Rng.fromSeed(seed).split(step).split(q), q the quantizer's number
 * (0 for int8's ∂Y; 3–6 for TetraJet's Q3–Q6), so a step is reproducible and a skipped gradient
 * (an input that needs none) does not shift the others' random bits.
 */
import { ShapeError, UnsupportedOptionError } from '../core/errors.js';
import { Rng, type Seed } from '../core/rng.js';
import { formatShape } from '../core/tensor.js';
import { f64 } from '../autograd/broadcast.js';
import { applyOp, registerOp } from '../autograd/op-table.js';
import type { F64, Var } from '../autograd/var.js';
import { type FallbackCriterion, type FallbackStats, quantizeInt8Fallback } from './fallback.js';
import {
  type Int8Blocks,
  INT8_BLOCK_SIZE,
  dequantizeInt8Blocks,
  int8BlockMatmul,
  quantizeInt8Blocks,
  transposeInt8Blocks,
} from './int8-blocks.js';
import { type Matrix, columnSums, gemm } from './matrix.js';
import { dequantizeMxfp4, quantizeMxfp4 } from './mxfp4-groups.js';
import { type WeightEma, quantizeForwardWeight } from './q-ema.js';

export type LinearMode = 'fp32' | 'int8-block' | 'int8-fallback' | 'mxfp4' | 'mxfp4-ocp';

export const LINEAR_MODES: readonly LinearMode[] = [
  'fp32',
  'int8-block',
  'int8-fallback',
  'mxfp4',
  'mxfp4-ocp',
];

export interface LinearOptions {
  mode: LinearMode;
  /** Seed of the backward's stochastic rounding (default 0). */
  seed?: Seed;
  /** Training step, selecting the seed's child stream (default 0); pass it so steps differ. */
  step?: number;
  /** INT8 block edge for 'int8-block' and 'int8-fallback' (default 32, Jetfire's). */
  blockSize?: number;
  /** Required for 'int8-fallback': which activation blocks fall back (§2.3 [recon]). */
  fallback?: FallbackCriterion;
  /** Called by each 'int8-fallback' forward with the realised fallback rate. */
  onFallback?: (stats: FallbackStats) => void;
  /**
   * 'mxfp4' / 'mxfp4-ocp' only: Q-EMA (TetraJet §5, Alg. 1). The forward weight quantizer Q2 picks,
   * between the two FP4 neighbours of each weight, the one nearer the weight's EMA (plain
   * round-to-nearest until the EMA's warm-up is over). Update the EMA after each optimizer step.
   */
  weightEma?: WeightEma;
}

type Saved =
  | { kind: 'fp32' }
  | { kind: 'int8'; xParts: Int8Blocks[]; wq: Int8Blocks }
  | { kind: 'mxfp4'; xd: Matrix; wd: Matrix };

function tokensByFeatures(t: F64, d: number): Matrix {
  return { data: t.data as Float64Array, rows: t.size / d, cols: d };
}

function int8Forward(x: Matrix, w: Matrix, opts: LinearOptions): { y: Matrix; saved: Saved } {
  const block = opts.blockSize ?? INT8_BLOCK_SIZE;
  const wq = quantizeInt8Blocks(w, { rounding: 'nearest-even', block });
  let xParts: Int8Blocks[];
  if (opts.mode === 'int8-fallback') {
    const fq = quantizeInt8Fallback(x, opts.fallback as FallbackCriterion, block);
    opts.onFallback?.(fq.stats);
    xParts = [fq.primary, fq.residual];
  } else {
    xParts = [quantizeInt8Blocks(x, { rounding: 'nearest-even', block })];
  }
  const wT = transposeInt8Blocks(wq);
  const y = new Float64Array(x.rows * w.rows);
  for (const part of xParts) int8BlockMatmul(part, wT).data.forEach((v, i) => (y[i] += v));
  return { y: { data: y, rows: x.rows, cols: w.rows }, saved: { kind: 'int8', xParts, wq } };
}

function mxfp4Forward(x: Matrix, w: Matrix, opts: LinearOptions): { y: Matrix; saved: Saved } {
  const scaleRule = opts.mode === 'mxfp4-ocp' ? 'ocp' : 'truncation-free';
  const xd = dequantizeMxfp4(quantizeMxfp4(x, { along: 'row', rounding: 'nearest-even', scaleRule }));
  if (opts.weightEma && opts.weightEma.value.length !== w.data.length) {
    throw new ShapeError(
      `the weight EMA holds ${opts.weightEma.value.length} values; the weight has ${w.data.length} (${w.rows}×${w.cols})`,
    );
  }
  const wq = opts.weightEma
    ? quantizeForwardWeight(w, opts.weightEma, { along: 'row', scaleRule })
    : quantizeMxfp4(w, { along: 'row', rounding: 'nearest-even', scaleRule });
  const wd = dequantizeMxfp4(wq);
  return { y: gemm(xd, false, wd, true), saved: { kind: 'mxfp4', xd, wd } };
}

registerOp<LinearOptions>('linear', 'cpu', {
  forward([x, w, b], opts) {
    const [c, d] = w.shape;
    if (w.shape.length !== 2 || x.shape.length < 1 || x.shape[x.shape.length - 1] !== d) {
      throw new ShapeError(
        `linear needs x [..., D] and w [C, D]; got ${formatShape(x.shape)} and ${formatShape(w.shape)}`,
      );
    }
    if (b !== undefined && (b.shape.length !== 1 || b.shape[0] !== c)) {
      throw new ShapeError(`linear bias must be [${c}]; got ${formatShape(b.shape)}`);
    }
    const xm = tokensByFeatures(x, d);
    const wm = tokensByFeatures(w, d);
    const { y, saved } =
      opts.mode === 'fp32'
        ? { y: gemm(xm, false, wm, true), saved: { kind: 'fp32' } as Saved }
        : opts.mode === 'mxfp4' || opts.mode === 'mxfp4-ocp'
          ? mxfp4Forward(xm, wm, opts)
          : int8Forward(xm, wm, opts);
    if (b !== undefined) for (let i = 0; i < y.data.length; i++) y.data[i] += b.data[i % c];
    return { out: f64(y.data, [...x.shape.slice(0, -1), c]), saved };
  },
  backward(g, { inputs: [x, w], saved, attrs: opts, needs }) {
    const [c, d] = w.shape;
    const gm = tokensByFeatures(g, c);
    const rng = Rng.fromSeed(opts.seed ?? 0).split(opts.step ?? 0);
    const s = saved as Saved;
    let dx: Matrix | null = null;
    let dw: Matrix | null = null;
    let gForBias = gm;
    if (s.kind === 'fp32') {
      if (needs[0]) dx = gemm(gm, false, tokensByFeatures(w, d), false);
      if (needs[1]) dw = gemm(gm, true, tokensByFeatures(x, d), false);
    } else if (s.kind === 'int8') {
      const gq = quantizeInt8Blocks(gm, { rounding: 'stochastic', rng: rng.split(0), block: s.wq.block });
      if (needs[0]) dx = int8BlockMatmul(gq, s.wq);
      if (needs[1]) {
        const gT = transposeInt8Blocks(gq);
        const parts = s.xParts.map((p) => int8BlockMatmul(gT, p).data);
        dw = { data: parts.reduce((acc, p) => acc.map((v, i) => v + p[i])), rows: c, cols: d };
      }
      gForBias = dequantizeInt8Blocks(gq);
    } else {
      const scaleRule = opts.mode === 'mxfp4-ocp' ? 'ocp' : 'truncation-free';
      const q = (m: Matrix, along: 'row' | 'column', stream: number): Matrix =>
        dequantizeMxfp4(
          quantizeMxfp4(m, { along, rounding: 'stochastic', scaleRule, rng: rng.split(stream) }),
        );
      if (needs[0]) dx = gemm(q(gm, 'row', 3), false, q(s.wd, 'column', 4), false);
      if (needs[1] || needs[2]) gForBias = q(gm, 'column', 5);
      if (needs[1]) dw = gemm(gForBias, true, q(s.xd, 'column', 6), false);
    }
    return [
      dx === null ? null : f64(dx.data, x.shape),
      dw === null ? null : f64(dw.data, w.shape),
      needs[2] ? f64(columnSums(gForBias), [c]) : null,
    ];
  },
});

/** Y = X·Wᵀ + b in precision mode `opts.mode` (see the module comment for each mode's quantizers). */
export function linear(x: Var, w: Var, b: Var | undefined, opts: LinearOptions): Var {
  if (!LINEAR_MODES.includes(opts.mode)) {
    throw new UnsupportedOptionError(
      `linear mode must be one of ${LINEAR_MODES.join(', ')}; got ${JSON.stringify(opts.mode)}`,
    );
  }
  if (opts.mode === 'int8-fallback' && opts.fallback === undefined) {
    throw new UnsupportedOptionError(
      "linear mode 'int8-fallback' needs a fallback criterion (opts.fallback)",
    );
  }
  return applyOp('linear', b === undefined ? [x, w] : [x, w, b], opts);
}
