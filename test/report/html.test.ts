import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, reportHtml, type ReportEnvironment } from '../../src/report/html.js';
import type { ExperimentRecord } from '../../src/experiments/runner.js';
import { METHODS } from '../../src/experiments/experiment.js';

const env: ReportEnvironment = {
  sparqVersion: '9.9.9',
  generatedAt: '2026-12-01T00:00:00.000Z',
  mode: 'quick',
  backend: 'cpu',
  adapter: null,
  cpuModel: 'Test CPU',
  cores: 2,
  memoryGiB: 24,
  platform: 'linux x64',
  node: 'v20',
};

const record = (name: string, title: string): ExperimentRecord => ({
  name,
  title,
  kind: 'experiment',
  methods: ['VRPO'],
  claim: 'variance <drops>',
  preregistered: 'ratio ≥ 2',
  mode: 'quick',
  backend: 'cpu',
  seeds: [0, 1, 2],
  config: { n: 1 },
  runs: [],
  summary: {
    metrics: [{ metric: 'V[s]', arm: 'antithetic', mean: 2.2, std: 0.1, n: 3 }],
    findings: [
      { claim: 'antithetic sampling cuts variance', verdict: { outcome: 'holds', detail: 'ratio 900×' } },
    ],
    plots: [],
    headlines: [{ method: 'VRPO', accuracy: 'V[ŝ] 2.2 vs 2184' }],
  },
  timing: { perSeedSeconds: [1, 1, 1], totalSeconds: 3 },
});

describe('report page', () => {
  test('escapes text from records', () => {
    assert.equal(escapeHtml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    const html = reportHtml({
      environment: env,
      records: [{ record: record('vrpo', '<script>x</script>'), plots: [] }],
      failures: [],
      benchmarks: [],
    });
    assert.ok(!html.includes('<script>'));
    assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
    assert.ok(html.includes('variance &lt;drops&gt;'));
  });

  test('the method table has the ten methods; headlines land in their row, unmeasured ones say so', () => {
    const html = reportHtml({
      environment: env,
      records: [{ record: record('vrpo', 'VRPO toy'), plots: [] }],
      failures: [],
      benchmarks: [],
    });
    const rows = html.split('<table class="methods">')[1].split('</table>')[0].split('<tr>').slice(2);
    assert.equal(rows.length, METHODS.length);
    const vrpo = rows.find((r) => r.includes('<b>VRPO</b>')) ?? '';
    assert.ok(vrpo.includes('V[ŝ] 2.2 vs 2184'));
    assert.ok(vrpo.includes('href="#exp-vrpo"'));
    const gft = rows.find((r) => r.includes('<b>GFT</b>')) ?? '';
    assert.ok(gft.includes('not measured in this run'));
    assert.ok(html.includes('0.1') && html.includes('2.20 ± 0.10'));
  });

  test('a failed run is shown with its error and linked from its methods', () => {
    const html = reportHtml({
      environment: env,
      records: [],
      failures: [{ name: 'gft-2d', title: 'GFT 2-D', methods: ['GFT'], error: 'RangeError: boom' }],
      benchmarks: [
        {
          file: 'bench/results/x.json',
          command: 'npm run bench',
          date: '2026-11-25',
          rows: [
            {
              area: 'sage',
              name: 'k',
              value: 128.1,
              unit: 'TOPS',
              backend: 'webgpu',
              tier: 'subgroup-matrix',
              device: 'H100',
            },
          ],
        },
      ],
    });
    assert.ok(html.includes('This run failed: <code>RangeError: boom</code>'));
    // the SageAttention row links the newest recorded benchmark of its area
    const sage = html.split('<b>SageAttention</b>')[1].split('</tr>')[0];
    assert.ok(sage.includes('recorded on a GPU (H100, 2026-11-25)'));
    assert.ok(sage.includes('href="#bench-bench-results-x-json"'));
    assert.ok(html.includes('<details id="bench-bench-results-x-json">'));
    assert.ok(html.includes('gft-2d (failed)'));
    assert.ok(html.includes('128.1 TOPS'));
  });
});
