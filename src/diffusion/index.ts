/**
 * Diffusion: noise processes (VP/DDPM, EDM), parameterisations, samplers that count network
 * evaluations (DDIM, EDM Euler/Heun), classifier-free guidance, sample-quality metrics (sliced
 * Wasserstein, MMD), exact Gaussian-mixture denoisers, GFT and consistency-trajectory distillation
 * with CTM's and the analytic preconditioning; masked diffusion LMs (ELBO estimators, remasking
 * sampler) and VRPO preference optimisation.
 */
export {
  VpSchedule,
  type VpScheduleOptions,
  DDPM_BETA_START,
  DDPM_BETA_END,
  DDPM_TIMESTEPS,
  vpSdeAlphaBar,
  vpSdeScales,
  type VpSdeOptions,
} from './vp.js';
export {
  EDM_SIGMA_MIN,
  EDM_SIGMA_MAX,
  EDM_SIGMA_DATA,
  EDM_RHO,
  EDM_P_MEAN,
  EDM_P_STD,
  type EdmPreconditioning,
  edmPreconditioning,
  edmLossWeight,
  sampleEdmTrainingSigma,
  type EdmTrainingSigmaOptions,
  edmSigmaGrid,
  type EdmSigmaGridOptions,
} from './edm.js';
export {
  type Parameterization,
  PARAMETERIZATIONS,
  type NoiseScales,
  convertPrediction,
} from './parameterization.js';
export { GaussianMixture, type GaussianMixtureSpec, type MixtureSample } from './gaussian-mixture.js';
export {
  type EpsModel,
  type ConditionalEpsModel,
  type Denoiser,
  mixtureEpsModel,
  mixtureConditionalEpsModel,
  mixtureDenoiser,
  byLabel,
} from './models.js';
export { guidanceCombine, classifierFreeGuidance, checkGuidanceScale } from './guidance.js';
export {
  ddimSample,
  ddimTimesteps,
  type DdimOptions,
  type SampleResult,
  type TimestepSpacing,
} from './ddim.js';
export { edmSample, type EdmSampleOptions, type EdmSolver } from './edm-sampler.js';
export {
  slicedWasserstein,
  wassersteinSorted1d,
  type SlicedWassersteinOptions,
} from './sliced-wasserstein.js';
export { mmdRbf, medianBandwidth, type MmdOptions, type MmdResult } from './mmd.js';

// GFT (guidance-free training): the objective, one-forward sampling at β = 1/w, logit interpolation;
// the CFG training loss and the small conditional MLP denoiser the toys train.
export {
  type GftNetwork,
  type GftLossOptions,
  type GftLossResult,
  gftLoss,
  gftBetaForGuidance,
  gftEpsModel,
} from './gft.js';
export { gftInterpolateLogits, gftLogitLoss } from './gft-logits.js';
export {
  type EpsNetwork,
  type NoisedBatch,
  type EpsilonLossOptions,
  epsilonLoss,
  noiseBatch,
  dropLabels,
  meanSquaredError,
} from './epsilon-loss.js';
export { ConditionalMlp, type ConditionalMlpConfig, type ScalarCondition } from './conditional-mlp.js';
export { sinusoidalEmbedding } from './sinusoidal-embedding.js';
export { emaUpdate, copyParameters } from './parameter-ema.js';

// Consistency-trajectory distillation: CTM's and the analytic preconditioning, the exact teacher and
// its ODE, the consistency gap, the CTM student and losses.
export {
  type JumpCoefficients,
  type ConsistencyPreconditioning,
  ctmPreconditioning,
  checkJumpTimes,
} from './consistency-preconditioning.js';
export {
  type LRule,
  type SRule,
  type JumpForm,
  type AnalyticProfileOptions,
  type AnalyticPreconditioningOptions,
  type AnalyticPreconditioning,
  AnalyticProfile,
  analyticPreconditioning,
  finiteDifferenceTrace,
} from './analytic-precond.js';
export {
  type EdmTeacher,
  mixtureTeacher,
  solveTeacherOde,
  solveTeacherOdeAt,
  teacherHeunStep,
} from './teacher.js';
export {
  type JumpFunction,
  type NamedJump,
  type GapPoint,
  type ConsistencyGapOptions,
  consistencyGaps,
  teacherInitialisedJump,
} from './consistency-gap.js';
export { ConsistencyStudent, ctmLoss, prefitLoss, sampleJumpPairs } from './ctm.js';
export { gaussLegendre, type GaussLegendre } from './gauss-legendre.js';

// Masked diffusion LM and VRPO (LLaDA 1.5): forward masking, mask predictor, ELBO estimators and their
// exact values, SFT loss, low-confidence-remasking sampler, DPO on ELBOs, VRPO allocation and
// antithetic sampling.
export {
  type SequenceLayout,
  type MaskedSequence,
  responseLength,
  maskWithProbability,
  maskExactly,
} from './mdlm-masking.js';
export { maskedLogProb, type MaskedLogProbOptions } from './masked-log-prob.js';
export {
  type MaskPredictor,
  type TransformerMaskPredictorConfig,
  TransformerMaskPredictor,
  transformerMaskPredictor,
  checkPredictorInput,
  copyParameterValues,
} from './mask-predictor.js';
export {
  type ElboForm,
  type ElboSamplingOptions,
  type ElboSample,
  type ElboDraws,
  type WeightedMaskedSequence,
  type EvaluationOptions,
  sampleElboDraws,
  elboEstimates,
  elboSampleTerms,
  weightedMaskedSums,
} from './elbo.js';
export {
  type ExactOptions,
  type VarianceComponents,
  exactElbos,
  exactMaskSums,
  anyOrderLogLikelihood,
  lFormVarianceComponents,
} from './elbo-exact.js';
export { mdmSftLoss, type SftLossOptions } from './sft-loss.js';
export {
  type Remasking,
  type RemaskingSamplerOptions,
  type RemaskingResult,
  remaskingSample,
  transferSchedule,
} from './remasking-sampler.js';
export {
  VRPO_DEFAULT_BETA,
  type DpoEInputs,
  type DpoEOptions,
  type DpoEResult,
  dpoEScores,
  dpoELoss,
} from './dpo.js';
export {
  VRPO_DEFAULT_BUDGET,
  type PreferencePair,
  type ElboAllocation,
  type PreferenceScoreOptions,
  type VrpoOptions,
  type PreferenceDraws,
  type VrpoLossResult,
  vrpoAllocation,
  samplePreferenceDraws,
  preferenceScores,
  vrpoLoss,
} from './vrpo.js';
