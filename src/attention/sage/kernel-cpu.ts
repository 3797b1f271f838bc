/**
 * The SageAttention kernel on the CPU: attention from already-quantized Q, K and V (the outputs of
 * quantizeQK and quantizeV), emulating the tensor-core kernels step by step (sageattention.md §2, §4.6
 * step 4–5, §6, §7.4). What the papers show to matter is modelled exactly — the dequantization groups,
 * the static P̃ range and its format, the accumulator formats and their flush period, the masking,
 * the finalization; the rest (logits, exp2, the denominator l) is float64 where the GPUs use fp32.
 */
import { ShapeError, UnsupportedOptionError } from '../../core/errors.js';
import { type Layout, convertLayout, layoutDims } from '../../core/layout.js';
import { Tensor, formatShape } from '../../core/tensor.js';
import { MXFP4_GROUP_SIZE } from '../../quant/mxfp4.js';
import { NVFP4_GROUP_SIZE } from '../../quant/nvfp4.js';
import { qkScaleIndex, type QKTiling } from '../../quant/qk-scale-groups.js';
import { LOG2E, log2eSmScale } from '../../quant/sm-scale-fold.js';
import type { PVFormat, QuantizedQK, QuantizedTensor, QuantizedV } from '../../quant/types.js';
import { visibleKeys } from '../causal.js';
import { type AttentionResult, type AttentionWithLse, type CausalAlignment, kvHeadOf } from '../options.js';
import { type PVAccum, accumulateBlock, accumulationPlan, mmaStep } from './accumulate.js';
import { assertPVCombination } from './options.js';
import { type PScaling, pExponentOffset, quantizeP } from './p-quant.js';

export interface SageKernelOptions {
  /** Causal masking (default false); keys are kept as in causal.ts (sageattention.md §6.3). */
  causal?: boolean;
  /** Default 'top-left' (SA2); 'bottom-right' is SA3's and the KV-cache one (§6.3). */
  causalAlignment?: CausalAlignment;
  /** Also return the natural-log LSE [B, Hq, Nq] (§6.4). */
  returnLse?: boolean;
  /** Format of P̃ (see p-quant.ts); must be of V's operand kind (options.ts). */
  pFormat: PVFormat;
  /** Scaling of NVFP4 P̃ (p-quant.ts PScaling): 'two-level' (default, SA3 §3.2) or 'direct'. */
  pScaling?: PScaling;
  /** PV accumulation (see accumulate.ts). */
  pvAccum: PVAccum;
  /**
   * The unquantized q, needed with `returnLse` when K was smoothed: the reference adds σ·(q·k̄) with
   * the input q after the kernel (§6.4, `lse_correction = q @ km`), which no quantized operand holds.
   */
  q?: Tensor;
  /**
   * Keys per online-softmax step (default: the quantizers' blockK, the reference kernels' CTA_K). The
   * running max that P̃ is quantized against, and the PV accumulation block, advance once per step,
   * so low-bit P depends on it: the reference is 64 on sm89 and 128 on sm90; sparq's WebGPU kernels
   * step every 32 keys (kernel-gpu.ts), and `tileK: 32` reproduces them.
   */
  tileK?: number;
}

const OPTION_KEYS: readonly string[] = [
  'causal',
  'causalAlignment',
  'returnLse',
  'pFormat',
  'pScaling',
  'pvAccum',
  'q',
  'tileK',
];

