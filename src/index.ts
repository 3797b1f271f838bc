/**
 * sparq's public API. Everything a user imports comes from here; the names are the ones
 * ARCHITECTURE.md lists, and other code relies on them.
 */

// core
export { Tensor, tensor, randn, rand, shapeSize, type Shape, type RandomOptions } from './core/tensor.js';
export { type DType, type TypedArray, DTYPES, isDType, bytesPerElement } from './core/dtype.js';
export { type Layout, type AttentionDims, layoutDims, layoutShape, convertLayout } from './core/layout.js';
export { Rng, philox4x32, type Seed } from './core/rng.js';
export {
  SparqError,
  ShapeError,
  DTypeError,
  UnsupportedOptionError,
  UnsupportedHeadDimError,
  NonFiniteInputError,
  NoAdapterError,
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuError,
  MalformedFileError,
  type SparqErrorCode,
} from './core/errors.js';

// numerics
export * from './numerics/index.js';

// gpu
export {
  acquireGpu,
  defaultGpu,
  releaseDefaultGpu,
  dawnFlags,
  GpuRuntime,
  type AcquireOptions,
} from './gpu/runtime.js';
export { type BufferPoolStats } from './gpu/buffer-pool.js';
export {
  type GpuCapabilities,
  type GpuTier,
  type SubgroupMatrixConfig,
  describeAdapter,
} from './gpu/capabilities.js';
export { GpuTensor, upload, download, emptyGpu, isGpuTensor } from './gpu/gpu-tensor.js';
export { timeCompute, type TimingOptions, type TimingResult } from './gpu/timing.js';

// attention
export { attentionReference, type ReferenceOptions } from './attention/reference.js';
export { attention, type DenseAttentionOptions } from './attention/dense.js';
export { attentionCpu, type CpuAttentionOptions } from './attention/dense-cpu.js';
export {
  attentionGpu,
  planAttentionGpu,
  type GpuAttentionOptions,
  type GpuAttentionPlan,
} from './attention/dense-gpu.js';
export { keptKeys } from './attention/causal.js';
export {
  type AttentionOptions,
  type AttentionProblem,
  type AttentionResult,
  type AttentionWithLse,
  type CausalAlignment,
  type NanPolicy,
  resolveAttentionProblem,
} from './attention/options.js';
export { metrics } from './attention/metrics.js';

// SageAttention: the pipeline and its public steps (smooth → quantize → kernel → finalize)
export { sageAttention } from './attention/sage/sage-attention.js';
export { evaluateSage, type SageEvaluation, type Finding } from './attention/sage/evaluate.js';
export {
  type SageOptions,
  type ResolvedSage,
  resolveSageOptions,
  quantizeQKOptions,
  quantizeVOptions,
} from './attention/sage/options.js';
export { type SagePreset, type SageConfig, SAGE_PRESETS, PRESET_CONFIGS } from './attention/sage/presets.js';
export { quantizeQK } from './attention/sage/quantize-qk.js';
export { quantizeV } from './attention/sage/quantize-v.js';
export { sageKernelCpu, type SageKernelOptions } from './attention/sage/kernel-cpu.js';
export {
  sageKernelGpu,
  planSageKernelGpu,
  scaleGroupRules,
  type SageKernelGpuOptions,
  type Int8Operand,
  type QKOperand,
  type VOperand,
} from './attention/sage/kernel-gpu.js';
export { type PVAccum, PV_ACCUMS } from './attention/sage/accumulate.js';
export { quantizeP, pExponentOffset, E4M3_P_OFFSET } from './attention/sage/p-quant.js';

// Block-sparse attention (CPU and WebGPU; fixed tiles or variable segments, stage-2 PV skip, optional
// Sage quantization on the CPU), its layouts, and SpargeAttn (stage-1 block map, calibration, token orders)
export { blockSparseAttention } from './attention/sparse/block-sparse.js';
export { blockSparseAttentionCpu } from './attention/sparse/block-sparse-cpu.js';
export {
  blockSparseAttentionGpu,
  planBlockSparseGpu,
  planWithLayoutWords,
  readBlockSparseStats,
  type GpuLayoutWords,
  type GpuBlockSparsePlan,
  type GpuBlockSparseStats,
} from './attention/sparse/block-sparse-gpu.js';
export {
  type BlockSparseOptions,
  type BlockSparseStats,
  type BlockSparseWithStats,
  type BlockSparseSage,
} from './attention/sparse/block-sparse-options.js';
export {
  type BlockSparseLayout,
  type FixedBlockLayout,
  type VariableBlockLayout,
  assertBlockLayout,
  layoutDensity,
  layoutToMask,
  numQueryBlocks,
  numKeyBlocks,
} from './attention/sparse/block-layout.js';
export {
  layoutFromBlockMap,
  layoutFromTokenPredicate,
  layoutFromSegments,
  bandLayout,
  denseLayout,
  type FixedTiling,
  type BandOptions,
  type SegmentOptions,
  type TokenPredicate,
} from './attention/sparse/layout-builders.js';
export {
  spargeBlockMap,
  spargeBlockStatistics,
  selectBlocks,
  type SpargeBlockMap,
  type SpargeMapStats,
  type SpargeBlockStatistics,
} from './attention/sparse/sparge-block-map.js';
export {
  type SpargeBlockMapOptions,
  type CdfRule,
  type PerHead,
  SPARGE_TOPK_DEFAULTS,
  SPARGE_CDF_DEFAULTS,
} from './attention/sparse/sparge-options.js';
export { planSpargeBlockMapGpu, type GpuSpargeMap } from './attention/sparse/sparge-block-map-gpu.js';
export {
  spargeAttention,
  type SpargeAttentionOptions,
  type SpargeResult,
  type SpargeStats,
} from './attention/sparse/sparge-attention.js';
export {
  calibrateSparge,
  type CalibrateSpargeOptions,
  type CalibrationSample,
  type CalibrationPoint,
  type SpargeCalibration,
} from './attention/sparse/sparge-calibrate.js';
export {
  spargeParamsToJson,
  spargeParamsFromJson,
  assertSpargeParams,
  type SpargeParams,
} from './attention/sparse/sparge-params.js';
export {
  rowMajorOrder,
  timeMajorOrder,
  hilbertOrder3d,
  hilbertIndex3d,
  hilbertJumps,
  randomOrder,
  applyTokenOrder,
  restoreTokenOrder,
  restoreTokenOrderLse,
  type TokenOrder,
  type TokenOrderName,
  type TokenOrderApply,
} from './attention/sparse/token-orders.js';

