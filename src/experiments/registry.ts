/**
 * Every experiment and evaluation `sparq run` and `sparq report` know, in the order the report shows
 * them. Adding one is a module under `src/experiments/` exporting an `Experiment` and one entry here.
 */
import type { AnyExperiment } from './experiment.js';
import { sageAccuracy } from './sage-accuracy.js';
import { sagebwdEval } from './sagebwd-eval.js';
import { sagebwdFinetune } from './sagebwd-finetune.js';
import { sparseEval } from './sparse-eval.js';
import { int8Glu } from './int8-glu.js';
import { mxfp4Oscillation } from './mxfp4-oscillation.js';
import { gft2d } from './gft-2d.js';
import { analyticPrecondExperiment } from './analytic-precond.js';
import { vrpoExperiment } from './vrpo.js';

export const EXPERIMENTS: readonly AnyExperiment[] = [
  sageAccuracy,
  sagebwdEval,
  sagebwdFinetune,
  sparseEval,
  int8Glu,
  mxfp4Oscillation,
  gft2d,
  analyticPrecondExperiment,
  vrpoExperiment,
];

/** The experiment called `name`, if there is one. */
export function findExperiment(name: string): AnyExperiment | undefined {
  return EXPERIMENTS.find((e) => e.name === name);
}