export function sageKernelCpu(
  qk: QuantizedQK,
  v: QuantizedV,
  opts: SageKernelOptions & { returnLse: true },
): AttentionWithLse<Tensor<'float32'>>;
export function sageKernelCpu(
  qk: QuantizedQK,
  v: QuantizedV,
  opts: SageKernelOptions & { returnLse?: false },
): Tensor<'float32'>;
export function sageKernelCpu(
  qk: QuantizedQK,
  v: QuantizedV,
  opts: SageKernelOptions,
): AttentionResult<Tensor<'float32'>>;
/**
 * Tiled base-2 online softmax over blockQ × blockK tiles (the tiles quantizeQK used), per query row:
 * 1. Logits in log2 units: S₂ = S_int·δ_Q·δ_K (· σ·log2e unless the per-block δ_Q folds it, §2)
 *    (+ ΔS·σ·log2e when Q was smoothed, SA2 Eq. 2 / SA3 Alg. 1 line 8). Integer kinds sum the codes
 *    exactly (the int32 MMA); microscaled kinds sum each 16/32-channel group and scale it.
 * 2. Keys past Nk are not in the tile and keys outside the causal window get P̃ = 0 (§6.2–6.3); a
 *    key tile a row cannot see leaves that row untouched, and a row that sees no key at all finishes
 *    as zeros with LSE −∞ (where the reference's −5e6 would give garbage, §2 "Masking").
 * 3. m' = max(m, rowmax S₂), α = exp2(m − m'), P̃ = exp2(S₂ − m' + log2 P_r) ∈ [0, P_r] (P_r the
 *    static range of pFormat and pScaling, e.g. 448 through the 8.807 offset, §4.3), l = α·l + Σ P̃ with P̃
 *    unquantized, so P_r cancels in O / l and in the LSE.
 * 4. P̂ = quantizeP(P̃) and O = α·O + P̂·V̂ with the accumulation of `pvAccum`, per key tile (§4.5, §5).
 * 5. Finalize: O / l (zeros when l = 0), × δ_V per channel (§4.4), + v̄ when V was smoothed (§4.4);
 *    LSE = (m + log2 l − log2 P_r) / log2e + σ·(q·k̄) when K was smoothed (§6.4).
 *
 * GQA reads kv head kvHeadOf(h). V must have been quantized in the layout of Q and K (its codes have
 * K's shape). The output is float32 in that layout.
 */