// Sparse VideoGen and SVG2 (plan → permute → block-sparse kernel → inverse permute), the synthetic video
// workload they are evaluated on, k-means (CPU and WebGPU) and the token permutations
export { svgAttention } from './attention/sparse/svg.js';
export { svgAttentionGpu, planSvgGpu } from './attention/sparse/svg-gpu.js';
export {
  planSvg,
  svgKeepPredicate,
  svgMask,
  type SvgOptions,
  type SvgPlan,
} from './attention/sparse/svg-plan.js';
export {
  svgBandWidth,
  svgBandLayout,
  svgPermutation,
  temporalKernelIndex,
  temporalOriginalIndex,
  type SvgHeadKind,
  type SvgGeometry,
  type SvgBandWidth,
} from './attention/sparse/svg-layout.js';
export { svgProfile, svgSampleRows, type SvgProfile } from './attention/sparse/svg-profile.js';
export { isDenseWarmup, type DenseWarmupOptions } from './attention/sparse/dense-warmup.js';
export { svg2Attention } from './attention/sparse/svg2.js';
export { svg2AttentionGpu, planSvg2Gpu } from './attention/sparse/svg2-gpu.js';
export {
  planSvg2,
  svg2KeepPredicate,
  svg2Mask,
  type Svg2Options,
  type Svg2Plan,
  type Svg2Clustering,
} from './attention/sparse/svg2-plan.js';
export {
  svg2ClusterMap,
  clusterCriticality,
  topPSelect,
  clusterMapDensity,
} from './attention/sparse/svg2-map.js';
export { CentroidCache, type CentroidEntry, type LayerKey } from './attention/sparse/centroid-cache.js';
export {
  kmeans,
  kmeansInertia,
  kmeansInitIndices,
  type KMeansOptions,
  type KMeansResult,
  type KMeansShape,
} from './attention/sparse/kmeans.js';
export { kmeansGpu, type KMeansGpuOptions, type KMeansGpuResult } from './attention/sparse/kmeans-gpu.js';
export {
  sortByLabel,
  invertPermutation,
  gatherTokens,
  scatterTokens,
  type LabelSort,
} from './attention/sparse/permute.js';
export {
  videoWorkload,
  videoHeadMass,
  VIDEO_HEAD_KINDS,
  type VideoWorkload,
  type VideoWorkloadOptions,
  type VideoHeadKind,
  type HeadMass,
} from './attention/sparse/video-workload.js';

// quant: the quantizers SageAttention (and later the low-bit training methods) are built from
export * from './quant/types.js';
export {
  qkScaleIndex,
  qkScaleCount,
  DEFAULT_QK_TILING,
  type QKTiling,
  type QKRole,
} from './quant/qk-scale-groups.js';
export { quantizeIntGroups, intGroupScale } from './quant/int-group-quant.js';
export { subtractTokenMean, subtractBlockMeans } from './quant/smoothing.js';
export { quantizePerChannel, type ChannelFormat } from './quant/channel-quant.js';
export { quantizeMicroscaled, type MicroscaleFormat, type MicroscaleAxis } from './quant/microscaling.js';
export { nvfp4Scale } from './quant/nvfp4.js';
export { mxfp4Scale, MX_SCALE_RULES } from './quant/mxfp4.js';

// io
export {
  parseSafetensors,
  writeSafetensors,
  type SafetensorsContents,
  type ReadSafetensorsOptions,
  type WriteSafetensorsOptions,
} from './io/safetensors.js';
export { readSafetensors, writeSafetensorsFile } from './io/safetensors-file.js';
export { CharTokenizer, type CharTokenizerOptions } from './io/char-tokenizer.js';
export { SHIPPED_TEXTS, readShippedText, type ShippedText, type ShippedTextName } from './io/shipped-text.js';

// autograd (CPU, float64): tape-based reverse mode with hand-written backward passes
export * as autograd from './autograd/index.js';

// SageBwd: 8-bit trainable attention (SA3 §4) as an autograd op with a hand-written INT8/FP16 backward
export { sageAttentionTrainable, type SageBwdOptions } from './autograd/sage-attention-trainable.js';
export type { SageBwdQuant, SageBwdDpPrecision, SageBwdDsPrecision } from './attention/backward/options.js';

// training: optimizers, safetensors checkpoints, a resumable training loop
export * as train from './train/index.js';

// nn: the linear layer with its precision modes (fp32, int8-block, int8-fallback, mxfp4, mxfp4-ocp),
// SwiGLU/GELU MLPs and a tiny transformer
export * as nn from './nn/index.js';

// diffusion: noise processes, samplers, GFT, consistency distillation, masked diffusion LMs and VRPO
export * as diffusion from './diffusion/index.js';

// experiments: the registry `sparq run` and `sparq report` use, the runner, statistics and plot specs
export * as experiments from './experiments/index.js';
