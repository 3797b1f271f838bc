/**
 * The two kinds of operands the CPU block-sparse kernel multiplies, behind one small interface so the
 * tile loop (block-sparse-cpu.ts) is written once:
 *
 * - float: q, k, v as float32 values (float64 inputs keep float64), logits σ·log2e·q·k and
 *   P̃ = exp2(S − m) in float64, as the dense CPU kernel does (dense-cpu.ts);
 * - sage: codes and scales from the SageAttention quantizers (quantizeQK, quantizeV) with the Sage
 *   kernel's exact numerics (sage/kernel-cpu.ts): dequantized logits (+ ΔS), P̃ scaled to its static
 *   range, rounded to its format, and accumulated with the modelled accumulator (sage/accumulate.ts);
 *   O / l × δ_V + v̄ at the end and the LSE's smoothing correction (sageattention.md §6.4).
 *
 * Logits are in log2 units (the kernels' base-2 softmax, sparse_attention.md §1.3), which is also the
 * unit of SpargeAttn's stage-2 test.
 */
import { convertLayout, type Layout } from '../../core/layout.js';
import { Tensor } from '../../core/tensor.js';
import { LOG2E, log2eSmScale } from '../../quant/sm-scale-fold.js';
import type { QuantizedQK, QuantizedV } from '../../quant/types.js';
import { kvHeadOf, type AttentionProblem } from '../options.js';
import {
  type AccumulationPlan,
  accumulateBlock,
  accumulationPlan,
  mmaStep,
  rescaleAccumulator,
} from '../sage/accumulate.js';
import { addSmoothKCorrection, tokenGroupScales, valuesHnd, valuesOfV } from '../sage/kernel-cpu.js';
import type { SageConfig } from '../sage/presets.js';
import { pExponentOffset, quantizeP } from '../sage/p-quant.js';

export interface TileOperands {
  /** s[c] = the log2-unit logit of query i of (b, h) with key j0 + c, for c < count. */
  logits(b: number, h: number, i: number, j0: number, count: number, s: Float64Array): void;
  /** O ← α·O without adding anything (a tile whose P·V stage 2 skipped). */
  rescale(acc: Float64Array, alpha: number): void;
  /**
   * O ← α·O + P̃·V over the `count` visible keys j0 … j0 + count − 1 of a tile of `tileCols` keys (the
   * rest are masked and count as P̃ = 0); returns Σ P̃ (unquantized), the row's addition to l.
   */
  accumulate(
    acc: Float64Array,
    alpha: number,
    s: Float64Array,
    mNew: number,
    count: number,
    tileCols: number,
    b: number,
    h: number,
    j0: number,
  ): number;
  /** Writes O / l (and any finalization) to out[o …] and returns the natural-log LSE. */
  finish(acc: Float64Array, m: number, l: number, out: Float32Array, o: number, b: number, h: number): number;
  /** Per-call LSE corrections applied after every row is done (the Sage smoothK term). */
  finishLse?(lse: Float64Array): void;
}

/** Values as float32 in HND order (float64 inputs keep their precision), as dense-cpu.ts reads them. */
function toHnd(t: Tensor, layout: Layout): Float32Array | Float64Array {
  const values =
    t.dtype === 'float64'
      ? new Tensor(t.data, t.shape, 'float64')
      : new Tensor(t.toFloat32(), t.shape, 'float32');
  return convertLayout(values, layout, 'HND').data as Float32Array | Float64Array;
}

/** Plain float operands: S₂ = σ·log2e·q·k, P̃ = exp2(S₂ − m), everything in float64. */
export function floatOperands(q: Tensor, k: Tensor, v: Tensor, p: AttentionProblem): TileOperands {
  const { headsQ, headsKv, tokensQ, tokensKv, headDim: d } = p;
  const qh = toHnd(q, p.layout);
  const kh = toHnd(k, p.layout);
  const vh = toHnd(v, p.layout);
  const scale2 = p.smScale * Math.LOG2E;
  const kvBase = (b: number, h: number) => (b * headsKv + kvHeadOf(h, headsQ, headsKv)) * tokensKv * d;
  return {
    logits(b, h, i, j0, count, s) {
      const qRow = ((b * headsQ + h) * tokensQ + i) * d;
      const k0 = kvBase(b, h) + j0 * d;
      for (let c = 0; c < count; c++) {
        let dot = 0;
        const kRow = k0 + c * d;
        for (let x = 0; x < d; x++) dot += qh[qRow + x] * kh[kRow + x];
        s[c] = scale2 * dot;
      }
    },
    rescale(acc, alpha) {
      for (let x = 0; x < d; x++) acc[x] *= alpha;
    },
    accumulate(acc, alpha, s, mNew, count, _tileCols, b, h, j0) {
      for (let x = 0; x < d; x++) acc[x] *= alpha;
      const v0 = kvBase(b, h) + j0 * d;
      let sum = 0;
      for (let c = 0; c < count; c++) {
        const pc = 2 ** (s[c] - mNew);
        sum += pc;
        const vRow = v0 + c * d;
        for (let x = 0; x < d; x++) acc[x] += pc * vh[vRow + x];
      }
      return sum;
    },
    finish(acc, m, l, out, o) {
      for (let x = 0; x < d; x++) out[o + x] = acc[x] / l;
      return (m + Math.log2(l)) * Math.LN2;
    },
  };
}