export function sageKernelCpu(
  qk: QuantizedQK,
  v: QuantizedV,
  opts: SageKernelOptions,
): AttentionResult<Tensor<'float32'>> {
  const k = resolveKernel(qk, v, opts);
  const { batch, headsQ, headsKv, tokensQ, tokensKv, headDim: d, layout } = k;
  const { blockQ } = qk.options;
  const blockK = opts.tileK ?? qk.options.blockK;
  if (!Number.isInteger(blockK) || blockK <= 0 || (k.pFormat === 'nvfp4' && blockK % 16 !== 0)) {
    throw new UnsupportedOptionError(
      `tileK must be a positive integer (a multiple of 16 with NVFP4 P); got ${JSON.stringify(opts.tileK)}`,
    );
  }
  const qVals = valuesHnd(qk.q.codes, layout);
  const kVals = valuesHnd(qk.k.codes, layout);
  const qScale = tokenGroupScales(qk, 'q', tokensQ, d);
  const kScale = tokenGroupScales(qk, 'k', tokensKv, d);
  const { groups, groupSize } = qScale;
  const { values: vVals, channelScale } = valuesOfV(v, layout, tokensKv, d);
  const logitScale = qk.smScaleFolded ? 1 : log2eSmScale(qk.options.smScale);
  const deltaScale = log2eSmScale(qk.options.smScale);
  const deltaS = qk.deltaS?.data;
  const qBlocks = Math.ceil(tokensQ / blockQ);
  const offset = pExponentOffset(k.pFormat, k.pScaling);
  const plan = accumulationPlan(k.pvAccum);
  const step = mmaStep(k.pFormat);
  const rounding = qk.options.rounding;

  const out = new Float32Array(batch * headsQ * tokensQ * d);
  const lse = new Float64Array(batch * headsQ * tokensQ);
  const s = new Float64Array(blockK);
  const m = new Float64Array(blockQ);
  const l = new Float64Array(blockQ);
  const acc = new Float64Array(blockQ * d);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < headsQ; h++) {
      const hk = kvHeadOf(h, headsQ, headsKv);
      const qHead = (b * headsQ + h) * tokensQ;
      const kHead = (b * headsKv + hk) * tokensKv;
      for (let i0 = 0; i0 < tokensQ; i0 += blockQ) {
        const rows = Math.min(blockQ, tokensQ - i0);
        m.fill(-Infinity);
        l.fill(0);
        acc.fill(0);
        const tileKeys = visibleKeys(i0 + rows - 1, k);
        for (let j0 = 0; j0 < tileKeys; j0 += blockK) {
          const tileCols = Math.min(blockK, tokensKv - j0);
          for (let r = 0; r < rows; r++) {
            const i = i0 + r;
            const seen = Math.min(tileCols, visibleKeys(i, k) - j0);
            if (seen <= 0) continue;
            const qRow = qHead + i;
            const dsRow = deltaS ? ((b * headsQ + h) * qBlocks + Math.floor(i / blockQ)) * tokensKv : 0;
            let tileMax = -Infinity;
            for (let c = 0; c < seen; c++) {
              const kRow = kHead + j0 + c;
              let logit = 0;
              for (let g = 0; g < groups; g++) {
                const x1 = Math.min(d, (g + 1) * groupSize);
                let dot = 0;
                for (let x = g * groupSize; x < x1; x++) dot += qVals[qRow * d + x] * kVals[kRow * d + x];
                logit += dot * qScale.data[qRow * groups + g] * kScale.data[kRow * groups + g];
              }
              s[c] = logit * logitScale + (deltaS ? deltaS[dsRow + j0 + c] * deltaScale : 0);
              tileMax = Math.max(tileMax, s[c]);
            }
            const mNew = Math.max(m[r], tileMax);
            if (mNew === -Infinity) continue;
            const alpha = 2 ** (m[r] - mNew);
            // masked keys of the tile stay 0, so MMA steps and NVFP4 groups see what the reference sees
            const pTilde = new Float32Array(tileCols);
            let rowSum = 0;
            for (let c = 0; c < seen; c++) {
              pTilde[c] = 2 ** (s[c] - mNew + offset);
              rowSum += pTilde[c];
            }
            l[r] = alpha * l[r] + rowSum;
            m[r] = mNew;
            const p = quantizeP(pTilde, k.pFormat, rounding).values;
            accumulateBlock(
              acc.subarray(r * d, (r + 1) * d),
              alpha,
              p,
              vVals,
              (kHead + j0) * d,
              d,
              step,
              plan,
            );
          }
        }
        for (let r = 0; r < rows; r++) {
          const row = qHead + i0 + r;
          if (m[r] === -Infinity || l[r] === 0) {
            lse[row] = -Infinity;
            continue;
          }
          const cs = (b * headsKv + hk) * d;
          for (let x = 0; x < d; x++) {
            out[row * d + x] = (acc[r * d + x] / l[r]) * channelScale[cs + x] + v.vMean.data[cs + x];
          }
          lse[row] = (m[r] + Math.log2(l[r]) - offset) / LOG2E;
        }
      }
    }
  }

  const result = convertLayout(new Tensor(out, [batch, headsQ, tokensQ, d], 'float32'), 'HND', layout);
  if (!k.returnLse) return result;
  if (qk.options.smoothK) addSmoothKCorrection(lse, qk, k, opts.q as Tensor);
  return { out: result, lse: new Tensor(Float32Array.from(lse), [batch, headsQ, tokensQ], 'float32') };
}

interface KernelProblem {
  batch: number;
  headsQ: number;
  headsKv: number;
  tokensQ: number;
  tokensKv: number;
  headDim: number;
  layout: Layout;
  causal: boolean;
  causalAlignment: CausalAlignment;
  returnLse: boolean;
  pFormat: PVFormat;
  pScaling: PScaling;
  pvAccum: PVAccum;
}

