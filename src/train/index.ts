/** Training: SGD and AdamW over autograd Vars, safetensors checkpoints, and a resumable training loop. */
export { type Optimizer, type OptimizerState, SlotOptimizer, gradientsAreFinite } from './optimizer.js';
export { sgd, type SgdOptions } from './sgd.js';
export { adamw, type AdamWOptions } from './adamw.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  CHECKPOINT_FORMAT,
  type CheckpointContents,
  type LoadedCheckpoint,
} from './checkpoint.js';
export { trainLoop, type TrainLoopOptions, type TrainProgress, type TrainResult } from './train-loop.js';
export {
  RAMPING_CALIBRATION_STEPS,
  RAMPING_K1,
  RAMPING_K2,
  RampingAdamW,
  rampingAdamW,
  updatePeriods,
  type UpdatePeriodOptions,
} from './q-ramping.js';
export { sampleLmBatch, type LmBatch } from './lm-batch.js';
export {
  calibrateRamping,
  type RampingCalibration,
  type RampingCalibrationOptions,
} from './q-ramping-calibration.js';
export { cosineSchedule, type CosineScheduleOptions } from './lr-schedule.js';
