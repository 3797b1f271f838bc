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
