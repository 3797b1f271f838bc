/**
 * Plots as data: an experiment returns Vega-Lite specifications with their values inline, and the
 * report and `sparq run` render them to SVG with vega / vega-lite (src/report/render-plot.ts). Keeping
 * the spec as plain JSON means the experiment layer needs no plotting code and the JSON under
 * `results/` holds everything needed to redraw a figure.
 *
 * The builders cover the figures the experiments draw (curves over steps or a swept parameter, with an
 * optional ±std band; grouped bars); anything else can be written as a raw Vega-Lite spec.
 */

/** A figure: a file-safe id, a caption, and a Vega-Lite v5 spec with inline data. */
export interface PlotSpec {
  /** Lower-case letters, digits and dashes; becomes `<experiment>-<id>.svg`. */
  readonly id: string;
  readonly caption: string;
  readonly vegaLite: Readonly<Record<string, unknown>>;
}

const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

export type AxisScale = 'linear' | 'log';

export interface LinePlotOptions {
  readonly id: string;
  readonly caption: string;
  /** One object per point; must hold the x, y and (when given) series and std fields. */
  readonly values: readonly Record<string, number | string | null>[];
  readonly x: string;
  readonly y: string;
  readonly xTitle?: string;
  readonly yTitle?: string;
  /** Field naming the curve a point belongs to. */
  readonly series?: string;
  /** Field holding each point's standard deviation: drawn as a band of ±std around the curve. */
  readonly std?: string;
  readonly xScale?: AxisScale;
  readonly yScale?: AxisScale;
  /** Draw point marks on the curve (default true for fewer than 40 points per series). */
  readonly points?: boolean;
  /** Horizontal reference lines, e.g. a threshold or a noise floor. */
  readonly rules?: readonly { readonly y: number; readonly label: string }[];
}

const assertId = (id: string): void => {
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(id)) {
    throw new TypeError(`plot id must be lower-case letters, digits and dashes; got '${id}'`);
  }
};

const axis = (field: string, title: string | undefined, scale: AxisScale | undefined) => ({
  field,
  type: 'quantitative',
  title: title ?? field,
  ...(scale === 'log' ? { scale: { type: 'log' } } : { scale: { zero: false } }),
});

/** Curves of y over x, one per series, optionally with ±std bands and reference lines. */
export function linePlot(o: LinePlotOptions): PlotSpec {
  assertId(o.id);
  const color = o.series ? { color: { field: o.series, type: 'nominal', title: o.series } } : {};
  const seriesCount = o.series ? new Set(o.values.map((v) => v[o.series as string])).size : 1;
  const points = o.points ?? o.values.length / seriesCount < 40;
  const x = axis(o.x, o.xTitle, o.xScale);
  const y = axis(o.y, o.yTitle, o.yScale);
  const layers: Record<string, unknown>[] = [];
  if (o.std) {
    layers.push({
      transform: [
        { calculate: `datum['${o.y}'] - datum['${o.std}']`, as: '__lo' },
        { calculate: `datum['${o.y}'] + datum['${o.std}']`, as: '__hi' },
      ],
      mark: { type: 'area', opacity: 0.2 },
      encoding: { x, y: { ...y, field: '__lo' }, y2: { field: '__hi' }, ...color },
    });
  }
  layers.push({ mark: { type: 'line', point: points }, encoding: { x, y, ...color } });
  for (const rule of o.rules ?? []) {
    layers.push({
      data: { values: [{ y: rule.y, label: rule.label }] },
      layer: [
        {
          mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' },
          encoding: { y: { field: 'y', type: 'quantitative' } },
        },
        {
          mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: 'gray' },
          encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } },
        },
      ],
    });
  }
  return {
    id: o.id,
    caption: o.caption,
    vegaLite: {
      $schema: VEGA_LITE_SCHEMA,
      width: 420,
      height: 260,
      data: { values: o.values },
      layer: layers,
    },
  };
}

export interface BarPlotOptions {
  readonly id: string;
  readonly caption: string;
  readonly values: readonly Record<string, number | string | null>[];
  /** Category on the x axis. */
  readonly category: string;
  readonly y: string;
  readonly yTitle?: string;
  /** Field splitting each category into side-by-side bars. */
  readonly group?: string;
  /** Field holding each bar's standard deviation: drawn as an error bar. */
  readonly std?: string;
  readonly yScale?: AxisScale;
}

/**
 * Bars of y per category (grouped side by side when `group` is given), with optional ±std error bars.
 * On a log axis bars have no baseline, so the values are drawn as points instead, and the lower end of
 * an error bar is clamped to a tenth of the value.
 */
export function barPlot(o: BarPlotOptions): PlotSpec {
  assertId(o.id);
  const log = o.yScale === 'log';
  const y = { ...axis(o.y, o.yTitle, o.yScale), ...(log ? {} : { scale: { zero: true } }) };
  const x = { field: o.category, type: 'nominal', title: o.category, sort: null, axis: { labelAngle: 0 } };
  const offset = o.group ? { xOffset: { field: o.group, type: 'nominal' } } : {};
  const color = o.group ? { color: { field: o.group, type: 'nominal', title: o.group } } : {};
  const mark = log ? { type: 'point', filled: true, size: 60 } : { type: 'bar' };
  const layers: Record<string, unknown>[] = [{ mark, encoding: { x, y, ...offset, ...color } }];
  if (o.std) {
    const lo = log
      ? `max(datum['${o.y}'] - datum['${o.std}'], datum['${o.y}'] / 10)`
      : `datum['${o.y}'] - datum['${o.std}']`;
    layers.push({
      transform: [
        { calculate: lo, as: '__lo' },
        { calculate: `datum['${o.y}'] + datum['${o.std}']`, as: '__hi' },
      ],
      mark: { type: 'errorbar', ticks: true },
      encoding: { x, y: { ...y, field: '__lo' }, y2: { field: '__hi' }, ...offset, ...color },
    });
  }
  return {
    id: o.id,
    caption: o.caption,
    vegaLite: {
      $schema: VEGA_LITE_SCHEMA,
      width: 420,
      height: 260,
      data: { values: o.values },
      layer: layers,
    },
  };
}
