/**
 * The Q/K step of SageAttention (SA2 Alg. 1 lines 1–4, Fig. 3; sageattention.md §4.6 steps 1–3):
 * smooth K, optionally smooth Q and compute ΔS, then quantize both. The kernel takes the result as
 * is, so this is the one place that decides groups, scales, epsilons and rounding.
 *
 * Order of the steps (each a public quant/ primitive):
 * 1. smoothK (default on, SA1 §4.2): γ(K) = K − k̄ per (batch, kv head); k̄ is returned as kMean.
 * 2. smoothQ (default off, SA2 §3.1 / SA3 §7.3): γ(Q) = Q − q̄_i per blockQ tokens, and
 *    ΔS[i, j] = q̄_i·γ(K)[j] (float64 dot products rounded to float32), in plain q·k units — no σ and
 *    no log2e, whatever the granularity. Because QKᵀ = γ(Q)γ(K)ᵀ + ΔS + (a per-row constant q·k̄),
 *    the kernel computes S = dequant(γ(Q)̂·γ(K)̂ᵀ) + ΔS before applying σ·log2e. With per-block int
 *    scales δ_Q already contains σ·log2e, so there the kernel adds ΔS·σ·log2e (see QuantizedQK).
 * 3. quantize by `quant`:
 *    - int8/int4: quant/int-group-quant.ts with the groups of quant/qk-scale-groups.ts; per-block Q
 *      is multiplied by fround(σ·log2e) first, as `triton/quant_per_block.py` does, so its scales
 *      carry the factor (smScaleFolded: true). Scales [B, H, count_q] and [B, Hkv, count_k].
 *    - nvfp4 / mxfp4: quant/microscaling.ts along the head dim, scales [B, H, N, ⌈D/16⌉] /
 *      [B, H, N, ⌈D/32⌉]; σ is not folded (SA3 applies it in the kernel).
 *    - none: codes are the (smoothed) values as float32, scales are ones [B, H, N] (one per token,
 *      the per-token layout), so the same dequantize-and-multiply path runs unquantized — the
 *      ablation baseline for smoothing alone.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { type Layout, assertLayout } from '../../core/layout.js';
import { Tensor, formatShape } from '../../core/tensor.js';
import { kvHeadOf } from '../options.js';
import { quantizeIntGroups } from '../../quant/int-group-quant.js';
import { quantizeMicroscaled } from '../../quant/microscaling.js';
import { MX_SCALE_RULES } from '../../quant/mxfp4.js';
import { assertOptionKeys, booleanOption } from '../../quant/option-checks.js';
import {
  DEFAULT_QK_TILING,
  QK_GRANULARITIES,
  type QKTiling,
  assertQKTiling,
} from '../../quant/qk-scale-groups.js';
import { log2eSmScale } from '../../quant/sm-scale-fold.js';
import { subtractBlockMeans, subtractTokenMean } from '../../quant/smoothing.js';
import { rowStart, tokenDims } from '../../quant/token-rows.js';
import type {
  QKQuant,
  QuantRounding,
  QuantizeQKOptions,
  QuantizedQK,
  QuantizedTensor,
} from '../../quant/types.js';

const OPTION_KEYS: readonly (keyof QuantizeQKOptions)[] = [
  'layout',
  'quant',
  'smoothK',
  'smoothQ',
  'smScale',
  'blockQ',
  'warpQ',
  'blockK',
  'warpK',
  'rounding',
];

/** SA2's kernel default on sm80/sm89/sm90: INT8 with per-thread groups (sageattention.md §1.1). */
const DEFAULT_QUANT: QKQuant = { kind: 'int8', granularity: 'per-thread' };

/**
 * Smooths and quantizes Q and K for a SageAttention kernel. q is [B, H, Nq, D] ('HND') or
 * [B, Nq, H, D] ('NHD'); k is [B, Hkv, Nk, D] likewise, with H a multiple of Hkv (GQA: query head h
 * reads kv head kvHeadOf(h)). Codes come back in the input layout. Throws ShapeError, DTypeError or
 * UnsupportedOptionError for bad input, with what was expected and what was given.
 */
