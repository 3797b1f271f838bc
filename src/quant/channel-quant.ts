/**
 * Per-channel quantization of V (SA2 §3.3; sageattention.md §4.4; fused.cu `MeanScaleKernel`): one
 * scale per (batch, head, channel), taken over all tokens. Per-channel works for V, unlike Q and K,
 * because the channel is not PV's contraction axis: O[:, c] = P·V[:, c] × δ_V[c], applied once at
 * the end.
 *
 * For each channel c: amax_c = max_tokens |V[:, c]|, δ_V[c] = fround(amax_c/scaleMax), and
 * code = format(fround(v · fround(scaleMax/amax_c))) — the reference multiplies by the reciprocal,
 * and so does sparq. FP8 formats round to nearest even and saturate (`cvt.rn.satfinite`); INT8
 * rounds half to even and clamps to [−127, 127] (SA1's SAGEAttn-vT/vB INT8 V, never released, so
 * there is no reference rounding to follow).
 *
 * scaleMax: 448 for E4M3 (the default), 57344 for E5M2, 127 for INT8, or smaller — SA2++ uses 2.25
 * for E4M3 so that 64·448·2.25 stays below fp16's 65504 (sageattention.md §5).
 *
 * All-zero channel: the reference computes 0·(scaleMax/0) = NaN. sparq gives scale 0 and codes 0,
 * so it dequantizes to exactly 0. A channel holding NaN or ±inf gets scale NaN and codes 0. A channel so
 * small that scaleMax/amax overflows float32 is scaled in float64 (see scaleValue), never to NaN.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { type Layout, assertLayout } from '../core/layout.js';
import { Tensor } from '../core/tensor.js';
import { encode } from '../numerics/encode.js';
import { roundToInteger } from '../numerics/int-quant.js';
import { readTokenRows, rowStart } from './token-rows.js';
import type { QuantizedTensor } from './types.js';

export type ChannelFormat = 'float8_e4m3fn' | 'float8_e5m2' | 'int8';

const FORMAT_MAX: Readonly<Record<ChannelFormat, number>> = {
  float8_e4m3fn: 448,
  float8_e5m2: 57344,
  int8: 127,
};

/** The default scaleMax of a format: its largest finite magnitude (448, 57344, 127). */
export function defaultChannelScaleMax(format: ChannelFormat): number {
  return FORMAT_MAX[format];
}

export interface QuantizePerChannelOptions {
  format: ChannelFormat;
  /** Largest code magnitude a channel's amax maps to; in (0, format max]. Default the format max. */
  scaleMax?: number;
  /** Layout of x and of the codes (default 'HND'). */
  layout?: Layout;
}

/** Codes in x's layout (dtype = format) and scales [B, H, D]. */
export function quantizePerChannel(x: Tensor, opts: QuantizePerChannelOptions): QuantizedTensor {
  const { format } = opts;
  const layout = opts.layout ?? 'HND';
  if (!Object.hasOwn(FORMAT_MAX, format)) {
    throw new UnsupportedOptionError(
      `per-channel format must be 'float8_e4m3fn', 'float8_e5m2' or 'int8'; got ${JSON.stringify(format)}`,
    );
  }
  const scaleMax = opts.scaleMax ?? FORMAT_MAX[format];
  if (!(typeof scaleMax === 'number' && scaleMax > 0 && scaleMax <= FORMAT_MAX[format])) {
    throw new UnsupportedOptionError(
      `scaleMax for ${format} must be a number in (0, ${FORMAT_MAX[format]}] (e.g. 448 for E4M3, or 2.25 ` +
        `for SA2++'s fp16 accumulation); got ${String(scaleMax)}`,
    );
  }
  assertLayout(layout);

  const { dims, values } = readTokenRows(x, layout, 'v');
  const { batch, heads, tokens, headDim } = dims;
  const scales = new Float32Array(batch * heads * headDim);
  const codes = format === 'int8' ? new Int8Array(values.length) : new Uint8Array(values.length);
  const amax = new Float64Array(headDim);
  const finite = new Uint8Array(headDim);
  const factor = new Float32Array(headDim);
  const scaled = new Float32Array(headDim);
  const rowCodes = new Uint8Array(headDim);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      amax.fill(0);
      finite.fill(1);
      for (let n = 0; n < tokens; n++) {
        const r = rowStart(dims, layout, b, h, n);
        for (let c = 0; c < headDim; c++) {
          const v = values[r + c];
          if (!Number.isFinite(v)) finite[c] = 0;
          else if (Math.abs(v) > amax[c]) amax[c] = Math.abs(v);
        }
      }
      const s0 = (b * heads + h) * headDim;
      for (let c = 0; c < headDim; c++) {
        scales[s0 + c] = finite[c] ? amax[c] / scaleMax : NaN;
        // 0 for all-zero and non-finite channels: their codes stay 0
        factor[c] = finite[c] && amax[c] > 0 ? scaleMax / amax[c] : 0;
      }
      for (let n = 0; n < tokens; n++) {
        const r = rowStart(dims, layout, b, h, n);
        for (let c = 0; c < headDim; c++) scaled[c] = scaleValue(values[r + c], factor[c], amax[c], scaleMax);
        if (format === 'int8') {
          for (let c = 0; c < headDim; c++) {
            const q = roundToInteger(scaled[c], 'nearest-even');
            codes[r + c] = Math.max(-127, Math.min(127, q));
          }
        } else {
          encode(format, scaled, { saturate: true, out: rowCodes });
          codes.set(rowCodes, r);
        }
      }
    }
  }
  return {
    codes: new Tensor(codes, x.shape, format),
    scales: new Tensor(scales, [batch, heads, headDim], 'float32'),
  };
}

/**
 * fround(v · factor), the reference's step. factor 0 marks a channel whose codes stay 0. When
 * scaleMax/amax overflowed float32 (amax below about scaleMax·2^-128, e.g. a subnormal channel) the
 * product would be ±inf or 0·inf = NaN, so v/amax·scaleMax is taken in float64 instead.
 */
function scaleValue(v: number, factor: number, amax: number, scaleMax: number): number {
  if (factor === 0) return 0;
  return factor === Infinity ? (v / amax) * scaleMax : v * factor;
}
