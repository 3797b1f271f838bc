import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { barPlot, linePlot } from '../../src/experiments/plot-spec.js';
import { renderPlotSvg } from '../../src/report/render-plot.js';

describe('plot specs render to SVG', () => {
  test('a line plot with series, ±std band and a reference line', async () => {
    const plot = linePlot({
      id: 'loss-curves',
      caption: 'loss',
      values: [
        { step: 0, loss: 2, std: 0.1, arm: 'fp32' },
        { step: 10, loss: 1, std: 0.1, arm: 'fp32' },
        { step: 0, loss: 2.1, std: 0.2, arm: 'int8' },
        { step: 10, loss: 1.3, std: 0.2, arm: 'int8' },
      ],
      x: 'step',
      y: 'loss',
      yTitle: 'training loss',
      series: 'arm',
      std: 'std',
      rules: [{ y: 1.5, label: 'noise floor' }],
    });
    const svg = await renderPlotSvg(plot);
    assert.match(svg, /^<svg[^>]*width="\d+"/);
    for (const text of ['training loss', 'step', 'fp32', 'int8', 'noise floor'])
      assert.ok(svg.includes(text), text);
  });

  test('grouped bars, and points on a log axis', async () => {
    const values = [
      { input: 'a', arm: 'x', v: 0.01, sd: 0.001 },
      { input: 'a', arm: 'y', v: 0.1, sd: 0.01 },
      { input: 'b', arm: 'x', v: 0.02, sd: 0.002 },
    ];
    for (const yScale of ['linear', 'log'] as const) {
      const svg = await renderPlotSvg(
        barPlot({
          id: 'bars',
          caption: 'c',
          values,
          category: 'input',
          y: 'v',
          group: 'arm',
          std: 'sd',
          yScale,
        }),
      );
      assert.ok(svg.includes('<svg') && svg.includes('arm'), yScale);
    }
  });

  test('plot ids are file-safe', () => {
    assert.throws(
      () => linePlot({ id: 'Loss Curves', caption: '', values: [], x: 'a', y: 'b' }),
      /lower-case letters, digits and dashes/,
    );
  });
});