/**
 * SageAttention operands (sage/kernel-cpu.ts, steps 1–5): S₂ = S_int·δ_Q·δ_K (· σ·log2e unless the
 * per-block δ_Q folds it) + ΔS·σ·log2e; P̃ = exp2(S₂ − m + log2 P_r) rounded to pFormat; PV accumulated
 * per key tile with the mode's accumulator; O / l × δ_V + v̄; LSE = (m + log2 l − log2 P_r)/log2e
 * + σ·(q·k̄) when K was smoothed.
 */
export function sageOperands(
  qk: QuantizedQK,
  vq: QuantizedV,
  config: SageConfig,
  p: AttentionProblem,
  q: Tensor,
): TileOperands {
  const { batch, headsQ, headsKv, tokensQ, tokensKv, headDim: d, layout } = p;
  const qVals = valuesHnd(qk.q.codes, layout);
  const kVals = valuesHnd(qk.k.codes, layout);
  const qScale = tokenGroupScales(qk, 'q', tokensQ, d);
  const kScale = tokenGroupScales(qk, 'k', tokensKv, d);
  const { groups, groupSize } = qScale;
  const { values: vVals, channelScale } = valuesOfV(vq, layout, tokensKv, d);
  const logitScale = qk.smScaleFolded ? 1 : log2eSmScale(qk.options.smScale);
  const deltaScale = log2eSmScale(qk.options.smScale);
  const deltaS = qk.deltaS?.data;
  const qBlocks = Math.ceil(tokensQ / qk.options.blockQ);
  const offset = pExponentOffset(config.pFormat, config.pScaling);
  const plan: AccumulationPlan = accumulationPlan(config.pvAccum);
  const step = mmaStep(config.pFormat);
  const kvHead = (b: number, h: number) => (b * headsKv + kvHeadOf(h, headsQ, headsKv)) * tokensKv;
  return {
    logits(b, h, i, j0, count, s) {
      const qRow = (b * headsQ + h) * tokensQ + i;
      const kHead = kvHead(b, h);
      const dsRow = deltaS ? ((b * headsQ + h) * qBlocks + Math.floor(i / qk.options.blockQ)) * tokensKv : 0;
      for (let c = 0; c < count; c++) {
        const kRow = kHead + j0 + c;
        let logit = 0;
        for (let g = 0; g < groups; g++) {
          const x1 = Math.min(d, (g + 1) * groupSize);
          let dot = 0;
          for (let x = g * groupSize; x < x1; x++) dot += qVals[qRow * d + x] * kVals[kRow * d + x];
          logit += dot * qScale.data[qRow * groups + g] * kScale.data[kRow * groups + g];
        }
        s[c] = logit * logitScale + (deltaS ? deltaS[dsRow + j0 + c] * deltaScale : 0);
      }
    },
    rescale(acc, alpha) {
      for (let x = 0; x < d; x++) acc[x] = rescaleAccumulator(acc[x], alpha, plan.running);
    },
    accumulate(acc, alpha, s, mNew, count, tileCols, b, h, j0) {
      const pTilde = new Float32Array(tileCols);
      let sum = 0;
      for (let c = 0; c < count; c++) {
        pTilde[c] = 2 ** (s[c] - mNew + offset);
        sum += pTilde[c];
      }
      const pq = quantizeP(pTilde, config.pFormat, config.rounding).values;
      accumulateBlock(acc, alpha, pq, vVals, (kvHead(b, h) + j0) * d, d, step, plan);
      return sum;
    },
    finish(acc, m, l, out, o, b, h) {
      const cs = (b * headsKv + kvHeadOf(h, headsQ, headsKv)) * d;
      for (let x = 0; x < d; x++) out[o + x] = (acc[x] / l) * channelScale[cs + x] + vq.vMean.data[cs + x];
      return (m + Math.log2(l) - offset) / LOG2E;
    },
    finishLse(lse) {
      if (qk.options.smoothK) {
        addSmoothKCorrection(lse, qk, { batch, headsQ, headsKv, tokensQ, headDim: d, layout }, q);
      }
    },
  };
}
