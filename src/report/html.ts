/**
 * The report page `sparq report` writes: the machine and backend it ran on, the table of the ten
 * methods with the accuracy and speed figures this run measured, then one section per experiment and
 * evaluation (claim, pre-registered test, findings, metrics, plots), then the GPU benchmarks recorded in
 * the repository. The page is one self-contained HTML file: inline CSS, figures as inline SVG, no
 * script, so it opens anywhere, offline.
 */
import { METHODS, type MethodName } from '../experiments/experiment.js';
import type { ExperimentRecord } from '../experiments/runner.js';
import { formatMeanStd } from '../experiments/stats.js';

/** Where the report ran. */
export interface ReportEnvironment {
  readonly sparqVersion: string;
  /** ISO date-time the report was generated (the only wall-clock fact on the page besides timings). */
  readonly generatedAt: string;
  readonly mode: 'quick' | 'full';
  readonly backend: 'cpu' | 'webgpu';
  /** The WebGPU adapter, when one was found (whether or not the experiments used it). */
  readonly adapter: string | null;
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly node: string;
}

/** A figure of a record, already rendered. */
export interface RenderedPlot {
  readonly id: string;
  readonly caption: string;
  readonly svg: string;
  /** Path of the SVG file written next to the page, relative to it. */
  readonly file: string;
}

/** A record that failed to run: the report shows the error instead of results. */
export interface FailedRun {
  readonly name: string;
  readonly title: string;
  readonly methods: readonly string[];
  readonly error: string;
}

/** A benchmark results file of the repository (bench/results/*.json). */
export interface RecordedBenchmark {
  readonly file: string;
  readonly command: string;
  readonly date: string;
  readonly rows: readonly {
    readonly area: string;
    readonly name: string;
    readonly value: number;
    readonly unit: string;
    readonly backend: string;
    readonly tier: string;
    readonly device: string;
    readonly notes?: string;
  }[];
}

export interface ReportInput {
  readonly environment: ReportEnvironment;
  readonly records: readonly { readonly record: ExperimentRecord; readonly plots: readonly RenderedPlot[] }[];
  readonly failures: readonly FailedRun[];
  readonly benchmarks: readonly RecordedBenchmark[];
}

/** Family, paper and benchmark area (bench/results rows) of each method, for the table of methods. */
export const METHOD_INFO: Readonly<
  Record<MethodName, { family: string; paper: string; benchArea?: string }>
> = {
  SageAttention: {
    family: 'quantized attention',
    paper: 'SageAttention 1/2/2++/3 (ICLR’25, ICML’25, NeurIPS’25)',
    benchArea: 'sage',
  },
  SpargeAttn: { family: 'sparse attention', paper: 'SpargeAttn (ICML’25)', benchArea: 'sparse' },
  'Sparse VideoGen': { family: 'sparse attention', paper: 'Sparse VideoGen (ICML’25)', benchArea: 'svg' },
  SVG2: { family: 'sparse attention', paper: 'Sparse VideoGen2 (NeurIPS’25)', benchArea: 'svg' },
  'Fallback Quantization': { family: 'low-bit training', paper: 'Fallback Quantization, INT8 (ICML’25)' },
  TetraJet: { family: 'low-bit training', paper: 'TetraJet, MXFP4 + Q-EMA / Q-Ramping (ICML’25)' },
  SageBwd: { family: 'low-bit training', paper: 'SageBwd, 8-bit trainable attention (SageAttention3 §4)' },
  GFT: { family: 'generative training', paper: 'GFT, guidance-free training (ICML’25)' },
  'Analytic-Precond': { family: 'generative training', paper: 'Analytic-Precond (ICLR’25)' },
  VRPO: { family: 'generative training', paper: 'VRPO, LLaDA 1.5' },
};

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const h = escapeHtml;

const anchor = (name: string): string => `exp-${name.replace(/[^a-z0-9-]/gi, '-')}`;
const benchAnchor = (file: string): string => `bench-${file.replace(/[^a-z0-9-]/gi, '-')}`;

/** The newest recorded benchmark file with rows of `area` (the list is sorted newest first). */
const newestBenchmark = (benchmarks: readonly RecordedBenchmark[], area: string | undefined) =>
  area === undefined ? undefined : benchmarks.find((b) => b.rows.some((r) => r.area === area));

