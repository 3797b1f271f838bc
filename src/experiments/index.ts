/** The experiment layer: the contract, the registry, the runner, statistics and plot specs. */
export {
  METHODS,
  type MethodName,
  type RunMode,
  type RunContext,
  type MetricRow,
  type Verdict,
  type Finding,
  type Headline,
  type Summary,
  type Experiment,
  type SeedRun,
  type AnyExperiment,
  defineExperiment,
} from './experiment.js';
export { EXPERIMENTS, findExperiment } from './registry.js';
export { runExperiment, reproducibleRecord, type RunOptions, type ExperimentRecord } from './runner.js';
export { meanStd, metricRow, formatMeanStd, type MeanStd } from './stats.js';
export {
  linePlot,
  barPlot,
  type PlotSpec,
  type LinePlotOptions,
  type BarPlotOptions,
  type AxisScale,
} from './plot-spec.js';