export function quantizeQK(q: Tensor, k: Tensor, opts?: QuantizeQKOptions): QuantizedQK {
  assertOptionKeys(opts, OPTION_KEYS, 'quantizeQK');
  const o: QuantizeQKOptions = opts ?? {};
  const layout: Layout = o.layout ?? 'HND';
  assertLayout(layout);
  const qd = tokenDims(q, layout, 'q');
  const kd = tokenDims(k, layout, 'k');
  const axes = layout === 'HND' ? '[B, H, N, D]' : '[B, N, H, D]';
  if (qd.batch !== kd.batch || qd.headDim !== kd.headDim) {
    throw new ShapeError(
      `q and k must have the same batch size and head dim; got q ${formatShape(q.shape)} and k ` +
        `${formatShape(k.shape)} (layout '${layout}' = ${axes})`,
    );
  }
  if (qd.headDim < 1 || qd.heads < 1 || kd.heads < 1) {
    throw new ShapeError(
      `q and k need a head dim and at least one head; got q ${formatShape(q.shape)} and k ${formatShape(k.shape)}`,
    );
  }
  if (qd.heads % kd.heads !== 0) {
    throw new ShapeError(
      `the number of query heads (${qd.heads}) must be a multiple of the number of kv heads (${kd.heads}) ` +
        `for grouped-query attention; got q ${formatShape(q.shape)} and k ${formatShape(k.shape)} ` +
        `(layout '${layout}' = ${axes})`,
    );
  }

  const quant = resolveQuant(o.quant);
  const smoothK = booleanOption(o.smoothK, 'smoothK', true);
  const smoothQ = booleanOption(o.smoothQ, 'smoothQ', false);
  const smScale = o.smScale ?? 1 / Math.sqrt(qd.headDim);
  if (typeof smScale !== 'number' || !Number.isFinite(smScale) || smScale <= 0) {
    throw new UnsupportedOptionError(
      `smScale must be a finite number > 0 (default 1/sqrt(D) = ${1 / Math.sqrt(qd.headDim)}); got ${String(smScale)}`,
    );
  }
  const tiling: QKTiling = {
    blockQ: o.blockQ ?? DEFAULT_QK_TILING.blockQ,
    warpQ: o.warpQ ?? DEFAULT_QK_TILING.warpQ,
    blockK: o.blockK ?? DEFAULT_QK_TILING.blockK,
    warpK: o.warpK ?? DEFAULT_QK_TILING.warpK,
  };
  assertQKTiling(tiling);
  const rounding: QuantRounding = o.rounding ?? 'nearest-even';
  if (rounding !== 'nearest-even' && rounding !== 'half-away') {
    throw new UnsupportedOptionError(
      `rounding must be 'nearest-even' (CUDA cvt.rni) or 'half-away' (the Triton quantizers); got ${JSON.stringify(rounding)}`,
    );
  }
  const isInt = quant.kind === 'int8' || quant.kind === 'int4';
  if (rounding === 'half-away' && !isInt) {
    throw new UnsupportedOptionError(
      `rounding 'half-away' applies to int8/int4 codes only; ${quant.kind} rounds to nearest even`,
    );
  }

  const kSmooth = smoothK ? subtractTokenMean(k, { layout }) : null;
  const kMean =
    kSmooth?.mean ??
    new Tensor(
      new Float32Array(kd.batch * kd.heads * kd.headDim),
      [kd.batch, kd.heads, kd.headDim],
      'float32',
    );
  const kIn = kSmooth?.smoothed ?? k;
  const qSmooth = smoothQ ? subtractBlockMeans(q, tiling.blockQ, { layout }) : null;
  const qIn = qSmooth?.smoothed ?? q;

  let qq: QuantizedTensor;
  let kq: QuantizedTensor;
  const smScaleFolded = isInt && quant.granularity === 'per-block';
  if (quant.kind === 'int8' || quant.kind === 'int4') {
    const common = {
      bits: quant.kind === 'int8' ? 8 : 4,
      granularity: quant.granularity,
      tiling,
      layout,
      rounding,
    } as const;
    qq = quantizeIntGroups(qIn, {
      ...common,
      role: 'q',
      prescale: smScaleFolded ? log2eSmScale(smScale) : 1,
    });
    kq = quantizeIntGroups(kIn, { ...common, role: 'k' });
  } else if (quant.kind === 'nvfp4' || quant.kind === 'mxfp4') {
    const common = {
      format: quant.kind,
      axis: 'channels',
      layout,
      scaleRule: quant.kind === 'mxfp4' ? quant.scaleRule : undefined,
    } as const;
    qq = quantizeMicroscaled(qIn, common);
    kq = quantizeMicroscaled(kIn, common);
  } else {
    qq = unquantized(qIn, qd.batch, qd.heads, qd.tokens);
    kq = unquantized(kIn, kd.batch, kd.heads, kd.tokens);
  }

  const result: QuantizedQK = {
    q: qq,
    k: kq,
    kMean,
    smScaleFolded,
    options: { layout, quant, smoothK, smoothQ, smScale, ...tiling, rounding },
  };
  if (qSmooth) {
    result.qMean = qSmooth.mean;
    result.deltaS = deltaS(qSmooth.mean, kIn, layout);
  }
  return result;
}

