/**
 * Training checkpoints as safetensors files: parameters as `param.<name>` and optimizer slots as
 * `optim.<slot>.<index>`, all float64 so a resumed run starts from exactly the bits it stopped at;
 * counters go in `__metadata__` as decimal strings. Files are written atomically (write a temporary
 * file, flush, rename; see writeSafetensorsFile), so an interrupted save leaves the previous checkpoint.
 *
 * No RNG state is stored: the training loop draws step i's randomness from `Rng.fromSeed(seed).split(i)`,
 * which the step number alone determines.
 */
import { DTypeError, MalformedFileError, ShapeError } from '../core/errors.js';
import { Tensor, formatShape } from '../core/tensor.js';
import type { F64, Var } from '../autograd/var.js';
import { readSafetensors, writeSafetensorsFile } from '../io/safetensors-file.js';
import type { Optimizer } from './optimizer.js';

/** The `format` metadata value; loadCheckpoint rejects files without it. */
export const CHECKPOINT_FORMAT = 'sparq-checkpoint-1';

const PARAM = 'param.';
const OPTIM = 'optim.';
const USER = 'user.';

export interface CheckpointContents {
  /** Parameters by name; their current values are saved. */
  params: Record<string, Var>;
  optimizer: Optimizer;
  /** Training steps completed. */
  step: number;
  /** Extra string metadata, stored under `user.<key>`. */
  metadata?: Record<string, string>;
}

export interface LoadedCheckpoint {
  /** Training steps completed when the checkpoint was saved. */
  step: number;
  /** The extra metadata passed to saveCheckpoint. */
  metadata: Record<string, string>;
}

/** Saves parameters, optimizer state and step to `path`, atomically. */
export function saveCheckpoint(path: string, c: CheckpointContents): void {
  if (!Number.isSafeInteger(c.step) || c.step < 0) {
    throw new DTypeError(`checkpoint step must be a non-negative integer; got ${c.step}`);
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, p] of Object.entries(c.params)) tensors[PARAM + name] = p.value;
  const state = c.optimizer.state();
  for (const [name, t] of Object.entries(state.tensors)) tensors[OPTIM + name] = t;
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    step: String(c.step),
    'optimizer.step': String(state.step),
    'optimizer.skippedSteps': String(state.skippedSteps),
  };
  for (const [key, value] of Object.entries(c.metadata ?? {})) metadata[USER + key] = value;
  writeSafetensorsFile(path, tensors, { metadata });
}

function counter(path: string, metadata: Record<string, string>, key: string): number {
  const text = metadata[key];
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new MalformedFileError(
      `${path}: checkpoint metadata "${key}" must be a non-negative integer; got ${text}`,
    );
  }
  return n;
}

/**
 * Loads the checkpoint at `path` into `params` (values copied in place, so an optimizer holding these
 * Vars sees them) and `optimizer`. Every parameter must be in the file with its shape and the file may
 * hold no others (ShapeError); a file that is not a sparq checkpoint is MalformedFileError. Nothing is
 * changed unless every check passes.
 */
export function loadCheckpoint(
  path: string,
  target: { params: Record<string, Var>; optimizer: Optimizer },
): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new MalformedFileError(`${path}: not a sparq checkpoint (metadata format is ${metadata.format})`);
  }
  const step = counter(path, metadata, 'step');
  const optimState = {
    step: counter(path, metadata, 'optimizer.step'),
    skippedSteps: counter(path, metadata, 'optimizer.skippedSteps'),
    tensors: {} as Record<string, F64>,
  };
  const values = new Map<Var, Tensor>();
  for (const [name, p] of Object.entries(target.params)) {
    const t = tensors[PARAM + name] as Tensor | undefined;
    if (t === undefined)
      throw new ShapeError(`${path}: no tensor for parameter ${name} (${formatShape(p.shape)})`);
    if (t.dtype !== 'float64')
      throw new DTypeError(`${path}: parameter ${name} is ${t.dtype}; expected float64`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new ShapeError(
        `${path}: parameter ${name} has shape ${formatShape(t.shape)} in the file, ${formatShape(p.shape)} in the model`,
      );
    }
    values.set(p, t);
  }
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(OPTIM)) optimState.tensors[name.slice(OPTIM.length)] = t as F64;
    else if (!(name.startsWith(PARAM) && name.slice(PARAM.length) in target.params)) {
      throw new ShapeError(`${path}: tensor ${name} matches no parameter of the model`);
    }
  }
  target.optimizer.loadState(optimState);
  for (const [p, t] of values) p.value.data.set(t.data);
  const user: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata))
    if (key.startsWith(USER)) user[key.slice(USER.length)] = value;
  return { step, metadata: user };
}
