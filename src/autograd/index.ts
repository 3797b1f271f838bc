/** Autograd: reverse mode over float64 host tensors, ops registered per backend in an op table. */
export {
  Var,
  type F64,
  type Node,
  type BackwardFn,
  param,
  constant,
  detach,
  noGrad,
  isGradEnabled,
  toF64,
} from './var.js';
export { backward } from './backward.js';
export {
  type OpImpl,
  type OpResult,
  registerOp,
  lookupOp,
  opBackends,
  withBackend,
  applyOp,
} from './op-table.js';
export { broadcastShapes } from './broadcast.js';
export { add, sub, mul, div, neg, exp, log, tanh, relu, silu } from './elementwise.js';
export { gelu, erf, type GeluOptions } from './gelu.js';
export { sum, mean, type ReduceOptions } from './reduce.js';
export { reshape, permute, transpose } from './shape-ops.js';
export { matmul } from './matmul.js';
export { softmax, logSoftmax } from './softmax.js';
export { crossEntropy, type CrossEntropyOptions } from './cross-entropy.js';
export { rmsNorm, layerNorm, type NormOptions } from './norms.js';
export { embedding } from './embedding.js';
export { scaledDotProductAttention, type AttentionOptions } from './attention.js';
export { sageAttentionTrainable, type SageBwdOptions } from './sage-attention-trainable.js';
export { gradCheck, type GradCheckOptions, type GradCheckResult } from './grad-check.js';