/** Validates the operands against each other and the options; dims come from the codes' shapes. */
function resolveKernel(qk: QuantizedQK, v: QuantizedV, opts: SageKernelOptions): KernelProblem {
  if (typeof opts !== 'object' || opts === null) {
    throw new UnsupportedOptionError(
      `sageKernelCpu needs options with pFormat and pvAccum; got ${JSON.stringify(opts)}`,
    );
  }
  for (const key of Object.keys(opts)) {
    if (!OPTION_KEYS.includes(key)) {
      throw new UnsupportedOptionError(
        `unknown sageKernelCpu option '${key}'; it accepts ${OPTION_KEYS.map((n) => `'${n}'`).join(', ')}`,
      );
    }
  }
  const layout = qk.options.layout;
  const qd = layoutDims(qk.q.codes.shape, layout, 'qk.q.codes');
  const kd = layoutDims(qk.k.codes.shape, layout, 'qk.k.codes');
  const sameShape = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  if (!sameShape(v.codes.shape, qk.k.codes.shape)) {
    throw new ShapeError(
      `v's codes must have k's shape (both quantized in layout '${layout}'); got v ${formatShape(v.codes.shape)} ` +
        `and k ${formatShape(qk.k.codes.shape)}`,
    );
  }
  if (qd.batch !== kd.batch || qd.headDim !== kd.headDim || qd.heads % kd.heads !== 0 || kd.tokens < 1) {
    throw new ShapeError(
      `quantized q ${formatShape(qk.q.codes.shape)} and k ${formatShape(qk.k.codes.shape)} do not fit ` +
        `(layout '${layout}'): batch and head dim must match, Hq must be a multiple of Hkv, Nk ≥ 1`,
    );
  }
  const causal = opts.causal ?? false;
  const causalAlignment = opts.causalAlignment ?? 'top-left';
  if (typeof causal !== 'boolean' || (causalAlignment !== 'top-left' && causalAlignment !== 'bottom-right')) {
    throw new UnsupportedOptionError(
      `causal must be a boolean and causalAlignment 'top-left' or 'bottom-right'; got ` +
        `${JSON.stringify(causal)} and ${JSON.stringify(causalAlignment)}`,
    );
  }
  const returnLse = opts.returnLse ?? false;
  if (typeof returnLse !== 'boolean') {
    throw new UnsupportedOptionError(`returnLse must be true or false; got ${JSON.stringify(returnLse)}`);
  }
  const pScaling = opts.pScaling ?? 'two-level';
  assertPVCombination({
    pFormat: opts.pFormat,
    pScaling,
    vFormat: v.format,
    pvAccum: opts.pvAccum,
    blockK: qk.options.blockK,
  });
  if (returnLse && qk.options.smoothK) {
    if (!(opts.q instanceof Tensor) || !sameShape(opts.q.shape, qk.q.codes.shape)) {
      throw new UnsupportedOptionError(
        `returnLse with smoothed K needs the unquantized q (option q, shape ${formatShape(qk.q.codes.shape)}) ` +
          `for the correction σ·(q·k̄) (sageattention.md §6.4); got ${opts.q === undefined ? 'none' : 'a different tensor'}`,
      );
    }
  }
  return {
    batch: qd.batch,
    headsQ: qd.heads,
    headsKv: kd.heads,
    tokensQ: qd.tokens,
    tokensKv: kd.tokens,
    headDim: qd.headDim,
    layout,
    causal,
    causalAlignment,
    returnLse,
    pFormat: opts.pFormat,
    pScaling,
    pvAccum: opts.pvAccum,
  };
}

/** Decoded code values in HND order (int codes as integers, FP codes as their values). */
export function valuesHnd(codes: Tensor, layout: Layout): Float32Array {
  return convertLayout(new Tensor(codes.toFloat32(), codes.shape, 'float32'), layout, 'HND')
    .data as Float32Array;
}

