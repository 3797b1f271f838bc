/** Neural-network layers over autograd: the linear layer's low-bit training precision modes, MLPs, a tiny transformer. */
export { linear, LINEAR_MODES, type LinearMode, type LinearOptions } from './linear.js';
export {
  type Int8Blocks,
  type Int8BlockRounding,
  type QuantizeInt8BlocksOptions,
  INT8_BLOCK_SIZE,
  blockAbsMax,
  quantizeInt8Blocks,
  dequantizeInt8Blocks,
  transposeInt8Blocks,
  int8BlockMatmul,
} from './int8-blocks.js';
export {
  type FallbackCriterion,
  type FallbackStats,
  type FallbackQuantized,
  selectFallbackBlocks,
  quantizeInt8Fallback,
} from './fallback.js';
export {
  type GroupAxis,
  type Fp4Rounding,
  type Mxfp4Groups,
  type QuantizeMxfp4Options,
  roundE2M1,
  quantizeMxfp4,
  dequantizeMxfp4,
} from './mxfp4-groups.js';
export { type Matrix, gemm, columnSums } from './matrix.js';
export {
  OSCILLATION_THRESHOLD,
  OscillationTracker,
  relativeChange,
  oscillationRatio,
  quantConf,
  meanQuantConf,
  scaledLatent,
} from './oscillation.js';
export {
  Q_EMA_DEFAULT_BETA,
  Q_EMA_DEFAULT_WARMUP,
  WeightEma,
  roundE2M1TowardEma,
  quantizeMxfp4Ema,
  quantizeForwardWeight,
  type QuantizeMxfp4EmaOptions,
} from './q-ema.js';
export { type MlpKind, type MlpProjection, type MlpResult, MLP_KINDS, mlp, mlpProjections } from './mlp.js';
export {
  Transformer,
  transformer,
  type AttentionFn,
  type NormKind,
  type LinearSite,
  type LinearSiteName,
  type TransformerConfig,
  type TransformerForwardOptions,
  type TransformerTaps,
  type TransformerOutput,
} from './transformer.js';
