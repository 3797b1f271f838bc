/**
 * Diffusion: noise processes (VP/DDPM, EDM), parameterisations, samplers that count network
 * evaluations (DDIM, EDM Euler/Heun), classifier-free guidance, sample-quality metrics (sliced
 * Wasserstein, MMD), exact Gaussian-mixture denoisers, GFT and consistency-trajectory distillation
 * with CTM's and the analytic preconditioning.
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
