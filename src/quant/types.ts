/**
 * Shared types of the quantization layer and the SageAttention pipelines (the contract between
 * quantizers and kernels). A quantizer returns codes in the input's layout plus scales in the
 * reference implementation's layout, so results can be compared value by value with SageAttention's
 * Python code (ARCHITECTURE.md, numerics contract).
 */
import type { Tensor } from '../core/tensor.js';

/**
 * Token groups that share one Q or K scale (sageattention.md §3.2, §4.2):
 * - 'per-block': blockQ Q tokens / blockK K tokens per (batch, head) share a scale.
 * - 'per-warp': warpQ consecutive Q tokens share a scale; K stays per block (WARP_K = CTA_K).
 * - 'per-thread': inside each warpQ segment, Q tokens with index ≡ t (mod 8) share a scale (8 groups);
 *   inside each warpK segment, K tokens whose index mod 8 ∈ {2t, 2t+1} share a scale (4 groups).
 * - 'per-token': one scale per token.
 */
export type QKGranularity = 'per-block' | 'per-warp' | 'per-thread' | 'per-token';

/** Rounding of the integer quantizers: 'half-away' reproduces the reference Triton quantizers. */
export type QuantRounding = 'nearest-even' | 'half-away';

/**
 * How an MXFP4 group's E8M0 scale is chosen (training_methods.md §1.2, TetraJet §3.2):
 * - 'truncation-free' (default, TetraJet's `mxscale 1`): 2^⌈log2(amax/6)⌉, so |x/scale| ≤ 6 and no
 *   element is clipped.
 * - 'ocp' (the OCP Microscaling baseline, `mxscale 3`): 2^(⌊log2 amax⌋ − 2); x/scale can reach 7.75
 *   and is clipped to ±6.
 */
export type MxScaleRule = 'truncation-free' | 'ocp';

/**
 * How Q and K are quantized (SageAttention variants plus the microscaled FP4 formats of SA3).
 * - int8 / int4: symmetric integer codes in [-127, 127] / [-7, 7] with one float32 scale per token
 *   group of the granularity (sageattention.md §3.2, §4.2).
 * - nvfp4: E2M1 codes, one E4M3-rounded scale per 16 channels of a token (sageattention.md §7.2).
 * - mxfp4: E2M1 codes, one power-of-two (E8M0) scale per 32 channels of a token.
 * - none: no quantization; the (smoothed) values themselves, as float32 codes with unit scales.
 */
export type QKQuant =
  | { kind: 'int8'; granularity: QKGranularity }
  | { kind: 'int4'; granularity: QKGranularity }
  | { kind: 'nvfp4' }
  | { kind: 'mxfp4'; scaleRule?: MxScaleRule }
  | { kind: 'none' };

export interface QuantizeQKOptions {
  /** Layout of q and k and of the returned codes (default 'HND'). */
  layout?: 'HND' | 'NHD';
  /** Default { kind: 'int8', granularity: 'per-thread' } (SA2 §3.2, the sm80/sm89/sm90 default). */
  quant?: QKQuant;
  /** Subtract the per-(batch, kv-head) token mean of K first (SA1 §4.2). Default true. */
  smoothK?: boolean;
  /** Subtract per-blockQ means of Q first and return ΔS (SA2 §3.1, SA3 §7.3). Default false. */
  smoothQ?: boolean;
  /**
   * Softmax scale σ (default 1/√D). Int per-block Q scales fold σ·log2e in, as the reference
   * per-block quantizer does (sageattention.md §2); no other scale contains σ.
   */
  smScale?: number;
  /** Q tokens per kernel tile (CTA_Q, default 128): per-block Q scales and Q smoothing blocks. */
  blockQ?: number;
  /** Q tokens per warp (WARP_Q, default 32): divides blockQ, multiple of 8 (sageattention.md §4.2). */
  warpQ?: number;
  /** K tokens per kernel tile (CTA_K, default 64): per-block K scales. */
  blockK?: number;
  /** K tokens per warp (WARP_K, default 64): divides blockK, multiple of 8 (sageattention.md §4.2). */
  warpK?: number;
  /** Integer rounding (default 'nearest-even'); only int8/int4 accept 'half-away'. */
  rounding?: QuantRounding;
}

