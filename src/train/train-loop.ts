/**
 * A minimal training loop: for each step, clear gradients, compute the loss, backpropagate, update,
 * report, and checkpoint every `every` steps and at the end. Step i's randomness comes from
 * `Rng.fromSeed(seed).split(i)`, so a run resumed from a checkpoint after step k draws the same numbers
 * for steps k, k+1, … as an uninterrupted run, and with float64 parameters and optimizer state restored
 * bit for bit, the resumed run ends bit-identical to the uninterrupted one.
 */
import { type Seed, Rng } from '../core/rng.js';
import { UnsupportedOptionError } from '../core/errors.js';
import type { Var } from '../autograd/var.js';
import { backward } from '../autograd/backward.js';
import type { Optimizer } from './optimizer.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';

export interface TrainProgress {
  /** Steps completed (1-based: the step just finished). */
  step: number;
  /** Total steps of the run. */
  steps: number;
  loss: number;
  /** False when the update was skipped for a non-finite gradient. */
  applied: boolean;
  /** Updates skipped so far, over the whole run including before a resume. */
  skippedSteps: number;
  /** Whether a checkpoint was written after this step. */
  checkpointed: boolean;
}

export interface TrainLoopOptions {
  /** Total steps; a resumed run continues up to this number. */
  steps: number;
  /** Builds the loss for step i (0-based) with that step's random stream; must return a one-element Var. */
  step: (i: number, rng: Rng) => Var;
  /** The trained parameters by name (the names key the checkpoint); the optimizer must hold the same Vars. */
  params: Record<string, Var>;
  optimizer: Optimizer;
  seed: Seed;
  checkpoint?: {
    path: string;
    /** Save after every `every` steps, and after the last. */
    every: number;
    /**
     * Continue from the checkpoint at `path` when it exists (from step 0 when it does not, so the same
     * call starts a run and resumes it after an interruption).
     */
    resume?: boolean;
    /** Extra string metadata saved with each checkpoint. */
    metadata?: Record<string, string>;
  };
  /** Called after every step; the library prints nothing itself. */
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  /** The step the run started from (0, or the resumed checkpoint's). */
  startStep: number;
  /** The last step's loss (NaN when no step ran). */
  lastLoss: number;
  skippedSteps: number;
}

function isMissingFile(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

/** Runs the loop described in the module comment. */
export function trainLoop(opts: TrainLoopOptions): TrainResult {
  const { steps, params, optimizer, checkpoint, onProgress } = opts;
  if (!Number.isSafeInteger(steps) || steps < 0) {
    throw new UnsupportedOptionError(`steps must be a non-negative integer; got ${steps}`);
  }
  if (checkpoint !== undefined && (!Number.isSafeInteger(checkpoint.every) || checkpoint.every < 1)) {
    throw new UnsupportedOptionError(`checkpoint.every must be a positive integer; got ${checkpoint.every}`);
  }
  let startStep = 0;
  if (checkpoint?.resume === true) {
    try {
      startStep = loadCheckpoint(checkpoint.path, { params, optimizer }).step;
    } catch (e) {
      if (!isMissingFile(e)) throw e;
    }
  }
  const root = Rng.fromSeed(opts.seed);
  let lastLoss = NaN;
  for (let i = startStep; i < steps; i++) {
    optimizer.zeroGrad();
    const loss = opts.step(i, root.split(i));
    backward(loss);
    const applied = optimizer.step();
    lastLoss = loss.item();
    const done = i + 1;
    const checkpointed = checkpoint !== undefined && (done % checkpoint.every === 0 || done === steps);
    if (checkpointed) {
      saveCheckpoint(checkpoint.path, { params, optimizer, step: done, metadata: checkpoint.metadata });
    }
    onProgress?.({
      step: done,
      steps,
      loss: lastLoss,
      applied,
      skippedSteps: optimizer.skippedSteps,
      checkpointed,
    });
  }
  return { startStep, lastLoss, skippedSteps: optimizer.skippedSteps };
}