const OUTCOME_LABEL = {
  holds: 'holds',
  'does-not-hold': 'does not hold',
  inconclusive: 'inconclusive',
} as const;

function methodTable(input: ReportInput): string {
  const rows = METHODS.map((method) => {
    const own = input.records.filter(({ record }) => record.methods.includes(method));
    const headlines = own.flatMap(({ record }) =>
      record.summary.headlines.filter((x) => x.method === method).map((x) => ({ ...x, from: record.name })),
    );
    const failed = input.failures.filter((f) => f.methods.includes(method));
    const info = METHOD_INFO[method];
    const recorded = newestBenchmark(input.benchmarks, info.benchArea);
    const cell = (key: 'accuracy' | 'speed'): string => {
      const items = headlines
        .filter((x) => x[key] !== undefined)
        .map((x) => `${h(x[key] as string)} <a class="src" href="#${anchor(x.from)}">${h(x.from)}</a>`);
      if (key === 'speed' && recorded) {
        const device = recorded.rows.find((r) => r.backend === 'webgpu')?.device ?? recorded.rows[0].device;
        items.push(
          `<span class="recorded">recorded on a GPU (${h(device)}, ${h(recorded.date)}): <a href="#${benchAnchor(recorded.file)}">${h(recorded.file.split('/').pop() ?? recorded.file)}</a></span>`,
        );
      }
      return items.length > 0 ? items.join('<br>') : '<span class="none">not measured in this run</span>';
    };
    const sources = [
      ...own.map(({ record }) => `<a href="#${anchor(record.name)}">${h(record.name)}</a>`),
      ...failed.map((f) => `<a class="failed" href="#${anchor(f.name)}">${h(f.name)} (failed)</a>`),
    ];
    return `<tr><td><b>${h(method)}</b><br><span class="paper">${h(info.paper)}</span></td><td>${h(info.family)}</td><td>${cell('accuracy')}</td><td>${cell('speed')}</td><td>${sources.join('<br>') || '<span class="none">none registered</span>'}</td></tr>`;
  });
  return `<table class="methods"><thead><tr><th>method</th><th>family</th><th>accuracy (this run)</th><th>speed (this run)</th><th>measured by</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function metricsTable(record: ExperimentRecord): string {
  if (record.summary.metrics.length === 0) return '';
  const body = record.summary.metrics
    .map(
      (m) =>
        `<tr><td>${h(m.arm)}</td><td>${h(m.metric)}</td><td class="num">${h(formatMeanStd(m))}${m.unit ? ` ${h(m.unit)}` : ''}</td><td class="num">${m.n}</td></tr>`,
    )
    .join('');
  return `<details><summary>metrics (${record.summary.metrics.length} rows, mean ± std over seeds)</summary><table><thead><tr><th>arm</th><th>metric</th><th>value</th><th>n</th></tr></thead><tbody>${body}</tbody></table></details>`;
}

function findingsList(record: ExperimentRecord): string {
  if (record.summary.findings.length === 0) return '';
  const items = record.summary.findings
    .map(
      (f) =>
        `<li><span class="verdict ${f.verdict.outcome}">${OUTCOME_LABEL[f.verdict.outcome]}</span> ${h(f.claim)} — <span class="detail">${h(f.verdict.detail)}</span></li>`,
    )
    .join('');
  return `<ul class="findings">${items}</ul>`;
}

function recordSection(record: ExperimentRecord, plots: readonly RenderedPlot[]): string {
  const figures = plots
    .map(
      (p) =>
        `<figure id="${anchor(record.name)}-${h(p.id)}">${p.svg}<figcaption>${h(p.caption)} <a href="${h(p.file)}">SVG</a></figcaption></figure>`,
    )
    .join('');
  const notes = (record.summary.notes ?? []).map((n) => `<li>${h(n)}</li>`).join('');
  const seconds = record.timing.totalSeconds;
  return `<section class="record" id="${anchor(record.name)}">
<h3>${h(record.title)} <code>${h(record.name)}</code> <span class="kind">${h(record.kind)}</span></h3>
<p class="meta">${h(record.methods.join(', '))} · ${h(record.mode)} mode · seeds ${h(record.seeds.join(', '))} · ${h(record.backend)} · ${seconds.toFixed(1)} s</p>
<p><b>Claim.</b> ${h(record.claim)}</p>
<p><b>Pre-registered.</b> ${h(record.preregistered)}</p>
${findingsList(record)}
<div class="figures">${figures}</div>
${notes ? `<ul class="notes">${notes}</ul>` : ''}
${metricsTable(record)}
<details><summary>config</summary><pre>${h(JSON.stringify(record.config, null, 2))}</pre></details>
</section>`;
}

function failureSection(f: FailedRun): string {
  return `<section class="record failed" id="${anchor(f.name)}"><h3>${h(f.title)} <code>${h(f.name)}</code></h3><p class="error">This run failed: <code>${h(f.error)}</code></p></section>`;
}

function benchmarkSection(benchmarks: readonly RecordedBenchmark[]): string {
  if (benchmarks.length === 0) {
    return '<p class="none">No recorded benchmark files were found (bench/results/ in a clone of the repository).</p>';
  }
  const files = benchmarks
    .map((b) => {
      const rows = b.rows
        .map(
          (r) =>
            `<tr><td>${h(r.name)}</td><td class="num">${r.value >= 100 ? r.value.toFixed(1) : r.value.toPrecision(3)} ${h(r.unit)}</td><td>${h(r.backend)}</td><td>${h(r.tier)}</td><td>${h(r.device)}</td><td>${h(r.notes ?? '')}</td></tr>`,
        )
        .join('');
      return `<details id="${benchAnchor(b.file)}"><summary><code>${h(b.file)}</code> · ${h(b.date)} · ${b.rows.length} rows</summary><p><code>${h(b.command)}</code></p><table><thead><tr><th>what</th><th>value</th><th>backend</th><th>tier</th><th>device</th><th>notes</th></tr></thead><tbody>${rows}</tbody></table></details>`;
    })
    .join('');
  return `<p>Speed figures measured on GPUs by <code>npm run bench</code> in earlier runs and stored with the repository (not re-measured by this report; BENCHMARKS.md explains each).</p>${files}`;
}

const STYLE = `
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d1d1f}
h1{margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:14px} th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f5f5f7} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.methods td:nth-child(3),table.methods td:nth-child(4){max-width:340px}
.paper,.meta,.kind,.src,.recorded{color:#666;font-size:13px} .none{color:#999} a.failed,.error{color:#b00020}
.verdict{display:inline-block;min-width:7em;padding:0 6px;border-radius:4px;font-size:13px;text-align:center}
.verdict.holds{background:#d8f5dc} .verdict.does-not-hold{background:#fde0e0} .verdict.inconclusive{background:#eee}
.figures{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figcaption{font-size:13px;color:#444;max-width:460px}
section.record{border-top:1px solid #eee;padding-top:.5em} pre{background:#f5f5f7;padding:.6em;overflow:auto;font-size:12px}
`;

/** The whole page. */
export function reportHtml(input: ReportInput): string {
  const env = input.environment;
  const sections = [
    ...input.records.map(({ record, plots }) => recordSection(record, plots)),
    ...input.failures.map(failureSection),
  ].join('\n');
  const machine = `${env.cpuModel}, ${env.cores} cores, ${env.memoryGiB.toFixed(0)} GiB, ${env.platform}, Node ${env.node}`;
  const gpu = env.adapter ? `WebGPU adapter: ${env.adapter}` : 'no WebGPU adapter found';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sparq report</title><style>${STYLE}</style></head>
<body>
<h1>sparq report</h1>
<p class="meta">sparq ${h(env.sparqVersion)} · generated ${h(env.generatedAt)} · ${h(env.mode)} mode<br>
Machine: ${h(machine)}<br>Backend used: <b>${h(env.backend)}</b> · ${h(gpu)}</p>
<p>Every accuracy figure is measured against sparq's float64 oracle on the same inputs; every claim is the mean ± std over the seeds listed with it and is judged by a threshold fixed before the run. Quick mode uses small models and shapes, so its figures show mechanisms, not the papers' absolute numbers.</p>
<h2>The ten methods</h2>
${methodTable(input)}
<h2>Experiments and evaluations</h2>
${sections}
<h2>Recorded GPU benchmarks</h2>
${benchmarkSection(input.benchmarks)}
</body></html>
`;
}
