/**
 * The dense warm-up SVG and SVG2 share (sparse_attention.md §2.1 "Warm-up conversion", §3.2 step 8): the
 * first steps of the denoising loop and the first layers of the network run dense attention.
 *
 * The reference sets k = ⌊first_times_fp·steps⌋ and threshold = timesteps[k−1] − 1 (1001 when k = 0), and
 * runs a call dense when its timestep is above the threshold. Timesteps are integers that strictly
 * decrease from step to step, so "timestep[s] > timesteps[k−1] − 1" holds exactly for s ≤ k − 1: the
 * rule is "step index s < ⌊first_times_fp·steps⌋", which is what this file implements, with step
 * indices instead of timesteps. Layers: dense when layer < ⌊first_layers_fp·num_layers⌋.
 */
import { UnsupportedOptionError } from '../../core/errors.js';

export interface DenseWarmupOptions {
  /** 0-based index of this call's denoising step (with `numSteps`; omit both for no step warm-up). */
  step?: number;
  /** Number of denoising steps of the sampling loop. */
  numSteps?: number;
  /** Fraction of the first steps run dense (default 0.075, the reference CLI's `--first_times_fp`). */
  firstTimesFp?: number;
  /** 0-based index of this call's layer (with `numLayers`; omit both for no layer warm-up). */
  layer?: number;
  numLayers?: number;
  /** Fraction of the first layers always run dense (default 0.025, `--first_layers_fp`). */
  firstLayersFp?: number;
}

export const DENSE_WARMUP_KEYS: readonly (keyof DenseWarmupOptions)[] = [
  'step',
  'numSteps',
  'firstTimesFp',
  'layer',
  'numLayers',
  'firstLayersFp',
];

function fraction(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new UnsupportedOptionError(`${name} must be a fraction in [0, 1]; got ${String(value)}`);
  }
  return value;
}

function indexPair(index: unknown, count: unknown, names: [string, string]): [number, number] | undefined {
  if (index === undefined && count === undefined) return undefined;
  if (!Number.isSafeInteger(count) || (count as number) < 1) {
    throw new UnsupportedOptionError(
      `${names[1]} must be an integer ≥ 1 when ${names[0]} is given; got ${String(count)}`,
    );
  }
  if (!Number.isSafeInteger(index) || (index as number) < 0 || (index as number) >= (count as number)) {
    throw new UnsupportedOptionError(
      `${names[0]} must be an integer in [0, ${names[1]} = ${String(count)}); got ${String(index)}`,
    );
  }
  return [index as number, count as number];
}

/** Whether this call runs dense because of the step or layer warm-up (module comment). */
export function isDenseWarmup(o: DenseWarmupOptions): boolean {
  const steps = indexPair(o.step, o.numSteps, ['step', 'numSteps']);
  const layers = indexPair(o.layer, o.numLayers, ['layer', 'numLayers']);
  const timesFp = fraction(o.firstTimesFp, 'firstTimesFp', 0.075);
  const layersFp = fraction(o.firstLayersFp, 'firstLayersFp', 0.025);
  if (steps && steps[0] < Math.floor(timesFp * steps[1])) return true;
  if (layers && layers[0] < Math.floor(layersFp * layers[1])) return true;
  return false;
}
