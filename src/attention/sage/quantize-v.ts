/**
 * The V step of SageAttention (SA2 Alg. 1; sageattention.md §4.4, §4.6): optionally smooth V, then
 * quantize it for the PV product in the chosen format.
 *
 * - 'float8_e4m3fn' (default, SA2) / 'float8_e5m2' / 'int8' (SA1-vB): per-channel over all tokens,
 *   quant/channel-quant.ts; scales [B, Hkv, D], scaleMax 448 / 57344 / 127 by default (2.25 for
 *   SA2++'s E4M3 with fp16 accumulation, sageattention.md §5).
 * - 'fp16' (SA1, SA2++ fp16 path): float16 codes of the (smoothed) values, saturating at ±65504 so a
 *   smoothed value past fp16's range clamps instead of becoming inf; scales are ones [B, Hkv, D] and
 *   scaleMax is reported as 1.
 * - 'nvfp4' (SA3): groups of 16 consecutive tokens per channel with E4M3 scales,
 *   quant/microscaling.ts; scales [B, Hkv, ⌈Nk/16⌉, D]; scaleMax is reported as 6 (E2M1's max).
 *
 * smoothV (SA2 §3.4): V − v̄ per (batch, kv head) before quantizing, v̄ returned as vMean; the kernel
 * adds v̄ back to each output row, which is exact because normalised P rows sum to 1.
 * All-zero channels and groups give scale 0 and codes 0, never NaN (the reference's per-channel FP8
 * gives NaN there).
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { type Layout, assertLayout } from '../../core/layout.js';
import { Tensor } from '../../core/tensor.js';
import { encode } from '../../numerics/encode.js';
import { defaultChannelScaleMax, quantizePerChannel } from '../../quant/channel-quant.js';
import { quantizeMicroscaled } from '../../quant/microscaling.js';
import { E2M1_MAX } from '../../quant/nvfp4.js';
import { assertOptionKeys, booleanOption } from '../../quant/option-checks.js';
import { subtractTokenMean } from '../../quant/smoothing.js';
import { tokenDims } from '../../quant/token-rows.js';
import type { PVFormat, QuantizeVOptions, QuantizedV } from '../../quant/types.js';

const OPTION_KEYS: readonly (keyof QuantizeVOptions)[] = ['layout', 'format', 'scaleMax', 'smoothV'];

const FORMATS: readonly PVFormat[] = ['fp16', 'float8_e4m3fn', 'float8_e5m2', 'int8', 'nvfp4'];

/**
 * Quantizes V ([B, Hkv, Nk, D] for 'HND', [B, Nk, Hkv, D] for 'NHD') for the PV product. Codes come
 * back in the input layout. Throws ShapeError, DTypeError or UnsupportedOptionError for bad input.
 */
export function quantizeV(v: Tensor, opts?: QuantizeVOptions): QuantizedV {
  assertOptionKeys(opts, OPTION_KEYS, 'quantizeV');
  const o: QuantizeVOptions = opts ?? {};
  const layout: Layout = o.layout ?? 'HND';
  assertLayout(layout);
  const format = o.format ?? 'float8_e4m3fn';
  if (!FORMATS.includes(format)) {
    throw new UnsupportedOptionError(
      `format must be one of ${FORMATS.map((f) => `'${f}'`).join(', ')}; got ${JSON.stringify(format)}`,
    );
  }
  if (o.scaleMax !== undefined && (format === 'fp16' || format === 'nvfp4')) {
    throw new UnsupportedOptionError(
      `scaleMax applies to the per-channel formats (float8_e4m3fn, float8_e5m2, int8) only; ` +
        `'${format}' has no per-channel range to set. Drop scaleMax or pick an FP8/INT8 format.`,
    );
  }
  const smoothV = booleanOption(o.smoothV, 'smoothV', false);
  const { batch, heads, headDim } = tokenDims(v, layout, 'v');

  const smooth = smoothV ? subtractTokenMean(v, { layout }) : null;
  const vMean =
    smooth?.mean ?? new Tensor(new Float32Array(batch * heads * headDim), [batch, heads, headDim], 'float32');
  const vIn = smooth?.smoothed ?? v;

  if (format === 'fp16') {
    return {
      codes: new Tensor(encode('float16', vIn.toFloat32(), { saturate: true }), v.shape, 'float16'),
      scales: new Tensor(
        new Float32Array(batch * heads * headDim).fill(1),
        [batch, heads, headDim],
        'float32',
      ),
      vMean,
      format,
      scaleMax: 1,
    };
  }
  if (format === 'nvfp4') {
    return {
      ...quantizeMicroscaled(vIn, { format: 'nvfp4', axis: 'tokens', layout }),
      vMean,
      format,
      scaleMax: E2M1_MAX,
    };
  }
  const scaleMax = o.scaleMax ?? defaultChannelScaleMax(format);
  return { ...quantizePerChannel(vIn, { format, scaleMax, layout }), vMean, format, scaleMax };
}
