/**
 * The four SageAttention variants as complete, resolved configurations (sageattention.md §3–§7). A
 * preset fixes every numeric choice; `SageOptions` can override each one (options.ts).
 *
 * | preset  | Q, K                         | smoothing  | P                         | V                             | PV accumulation        | tiles (Q×K)      |
 * |---------|------------------------------|------------|---------------------------|-------------------------------|------------------------|------------------|
 * | sage1   | INT8 per-block               | K          | FP16 (P̃ ∈ [0,1])          | FP16                          | 'fp32+fp16'            | 128 × 64         |
 * | sage2   | INT8 per-thread              | K          | E4M3, static 448 (8.807)  | E4M3 per channel, max 448     | 'fp32+fp22'            | 128 (32) × 64    |
 * | sage2++ | INT8 per-thread              | K          | E4M3, static 448 (8.807)  | E4M3 per channel, max 2.25    | 'fp32+fp16'            | 128 (32) × 64    |
 * | sage3   | NVFP4 (16 + E4M3 scales)     | K, Q + ΔS  | NVFP4 two-level (2688)    | NVFP4 along tokens            | 'fp32'                 | 128 × 128        |
 */
import type { PVFormat, QKQuant, QuantRounding } from '../../quant/types.js';
import type { PVAccum } from './accumulate.js';
import type { PScaling } from './p-quant.js';

export type SagePreset = 'sage1' | 'sage2' | 'sage2++' | 'sage3';

export const SAGE_PRESETS: readonly SagePreset[] = ['sage1', 'sage2', 'sage2++', 'sage3'];

/** Every numeric choice of a SageAttention pipeline, with nothing left to default. */
export interface SageConfig {
  preset: SagePreset;
  qk: QKQuant;
  smoothK: boolean;
  smoothQ: boolean;
  smoothV: boolean;
  pFormat: PVFormat;
  /** How NVFP4 P̃ is scaled before quantization (p-quant.ts); 'two-level' in every preset. */
  pScaling: PScaling;
  vFormat: PVFormat;
  pvAccum: PVAccum;
  /** The per-channel V range (δ_V = colmax|V| / vScaleMax); null for fp16 (unscaled) and nvfp4 (per group). */
  vScaleMax: number | null;
  rounding: QuantRounding;
  blockQ: number;
  warpQ: number;
  blockK: number;
  warpK: number;
}

/**
 * The presets (sageattention.md §1.1, §3–§7). Integer rounding is 'nearest-even' everywhere: the
 * reference CUDA quantizers' `cvt.rni`; `rounding: 'half-away'` gives the Triton quantizers instead.
 * - sage1 (SA1 §4, the Triton kernel): per-block INT8 with blockQ 128 / blockK 64 (§3.2), P̃ and V in
 *   FP16, each 64-key block's PV in an fp16 buffer added into fp32 O (§3.3).
 * - sage2 (SA2 §3, the sm89 kernel): per-thread INT8 with warpQ 32 / warpK 64 (§4.2), E4M3 P̃ with the
 *   static 448 (§4.3), per-channel E4M3 V with scale_max 448 (§4.4), FP22 per-block buffers added into
 *   fp32 O (§4.5).
 * - sage2++ (SA2++ §3): sage2 with fp16 per-block buffers and V scale_max 2.25, so that
 *   P_r·V_r = 448·2.25 = 1008 ≤ 1023.5 and a 64-key block sums to at most 64512 < 65504 (§5).
 * - sage3 (SA3 §3): NVFP4 Q, K and V (16-element groups, E4M3 scales; V grouped along tokens, §7.2),
 *   K smoothing plus Q smoothing per 128-token block with ΔS (§7.3), two-level NVFP4 P̃ (§7.4), each
 *   128-key block's PV in fp32 (§7.4 "Accumulation"), 128 × 128 tiles (§6.1).
 */
export const PRESET_CONFIGS: Readonly<Record<SagePreset, Readonly<SageConfig>>> = Object.freeze({
  sage1: frozen({
    preset: 'sage1',
    qk: { kind: 'int8', granularity: 'per-block' },
    smoothK: true,
    smoothQ: false,
    smoothV: false,
    pFormat: 'fp16',
    pScaling: 'two-level',
    vFormat: 'fp16',
    pvAccum: 'fp32+fp16',
    vScaleMax: null,
    rounding: 'nearest-even',
    blockQ: 128,
    warpQ: 32,
    blockK: 64,
    warpK: 64,
  }),
  sage2: frozen({
    preset: 'sage2',
    qk: { kind: 'int8', granularity: 'per-thread' },
    smoothK: true,
    smoothQ: false,
    smoothV: false,
    pFormat: 'float8_e4m3fn',
    pScaling: 'two-level',
    vFormat: 'float8_e4m3fn',
    pvAccum: 'fp32+fp22',
    vScaleMax: 448,
    rounding: 'nearest-even',
    blockQ: 128,
    warpQ: 32,
    blockK: 64,
    warpK: 64,
  }),
  'sage2++': frozen({
    preset: 'sage2++',
    qk: { kind: 'int8', granularity: 'per-thread' },
    smoothK: true,
    smoothQ: false,
    smoothV: false,
    pFormat: 'float8_e4m3fn',
    pScaling: 'two-level',
    vFormat: 'float8_e4m3fn',
    pvAccum: 'fp32+fp16',
    vScaleMax: 2.25,
    rounding: 'nearest-even',
    blockQ: 128,
    warpQ: 32,
    blockK: 64,
    warpK: 64,
  }),
  sage3: frozen({
    preset: 'sage3',
    qk: { kind: 'nvfp4' },
    smoothK: true,
    smoothQ: true,
    smoothV: false,
    pFormat: 'nvfp4',
    pScaling: 'two-level',
    vFormat: 'nvfp4',
    pvAccum: 'fp32',
    vScaleMax: null,
    rounding: 'nearest-even',
    blockQ: 128,
    warpQ: 32,
    blockK: 128,
    warpK: 64,
  }),
});

function frozen(config: SageConfig): Readonly<SageConfig> {
  Object.freeze(config.qk);
  return Object.freeze(config);
}