/**
 * The scales of Q or K as [B, heads, N, groups], groups of `groupSize` channels along the head dim
 * (the last one partial): one group of D for the int kinds and 'none' (δ of the token's scale group,
 * read with qkScaleIndex), 16 or 32 channels for NVFP4 / MXFP4, whose scale tensors already have
 * that layout.
 */
export function tokenGroupScales(
  qk: QuantizedQK,
  role: 'q' | 'k',
  tokens: number,
  headDim: number,
): { data: Float32Array; groups: number; groupSize: number } {
  const t: QuantizedTensor = qk[role];
  const quant = qk.options.quant;
  if (quant.kind === 'nvfp4' || quant.kind === 'mxfp4') {
    const groupSize = quant.kind === 'nvfp4' ? NVFP4_GROUP_SIZE : MXFP4_GROUP_SIZE;
    return { data: t.scales.data as Float32Array, groups: t.scales.shape[3], groupSize };
  }
  const [batch, heads, count] = t.scales.shape;
  const data = new Float32Array(batch * heads * tokens);
  const tiling: QKTiling = qk.options;
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let n = 0; n < tokens; n++) {
      const index = quant.kind === 'none' ? n : qkScaleIndex(role, quant.granularity, n, tiling);
      data[bh * tokens + n] = t.scales.data[bh * count + index];
    }
  }
  return { data, groups: 1, groupSize: headDim };
}

/**
 * V as the PV MMA sees it, HND, plus the per-channel factor applied at the end: FP8/INT8 codes with
 * δ_V [B, Hkv, D] applied after O / l (§4.4); fp16 values with factor 1; NVFP4 codes times their
 * 16-token group scale (the FP4 MMA applies block scales inside the product, §7.4) with factor 1.
 */
export function valuesOfV(
  v: QuantizedV,
  layout: Layout,
  tokens: number,
  d: number,
): { values: Float32Array; channelScale: Float32Array } {
  const values = valuesHnd(v.codes, layout);
  if (v.format !== 'nvfp4') return { values, channelScale: v.scales.data as Float32Array };
  const groups = v.scales.shape[2];
  const scales = v.scales.data;
  for (let bh = 0; bh < values.length / (tokens * d); bh++) {
    for (let n = 0; n < tokens; n++) {
      const g = (bh * groups + Math.floor(n / NVFP4_GROUP_SIZE)) * d;
      for (let x = 0; x < d; x++) values[(bh * tokens + n) * d + x] *= scales[g + x];
    }
  }
  return { values, channelScale: new Float32Array(v.vMean.size).fill(1) };
}

/**
 * The smoothK term of the LSE (sageattention.md §6.4): lse += σ·(q·k̄), the per-row constant that K
 * smoothing removed from every logit, with q the unquantized input (as `q @ km` in the reference).
 * Rows with LSE −∞ (no key seen) stay −∞.
 */
export function addSmoothKCorrection(
  lse: Float64Array,
  qk: QuantizedQK,
  k: Pick<KernelProblem, 'batch' | 'headsQ' | 'headsKv' | 'tokensQ' | 'headDim' | 'layout'>,
  q: Tensor,
): void {
  const { batch, headsQ, headsKv, tokensQ, headDim: d } = k;
  const qh = convertLayout(new Tensor(q.toFloat64(), q.shape, 'float64'), k.layout, 'HND').data;
  const kMean = qk.kMean.data;
  const sigma = qk.options.smScale;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < headsQ; h++) {
      const km = (b * headsKv + kvHeadOf(h, headsQ, headsKv)) * d;
      for (let i = 0; i < tokensQ; i++) {
        const row = (b * headsQ + h) * tokensQ + i;
        if (lse[row] === -Infinity) continue;
        let dot = 0;
        for (let x = 0; x < d; x++) dot += qh[row * d + x] * kMean[km + x];
        lse[row] += sigma * dot;
      }
    }
  }
}
