/**
 * Character-level language modelling on the shipped KJV Genesis (data/README.md), the workload of
 * the int8-glu experiment and reusable by any experiment that trains the tiny transformer on text:
 * the corpus split into train and validation, a seeded training run with AdamW and a warm-up +
 * cosine schedule, and a deterministic validation loss.
 *
 * Randomness: batch b of a run is drawn from Rng.fromSeed(seed).split(1).split(b), independent of
 * the model and its precision mode, so arms trained with the same seed see the same batches (a
 * paired comparison); the model is initialised from the same seed.
 */
import { Rng } from '../core/rng.js';
import { ShapeError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { backward } from '../autograd/backward.js';
import { crossEntropy } from '../autograd/cross-entropy.js';
import { reshape } from '../autograd/shape-ops.js';
import { noGrad } from '../autograd/var.js';
import { CharTokenizer } from '../io/char-tokenizer.js';
import { readShippedText } from '../io/shipped-text.js';
import {
  type Transformer,
  type TransformerConfig,
  type TransformerForwardOptions,
  transformer,
} from '../nn/transformer.js';
import { adamw } from '../train/adamw.js';
import { sampleLmBatch } from '../train/lm-batch.js';
import { cosineSchedule } from '../train/lr-schedule.js';

export interface CharLmData {
  readonly tokenizer: CharTokenizer;
  /** The first (1 − valFraction) of the text. */
  readonly train: Int32Array;
  /** The rest: held-out text for the validation loss. */
  readonly val: Int32Array;
}

/** KJV Genesis as token ids, split at (1 − valFraction) of its length (default 10 % held out). */
export function loadCharLmData(valFraction = 0.1): CharLmData {
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`valFraction must be in (0, 1); got ${valFraction}`);
  }
  const text = readShippedText('kjv-genesis');
  const tokenizer = CharTokenizer.fromText(text);
  const ids = tokenizer.encode(text);
  const cut = Math.floor(ids.length * (1 - valFraction));
  return { tokenizer, train: ids.subarray(0, cut), val: ids.subarray(cut) };
}

export interface CharLmTrainOptions {
  /** The model; `vocab` comes from the data, `maxLen` is `seqLen` and `seed` the run's seed. */
  readonly model: Omit<TransformerConfig, 'vocab' | 'seed' | 'maxLen'>;
  readonly data: CharLmData;
  readonly steps: number;
  readonly batch: number;
  readonly seqLen: number;
  /** Peak AdamW learning rate, reached after `warmup` steps, then cosine to `minLr`. */
  readonly lr: number;
  readonly warmup: number;
  readonly minLr: number;
  readonly weightDecay: number;
  readonly seed: number;
  /** Steps per point of the returned training-loss curve (each point the mean over its steps). */
  readonly curveEvery: number;
  /** Called after every step. */
  readonly onStep?: (step: number, loss: number) => void;
}

export interface CharLmRun {
  readonly model: Transformer;
  /** Mean training loss over each block of `curveEvery` steps, at the block's last step (1-based). */
  readonly curve: readonly { readonly step: number; readonly loss: number }[];
  /** Updates skipped for a non-finite gradient. */
  readonly skippedSteps: number;
}

/** Trains a fresh transformer on the corpus (see the module comment for the randomness). */
export function trainCharLm(o: CharLmTrainOptions): CharLmRun {
  const vocab = o.data.tokenizer.vocabSize;
  const model = transformer({ ...o.model, vocab, seed: o.seed, maxLen: o.seqLen });
  const opt = adamw(model.parameters(), { lr: o.lr, betas: [0.9, 0.95], weightDecay: o.weightDecay });
  const schedule = cosineSchedule({ lr: o.lr, steps: o.steps, warmup: o.warmup, minLr: o.minLr });
  const batches = Rng.fromSeed(o.seed).split(1);
  const curve: { step: number; loss: number }[] = [];
  let acc = 0;
  let n = 0;
  for (let step = 0; step < o.steps; step++) {
    const { inputs, targets } = sampleLmBatch(o.data.train, o.batch, o.seqLen, batches.split(step));
    opt.lr = schedule(step);
    opt.zeroGrad();
    const loss = crossEntropy(reshape(model.forward(inputs, { step }).logits, [-1, vocab]), targets);
    backward(loss);
    opt.step();
    const l = loss.item();
    o.onStep?.(step, l);
    acc += l;
    n++;
    if ((step + 1) % o.curveEvery === 0 || step + 1 === o.steps) {
      curve.push({ step: step + 1, loss: acc / n });
      acc = 0;
      n = 0;
    }
  }
  return { model, curve, skippedSteps: opt.skippedSteps };
}

/**
 * `count` windows of seqLen + 1 tokens spread evenly over `ids` (no randomness, so every arm and
 * seed is scored on the same text), as an int32 batch [count, seqLen] and next-token targets.
 */
export function evenWindows(
  ids: Int32Array,
  count: number,
  seqLen: number,
): { inputs: Tensor<'int32'>; targets: Int32Array } {
  const span = ids.length - seqLen - 1;
  if (span < 0 || count < 1) {
    throw new ShapeError(`evenWindows: ${ids.length} tokens cannot hold ${count} windows of ${seqLen} + 1`);
  }
  const inputs = new Int32Array(count * seqLen);
  const targets = new Int32Array(count * seqLen);
  for (let w = 0; w < count; w++) {
    const start = count === 1 ? 0 : Math.floor((w * span) / (count - 1));
    inputs.set(ids.subarray(start, start + seqLen), w * seqLen);
    targets.set(ids.subarray(start + 1, start + seqLen + 1), w * seqLen);
  }
  return { inputs: new Tensor(inputs, [count, seqLen], 'int32'), targets };
}

/** Mean next-token cross-entropy (nats) of `model` on evenly spread windows of `ids`, in chunks of windows. */
export function evalCharLm(
  model: Transformer,
  ids: Int32Array,
  windows: number,
  seqLen: number,
  forward: TransformerForwardOptions = {},
  chunk = 16,
): number {
  const { inputs, targets } = evenWindows(ids, windows, seqLen);
  const vocab = model.config.vocab;
  let total = 0;
  noGrad(() => {
    for (let w = 0; w < windows; w += chunk) {
      const rows = Math.min(chunk, windows - w);
      const part = new Tensor(inputs.data.slice(w * seqLen, (w + rows) * seqLen), [rows, seqLen], 'int32');
      const logits = reshape(model.forward(part, forward).logits, [-1, vocab]);
      const loss = crossEntropy(logits, targets.subarray(w * seqLen, (w + rows) * seqLen)).item();
      total += loss * rows;
    }
  });
  return total / windows;
}