/** Codes in the input layout (int8 / int4 one per byte / float4_e2m1fn codes) and scales. */
export interface QuantizedTensor {
  codes: Tensor;
  /** Scales in the reference layout (see quantizeQK's documentation for each granularity). */
  scales: Tensor<'float32'>;
}

/**
 * What quantizeQK returns. The kernel's logit for query row i (head h) and key j (kv head
 * kvHeadOf(h)), in log2 units (sageattention.md §2), is
 *   S₂(i, j) = Σ_d q̂(i, d)·k̂(j, d) × (smScaleFolded ? 1 : σ·log2e) + ΔS[⌊i/blockQ⌋, j] × σ·log2e,
 * where x̂ = code × scale of that element. For int8/int4 the scale is constant along a row —
 * δ_Q(i) = q.scales[b, h, qkScaleIndex('q', granularity, i, tiling)], δ_K(j) likewise — so the sum is
 * S_int32 × δ_Q(i) × δ_K(j). For nvfp4/mxfp4 it is the scale of the element's channel group.
 */
export interface QuantizedQK {
  q: QuantizedTensor;
  k: QuantizedTensor;
  /** The K token mean that smoothing removed, [B, Hkv, D] (zeros when smoothK is off). */
  kMean: Tensor<'float32'>;
  /**
   * With smoothQ: ΔS = q̄_block · γ(K)ᵀ, [B, H, ⌈Nq/blockQ⌉, Nk], in plain q·k units (no σ, no
   * log2e, whatever the granularity), added to the dequantized logits before the softmax scale.
   */
  deltaS?: Tensor<'float32'>;
  /** With smoothQ: the per-blockQ Q means that were removed, [B, H, ⌈Nq/blockQ⌉, D]. */
  qMean?: Tensor<'float32'>;
  /** True when δ_Q already contains σ·log2e (int8/int4 'per-block'), so the kernel must not apply it. */
  smScaleFolded: boolean;
  /** What was applied, with every default resolved. */
  options: Required<Omit<QuantizeQKOptions, 'layout'>> & { layout: 'HND' | 'NHD' };
}

/** Formats P̃ and V can take in the PV product (SA1 FP16, SA2 FP8, SA1-vB INT8, SA3 NVFP4). */
export type PVFormat = 'fp16' | 'float8_e4m3fn' | 'float8_e5m2' | 'int8' | 'nvfp4';

export interface QuantizeVOptions {
  layout?: 'HND' | 'NHD';
  /** Default 'float8_e4m3fn' (SA2). */
  format?: PVFormat;
  /**
   * Largest quantized magnitude per channel for FP8/INT8 V: 448 (E4M3 default), 57344 (E5M2), 127
   * (INT8), or 2.25 for SA2++'s FP16-accumulation range limit (sageattention.md §5). Must lie in
   * (0, format max]; 'fp16' and 'nvfp4' reject it.
   */
  scaleMax?: number;
  /** Subtract the per-(batch, kv-head) token mean first and add it back to O (SA2 §3.4). Default false. */
  smoothV?: boolean;
}

export interface QuantizedV {
  /** Codes in the input layout: float16/fp8/int8 codes, or float4_e2m1fn codes for 'nvfp4'. */
  codes: Tensor;
  /**
   * Per-channel scales [B, Hkv, D] for FP8/INT8 (value = code · scale); NVFP4 group scales
   * [B, Hkv, ⌈Nk/16⌉, D] (groups of 16 along tokens, E4M3-rounded, stored as float32); ones for fp16.
   * An all-zero channel or group has scale 0 and codes 0.
   */
  scales: Tensor<'float32'>;
  /** Token mean removed by smoothV, [B, Hkv, D] (zeros otherwise). */
  vMean: Tensor<'float32'>;
  format: PVFormat;
  /** The resolved scaleMax for FP8/INT8; 1 for 'fp16' (no scaling) and 6 (E2M1's max) for 'nvfp4'. */
  scaleMax: number;
}
