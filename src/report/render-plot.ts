/**
 * Renders a plot spec (experiments/plot-spec.ts) to a standalone SVG string with vega-lite (compile to
 * Vega) and vega's headless View (`renderer: 'none'`, `toSVG`), so `sparq run` and `sparq report`
 * draw figures without a browser or a canvas binary. vega / vega-lite 5 are the last majors that run
 * on Node 20 (ts_webgpu_ecosystem.md §5).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { PlotSpec } from '../experiments/plot-spec.js';

export async function renderPlotSvg(plot: PlotSpec): Promise<string> {
  const { spec } = compile(plot.vegaLite as unknown as TopLevelSpec);
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
