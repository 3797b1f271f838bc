/**
 * The SageAttention accuracy evaluation (attention/sage/evaluate.ts) as a registered evaluation, so
 * `sparq run sage` and `sparq report` run it like every other experiment: one seed per `runSeed`, the
 * rows and the papers' findings computed over all seeds in `summarize`.
 *
 * Claims (SA1 §4, SA2 §3, SA2++ §3, SA3 §3; sageattention.md §9): K smoothing rescues INT4 QK; INT4
 * per-thread ≈ per-token ≫ per-block; E4M3 P ≫ INT8 P; two-level NVFP4 P ≫ direct; FP16 accumulation
 * overflows without SA2++'s range limit and matches FP32 with it; V smoothing helps a V channel bias.
 * Each criterion is fixed in evaluate.ts before measuring. The measured outcome on these synthetic
 * inputs is in the README (some findings do not carry over from real-model activations).
 */
import {
  EVAL_SHAPES,
  type EvalShapes,
  type SageSeedMeasurement,
  combineSageSeeds,
  measureSageSeed,
} from '../attention/sage/evaluate.js';
import { SAGE_PRESETS } from '../attention/sage/presets.js';
import { type MetricRow, defineExperiment } from './experiment.js';
import { barPlot } from './plot-spec.js';
import { metricRow } from './stats.js';

export const sageAccuracy = defineExperiment<EvalShapes, SageSeedMeasurement>({
  name: 'sage',
  title: 'SageAttention accuracy against the float64 oracle',
  kind: 'evaluation',
  methods: ['SageAttention'],
  claim:
    'Quantized attention keeps end-to-end accuracy (SA1 §4, SA2 §3, SA2++ §3, SA3 §3): K smoothing rescues INT4 QK; ' +
    'INT4 per-thread ≈ per-token ≫ per-block; E4M3 P ≫ INT8 P; two-level NVFP4 P ≫ direct; FP16 accumulation ' +
    "overflows without SA2++'s range limit and matches FP32 with it; V smoothing helps a V channel bias.",
  preregistered:
    '"≫" means the worse relative L1 is ≥ 2× the better one; "≈" / "matches" means within ±10 %; overflow means ' +
    'some ±inf output or relative L1 ≥ 1; never NaN on finite input. Judged on the seed means.',
  defaultSeeds: 3,
  config: (mode) => ({ ...EVAL_SHAPES[mode] }),
  runSeed: (shapes, seed, ctx) =>
    measureSageSeed(seed, shapes, (done, total, label) => ctx.progress(done, total, label)),
  summarize(shapes, runs) {
    const evaluation = combineSageSeeds(
      'quick',
      runs.map((r) => r.result),
    );
    const metrics: MetricRow[] = [];
    for (const row of evaluation.rows) {
      const arm = `${row.config} · ${row.input}`;
      metrics.push(metricRow('relative L1', arm, row.relL1.perSeed));
      if (row.cosine) metrics.push(metricRow('cosine', arm, row.cosine.perSeed));
      metrics.push(metricRow('RMSE', arm, row.rmse.perSeed));
    }
    const presetRows = evaluation.rows.filter((r) => r.family === 'preset');
    const values = presetRows.map((r) => ({
      input: r.input,
      preset: r.config,
      relL1: r.relL1.mean,
      std: r.relL1.std ?? 0,
    }));
    const gaussian = presetRows.filter((r) => r.input === 'gaussian');
    const fmt = (x: number) => x.toPrecision(2);
    return {
      metrics,
      findings: evaluation.findings.map((f) => ({
        claim: `${f.claim} (${f.input} input)`,
        verdict: {
          outcome: f.holds ? 'holds' : 'does-not-hold',
          detail: `${f.measured}; criterion: ${f.criterion}; paper: ${f.paper}`,
        },
      })),
      plots: [
        barPlot({
          id: 'presets-rel-l1',
          caption: `Relative L1 vs the float64 oracle of each preset on each input (B·H·N·D = ${shapes.batch}·${shapes.heads}·${shapes.tokens}·${shapes.headDim}; long: N ${shapes.longTokens}), mean ± std over ${runs.length} seeds.`,
          values,
          category: 'input',
          group: 'preset',
          y: 'relL1',
          yTitle: 'relative L1',
          std: 'std',
          yScale: 'log',
        }),
      ],
      headlines: [
        {
          method: 'SageAttention',
          accuracy:
            `rel. L1 on Gaussian N ${shapes.tokens}, D ${shapes.headDim}: ` +
            SAGE_PRESETS.map(
              (p) => `${p} ${fmt(gaussian.find((r) => r.config === p)?.relL1.mean ?? NaN)}`,
            ).join(', ') +
            ` (${evaluation.findings.filter((f) => f.holds).length}/${evaluation.findings.length} findings hold)`,
        },
      ],
      notes: [
        'CPU emulation of the kernels’ numerics (kernel-cpu.ts); the WebGPU kernels equal it to float rounding (tests).',
      ],
    };
  },
});
