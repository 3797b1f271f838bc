/**
 * Microscaled FP4 quantization (SA3 §3.1–3.2; sageattention.md §7.1–7.2): E2M1 elements in small
 * groups that share one scale — NVFP4 (16 elements, E4M3 scale, nvfp4.ts) or MXFP4 (32 elements,
 * E8M0 scale, mxfp4.ts). Groups run along the contraction axis of the product the operand enters:
 * - axis 'channels' (Q and K in QKᵀ): 16/32 consecutive channels of one token; scales
 *   [B, H, N, ⌈D/g⌉].
 * - axis 'tokens' (V in PV, which SA3 transposes first): 16/32 consecutive tokens of one channel;
 *   scales [B, H, ⌈N/g⌉, D].
 * A partial last group (D or N not a multiple of g) takes its scale from its valid elements, as the
 * reference's zero padding does.
 *
 * Element step, as `fp4_quantization_4d.cu`: inv = s̃ = 0 ? 0 : fround(1/s̃), then
 * code = E2M1_RN_satfinite(fround(x·inv)) (ties to even, ±6 at most). So a group whose scale is 0
 * (all zeros, or NVFP4 amax below 6·2^-10) gets codes 0 and never divides by zero; dequantization is
 * code·s̃. A group holding NaN or ±inf gets scale NaN and codes 0 (it dequantizes to NaN).
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { type Layout, assertLayout } from '../core/layout.js';
import { Tensor } from '../core/tensor.js';
import { encode } from '../numerics/encode.js';
import { MXFP4_GROUP_SIZE, mxfp4Scale } from './mxfp4.js';
import { NVFP4_GROUP_SIZE, nvfp4Scale } from './nvfp4.js';
import { readTokenRows, rowStart } from './token-rows.js';
import type { MxScaleRule, QuantizedTensor } from './types.js';

export type MicroscaleFormat = 'nvfp4' | 'mxfp4';

/** The axis a group runs along: 'channels' for Q/K (head dim), 'tokens' for V. */
export type MicroscaleAxis = 'channels' | 'tokens';

export interface QuantizeMicroscaledOptions {
  format: MicroscaleFormat;
  axis: MicroscaleAxis;
  /** Layout of x and of the codes (default 'HND'). */
  layout?: Layout;
  /** MXFP4 only (default 'truncation-free'); see mxfp4.ts. */
  scaleRule?: MxScaleRule;
}

/** Elements per group of a microscaled format: 16 (NVFP4) or 32 (MXFP4). */
export function microscaleGroupSize(format: MicroscaleFormat): number {
  return format === 'nvfp4' ? NVFP4_GROUP_SIZE : MXFP4_GROUP_SIZE;
}

/** Quantizes x to float4_e2m1fn codes (one per byte) in x's layout plus float32 group scales. */
export function quantizeMicroscaled(x: Tensor, opts: QuantizeMicroscaledOptions): QuantizedTensor {
  const { format, axis } = opts;
  const layout = opts.layout ?? 'HND';
  if (format !== 'nvfp4' && format !== 'mxfp4') {
    throw new UnsupportedOptionError(`format must be 'nvfp4' or 'mxfp4'; got ${JSON.stringify(format)}`);
  }
  if (axis !== 'channels' && axis !== 'tokens') {
    throw new UnsupportedOptionError(`axis must be 'channels' or 'tokens'; got ${JSON.stringify(axis)}`);
  }
  if (format === 'nvfp4' && opts.scaleRule !== undefined) {
    throw new UnsupportedOptionError(`scaleRule applies to MXFP4 only; NVFP4 scales are amax/6 in E4M3`);
  }
  assertLayout(layout);
  const rule = opts.scaleRule ?? 'truncation-free';
  const scaleOf = format === 'nvfp4' ? nvfp4Scale : (amax: number) => mxfp4Scale(amax, rule);
  const groupSize = microscaleGroupSize(format);

  const { dims, values } = readTokenRows(x, layout, 'x');
  const { batch, heads, tokens, headDim } = dims;
  const groupsAlong = Math.ceil((axis === 'channels' ? headDim : tokens) / groupSize);
  const scaleShape =
    axis === 'channels' ? [batch, heads, tokens, groupsAlong] : [batch, heads, groupsAlong, headDim];
  const scales = new Float32Array(scaleShape.reduce((a, s) => a * s, 1));
  const codes = new Uint8Array(values.length);
  const group = new Float32Array(groupSize);
  const groupCodes = new Uint8Array(groupSize);
  const where = new Int32Array(groupSize);

  // Each group: gather its element offsets, pick the scale, encode, scatter the codes back.
  const visit = (scaleIndex: number, count: number) => {
    let amax = 0;
    let finite = true;
    for (let i = 0; i < count; i++) {
      const v = values[where[i]];
      if (!Number.isFinite(v)) finite = false;
      else if (Math.abs(v) > amax) amax = Math.abs(v);
    }
    const s = finite ? scaleOf(amax) : NaN;
    scales[scaleIndex] = s;
    if (!(s > 0)) return;
    const inv = Math.fround(1 / s);
    for (let i = 0; i < count; i++) group[i] = values[where[i]] * inv;
    encode('float4_e2m1fn', group.subarray(0, count), { saturate: true, out: groupCodes.subarray(0, count) });
    for (let i = 0; i < count; i++) codes[where[i]] = groupCodes[i];
  };

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      if (axis === 'channels') {
        for (let n = 0; n < tokens; n++) {
          const r = rowStart(dims, layout, b, h, n);
          for (let g = 0; g < groupsAlong; g++) {
            const count = Math.min(groupSize, headDim - g * groupSize);
            for (let i = 0; i < count; i++) where[i] = r + g * groupSize + i;
            visit(((b * heads + h) * tokens + n) * groupsAlong + g, count);
          }
        }
      } else {
        for (let g = 0; g < groupsAlong; g++) {
          const count = Math.min(groupSize, tokens - g * groupSize);
          for (let c = 0; c < headDim; c++) {
            for (let i = 0; i < count; i++) where[i] = rowStart(dims, layout, b, h, g * groupSize + i) + c;
            visit(((b * heads + h) * groupsAlong + g) * headDim + c, count);
          }
        }
      }
    }
  }
  return {
    codes: new Tensor(codes, x.shape, 'float4_e2m1fn'),
    scales: new Tensor(scales, scaleShape, 'float32'),
  };
}
