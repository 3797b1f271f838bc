/**
 * INT8 / INT4 quantization of Q or K with one float32 scale per token group (SA1 §4.3, SA2 §3.2;
 * sageattention.md §3.2, §4.2). The groups and the scale layout come from qk-scale-groups.ts; this
 * file chooses each group's scale δ and the codes round(x/δ).
 *
 * Scale formula, per granularity, as the reference quantizer of that granularity computes it
 * (float32 arithmetic throughout, qmax = 127 for int8, 7 for int4):
 * - 'per-thread': δ = amax/qmax + 1e-7 (`triton/quant_per_thread.py`).
 * - 'per-block', 'per-warp': δ = max(amax, 1e-7)/qmax — fused.cu `QuantInt8Kernel` starts its amax
 *   at 1e-7. The Triton per-block kernel (`triton/quant_per_block.py`) has no epsilon and gives 0/0
 *   for an all-zero block; sparq always uses the CUDA guard, which equals the Triton scale for every
 *   block with amax ≥ 1e-7.
 * - 'per-token' (no released reference quantizer): the CUDA guard, as per-block.
 * So an all-zero group — or a group with no valid token at the end of a partial tile — gets codes 0
 * and a small positive scale (1e-7 per-thread, 1e-7/qmax otherwise); its dequantized values are
 * exactly 0 and nothing is ever 0/0. Only valid tokens enter a group's amax: a partial block's scale
 * comes from its valid tokens (sageattention.md §6.2).
 *
 * Codes: round(fround(x/δ)) clamped to [−qmax, qmax] by numerics' quantizeInt. 'half-away' is the
 * Triton formula (x/δ + 0.5·sign, truncate) bit for bit; 'nearest-even' is `cvt.rni`. (The CUDA
 * kernels multiply by fround(127/amax) instead of dividing by δ, which can move a value that lies
 * within an ulp of a rounding boundary by one code; sparq divides, so codes always agree with the
 * stored δ.)
 *
 * Non-finite input: a group that holds NaN or ±inf gets scale NaN and codes 0, so everything that
 * depends on that group dequantizes to NaN and nothing else does.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { type Layout, assertLayout } from '../core/layout.js';
import { Tensor } from '../core/tensor.js';
import { quantizeInt } from '../numerics/int-quant.js';
import {
  DEFAULT_QK_TILING,
  type QKRole,
  type QKTiling,
  assertQKTiling,
  qkScaleCount,
  qkScaleIndex,
} from './qk-scale-groups.js';
import { readTokenRows, rowStart } from './token-rows.js';
import type { QKGranularity, QuantRounding, QuantizedTensor } from './types.js';

/** The reference epsilon (1e-7 as a float32 literal in both the Triton and the CUDA quantizers). */
export const QK_SCALE_EPSILON = Math.fround(1e-7);

/** δ of a group whose largest magnitude is `amax` (see the file comment for the per-granularity rule). */
export function intGroupScale(amax: number, bits: 8 | 4, granularity: QKGranularity): number {
  const qmax = bits === 8 ? 127 : 7;
  if (granularity === 'per-thread') return Math.fround(Math.fround(amax / qmax) + QK_SCALE_EPSILON);
  return Math.fround(Math.max(amax, QK_SCALE_EPSILON) / qmax);
}

export interface QuantizeIntGroupsOptions {
  /** Whether x is Q or K: they group tokens differently (qk-scale-groups.ts). */
  role: QKRole;
  bits: 8 | 4;
  granularity: QKGranularity;
  /** Default DEFAULT_QK_TILING (blockQ 128, warpQ 32, blockK 64, warpK 64). */
  tiling?: QKTiling;
  /** Layout of x and of the codes (default 'HND'). */
  layout?: Layout;
  /** Default 'nearest-even'. */
  rounding?: QuantRounding;
  /**
   * Factor applied to every value (a float32 multiply) before the group max and the codes, so δ
   * contains it: σ·log2e for per-block Q (sageattention.md §2). Default 1.
   */
  prescale?: number;
}

/**
 * Quantizes Q or K to int8/int4 codes (stored one per byte, dtype 'int8' or 'int4') in x's layout,
 * with float32 scales [B, heads, qkScaleCount(role, granularity, N, tiling)].
 */
export function quantizeIntGroups(x: Tensor, opts: QuantizeIntGroupsOptions): QuantizedTensor {
  const { role, bits, granularity } = opts;
  const tiling = opts.tiling ?? DEFAULT_QK_TILING;
  const layout = opts.layout ?? 'HND';
  const rounding = opts.rounding ?? 'nearest-even';
  const prescale = opts.prescale ?? 1;
  if (role !== 'q' && role !== 'k') {
    throw new UnsupportedOptionError(`role must be 'q' or 'k'; got ${JSON.stringify(role)}`);
  }
  if (bits !== 8 && bits !== 4) {
    throw new UnsupportedOptionError(`bits must be 8 or 4; got ${String(bits)}`);
  }
  assertLayout(layout);
  assertQKTiling(tiling);
  if (rounding !== 'nearest-even' && rounding !== 'half-away') {
    throw new UnsupportedOptionError(
      `rounding must be 'nearest-even' or 'half-away'; got ${JSON.stringify(rounding)}`,
    );
  }
  if (!(Number.isFinite(prescale) && prescale > 0)) {
    throw new UnsupportedOptionError(`prescale must be a finite number > 0; got ${String(prescale)}`);
  }

  const rows = readTokenRows(x, layout, role);
  const { dims, values } = rows;
  const { batch, heads, tokens, headDim } = dims;
  const count = qkScaleCount(role, granularity, tokens, tiling);
  const groupOf = Int32Array.from({ length: tokens }, (_, n) => qkScaleIndex(role, granularity, n, tiling));
  const scales = new Float32Array(batch * heads * count);
  const codes = new Int8Array(values.length);
  const amax = new Float64Array(count);
  const nonFinite = new Uint8Array(count);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      amax.fill(0);
      nonFinite.fill(0);
      for (let n = 0; n < tokens; n++) {
        const r = rowStart(dims, layout, b, h, n);
        const g = groupOf[n];
        for (let d = r; d < r + headDim; d++) {
          const v = prescale === 1 ? values[d] : Math.fround(values[d] * prescale);
          values[d] = v;
          if (!Number.isFinite(v)) nonFinite[g] = 1;
          else if (Math.abs(v) > amax[g]) amax[g] = Math.abs(v);
        }
      }
      const s0 = (b * heads + h) * count;
      for (let g = 0; g < count; g++) {
        scales[s0 + g] = nonFinite[g] ? NaN : intGroupScale(amax[g], bits, granularity);
      }
      for (let n = 0; n < tokens; n++) {
        const scale = scales[s0 + groupOf[n]];
        if (Number.isNaN(scale)) continue;
        const r = rowStart(dims, layout, b, h, n);
        quantizeInt(values.subarray(r, r + headDim), scale, {
          bits,
          rounding,
          out: codes.subarray(r, r + headDim),
        });
      }
    }
  }
  return {
    codes: new Tensor(codes, x.shape, bits === 8 ? 'int8' : 'int4'),
    scales: new Tensor(scales, [batch, heads, count], 'float32'),
  };
}
