/**
 * The mask predictor p_θ(x_i | x_t) of a masked diffusion LM: a bidirectional network that reads a
 * partly masked sequence and scores every real token at every position, with no timestep input
 * (LLaDA 1.5 §2.2; LLaDA GUIDELINES.md "Model Architecture": a Transformer without the causal mask;
 * the README FAQ's reason — the masked fraction is visible in the input). Everything in this folder
 * that needs a model takes the `MaskPredictor` interface, so a test can pass a hand-built one.
 *
 * `transformerMaskPredictor` is the concrete one: src/nn/transformer.ts with `causal: false`, an
 * input vocabulary of V + 1 (the real tokens 0..V−1 and [MASK] = V) and a head over the same V + 1
 * classes, of which the ELBO and the sampler read only the first V (masked-log-prob.ts says why).
 */
import { ShapeError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { Var } from '../autograd/var.js';
import { Transformer, type TransformerConfig } from '../nn/transformer.js';

export interface MaskPredictor {
  /** Number of real tokens V; they are 0..V−1. */
  readonly vocabSize: number;
  /** The [MASK] id the predictor reads (not a real token). */
  readonly maskToken: number;
  /** Longest sequence (prompt + response) it accepts. */
  readonly maxLength: number;
  /** Logits [B, T, C] (C ≥ V; classes ≥ V are ignored) for tokens [B·T] in 0..V−1 or [MASK]. */
  logits(tokens: Int32Array, batch: number, length: number): Var;
  /** Trainable parameters. */
  parameters(): Var[];
}

/**
 * Checks that a batch fits a predictor: B ≥ 1, 1 ≤ T ≤ maxLength, B·T tokens, every token a real one
 * or [MASK]. A vocabulary mismatch — a token ≥ V that is not [MASK] — is a ShapeError naming it.
 */
export function checkPredictorInput(
  model: MaskPredictor,
  tokens: Int32Array,
  batch: number,
  length: number,
): void {
  if (!(Number.isSafeInteger(batch) && batch >= 1 && Number.isSafeInteger(length) && length >= 1)) {
    throw new ShapeError(`mask predictor input needs B ≥ 1 and T ≥ 1; got B ${batch}, T ${length}`);
  }
  if (length > model.maxLength) {
    throw new ShapeError(
      `sequence length ${length} exceeds the predictor's maxLength ${model.maxLength}; shorten it or build a larger predictor`,
    );
  }
  if (tokens.length !== batch * length) {
    throw new ShapeError(
      `mask predictor input [${batch}, ${length}] needs ${batch * length} tokens; got ${tokens.length}`,
    );
  }
  for (let i = 0; i < tokens.length; i++) {
    const x = tokens[i];
    if (x !== model.maskToken && !(x >= 0 && x < model.vocabSize)) {
      throw new ShapeError(
        `vocabulary mismatch: token ${x} at position ${i} is neither a real token (0..${model.vocabSize - 1}) ` +
          `nor [MASK] (${model.maskToken})`,
      );
    }
  }
}

/** The transformer options a mask predictor fixes itself: vocabulary, causality. */
export type MaskPredictorTransformerConfig = Omit<TransformerConfig, 'vocab' | 'causal'>;

export interface TransformerMaskPredictorConfig extends MaskPredictorTransformerConfig {
  /** Number of real tokens V; [MASK] gets id V. */
  readonly vocabSize: number;
}

/** A bidirectional transformer mask predictor (see the module comment). */
export class TransformerMaskPredictor implements MaskPredictor {
  readonly vocabSize: number;
  readonly maskToken: number;
  readonly maxLength: number;
  readonly model: Transformer;
  readonly config: TransformerMaskPredictorConfig;

  constructor(config: TransformerMaskPredictorConfig) {
    const { vocabSize, ...rest } = config;
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 1) {
      throw new ShapeError(`vocabSize must be a positive integer; got ${vocabSize}`);
    }
    this.config = config;
    this.vocabSize = vocabSize;
    this.maskToken = vocabSize;
    this.model = new Transformer({ ...rest, vocab: vocabSize + 1, causal: false });
    this.maxLength = this.model.config.maxLen;
  }

  logits(tokens: Int32Array, batch: number, length: number): Var {
    checkPredictorInput(this, tokens, batch, length);
    return this.model.forward(new Tensor(tokens, [batch, length], 'int32')).logits;
  }

  parameters(): Var[] {
    return this.model.parameters();
  }

  /** A predictor with the same config and a copy of the current parameter values (e.g. π_ref). */
  clone(): TransformerMaskPredictor {
    const copy = new TransformerMaskPredictor(this.config);
    copyParameterValues(this, copy);
    return copy;
  }
}

export function transformerMaskPredictor(config: TransformerMaskPredictorConfig): TransformerMaskPredictor {
  return new TransformerMaskPredictor(config);
}

/** Overwrites `to`'s parameter values with `from`'s (same shapes in the same order, else ShapeError). */
export function copyParameterValues(from: MaskPredictor, to: MaskPredictor): void {
  const a = from.parameters();
  const b = to.parameters();
  if (a.length !== b.length || a.some((p, i) => p.value.size !== b[i].value.size)) {
    throw new ShapeError('copyParameterValues: the two predictors have different parameter shapes');
  }
  a.forEach((p, i) => (b[i].value.data as Float64Array).set(p.value.data as Float64Array));
}