/**
 * ΔS[b, h, i, j] = q̄_i · γ(K)[b, kvHeadOf(h), j] (SA2 Eq. 2; SA3 `delta_s = q̄·Kᵀ` in fp32): the
 * smoothed K in float32, each dot product accumulated in float64. Shape [B, H, blocks, Nk].
 */
function deltaS(qMean: Tensor<'float32'>, kSmoothed: Tensor, layout: Layout): Tensor<'float32'> {
  const [batch, heads, blocks, headDim] = qMean.shape;
  const kd = tokenDims(kSmoothed, layout, 'k');
  const kv = kSmoothed.toFloat32();
  const qm = qMean.data;
  const out = new Float32Array(batch * heads * blocks * kd.tokens);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const hk = kvHeadOf(h, heads, kd.heads);
      for (let i = 0; i < blocks; i++) {
        const m = ((b * heads + h) * blocks + i) * headDim;
        const o = ((b * heads + h) * blocks + i) * kd.tokens;
        for (let j = 0; j < kd.tokens; j++) {
          const r = rowStart(kd, layout, b, hk, j);
          let s = 0;
          for (let d = 0; d < headDim; d++) s += qm[m + d] * kv[r + d];
          out[o + j] = s;
        }
      }
    }
  }
  return new Tensor(out, [batch, heads, blocks, kd.tokens], 'float32');
}

/**
 * quant 'none': the values as float32 codes (always a copy, never the caller's storage) with unit
 * per-token scales [B, H, N].
 */
function unquantized(x: Tensor, batch: number, heads: number, tokens: number): QuantizedTensor {
  return {
    codes: new Tensor(x.toFloat32(), x.shape, 'float32'),
    scales: new Tensor(new Float32Array(batch * heads * tokens).fill(1), [batch, heads, tokens], 'float32'),
  };
}

/** Validates `quant` and fills in its defaults (mxfp4's scaleRule). */
function resolveQuant(quant: unknown): QKQuant {
  if (quant === undefined) return DEFAULT_QUANT;
  if (typeof quant !== 'object' || quant === null || Array.isArray(quant)) {
    throw new UnsupportedOptionError(
      `quant must be an object such as { kind: 'int8', granularity: 'per-thread' }; got ${JSON.stringify(quant)}`,
    );
  }
  const kind = (quant as { kind?: unknown }).kind;
  switch (kind) {
    case 'int8':
    case 'int4': {
      assertOptionKeys(quant, ['kind', 'granularity'], `quant '${kind}'`);
      const granularity = (quant as { granularity?: unknown }).granularity;
      if (!QK_GRANULARITIES.includes(granularity as never)) {
        throw new UnsupportedOptionError(
          `quant '${kind}' needs granularity ${QK_GRANULARITIES.map((g) => `'${g}'`).join(', ')}; ` +
            `got ${JSON.stringify(granularity)}`,
        );
      }
      return { kind, granularity } as QKQuant;
    }
    case 'mxfp4': {
      assertOptionKeys(quant, ['kind', 'scaleRule'], `quant 'mxfp4'`);
      const scaleRule = (quant as { scaleRule?: unknown }).scaleRule ?? 'truncation-free';
      if (!MX_SCALE_RULES.includes(scaleRule as never)) {
        throw new UnsupportedOptionError(
          `quant 'mxfp4' scaleRule must be 'truncation-free' (TetraJet, default) or 'ocp'; got ${JSON.stringify(scaleRule)}`,
        );
      }
      return { kind, scaleRule } as QKQuant;
    }
    case 'nvfp4':
    case 'none':
      assertOptionKeys(quant, ['kind'], `quant '${kind}'`);
      return { kind };
    default:
      throw new UnsupportedOptionError(
        `quant.kind must be 'int8', 'int4', 'nvfp4', 'mxfp4' or 'none'; got ${JSON.stringify(kind)}`,
      );
  }
}
