/**
 * `sparq doctor`: which compute backends this machine offers and what each can do. The CPU backend is
 * always there; WebGPU is probed by acquiring a device the way every operation does (`acquireGpu()`),
 * so what doctor reports is exactly what kernel selection will see.
 */
import os from 'node:os';
import { SparqError } from '../../core/errors.js';
import { type GpuCapabilities, type SubgroupMatrixConfig, describeAdapter } from '../../gpu/capabilities.js';
import { type GpuRuntime, acquireGpu } from '../../gpu/runtime.js';
import { type CliIo, type CommandArgs, EXIT, type OptionSpec } from '../command.js';
import { sparqVersion } from '../version.js';

const BACKEND_CHOICES = ['auto', 'cpu', 'webgpu'] as const;
type BackendChoice = (typeof BACKEND_CHOICES)[number];

export const name = 'doctor';
export const summary = 'Report the compute backends found (CPU, WebGPU) and what they support';
export const usage = `Usage: sparq doctor [--backend cpu|webgpu|auto] [--json]

Reports the compute backends sparq can use here: the CPU backend (always available) and WebGPU
(adapter, software fallback or not, kernel tiers best first, features, limits, subgroup sizes,
subgroup-matrix shapes, WGSL language features).

Options:
  --backend <name>  cpu, webgpu or auto (default: auto, both). cpu never touches the GPU.
  --json            Print one JSON document on stdout and nothing else.
  -h, --help        Show this help.

Exit codes: 0 the asked backend is available (auto always is: the CPU backend works without a GPU),
1 --backend webgpu and no WebGPU adapter, 2 usage error.`;

export const options: Record<string, OptionSpec> = {
  backend: { type: 'string', default: 'auto', choices: BACKEND_CHOICES },
  json: { type: 'boolean', default: false },
};

/** The CPU backend: pure TypeScript, so the host's Node and processor are all there is to report. */
export interface CpuReport {
  readonly available: true;
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpuModel: string;
  /** Logical cores this process may use (`os.availableParallelism()`). */
  readonly cores: number;
  readonly totalMemoryBytes: number;
}

/** A WebGPU device: its capability record as kernel selection reads it, plus a one-line name. */
export type WebGpuReport =
  | ({ readonly available: true; readonly description: string } & GpuCapabilities)
  | { readonly available: false; readonly code: string; readonly error: string };

/** The whole report; `--json` prints exactly this. */
export interface DoctorReport {
  readonly sparq: string;
  readonly requested: BackendChoice;
  /** The backend sparq uses for what was asked, or null when it is not available. */
  readonly selected: 'cpu' | 'webgpu' | null;
  readonly backends: { readonly cpu?: CpuReport; readonly webgpu?: WebGpuReport };
}

function probeCpu(): CpuReport {
  return {
    available: true,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    // os.cpus() is empty where /proc/cpuinfo is hidden (some sandboxes and containers).
    cpuModel: os.cpus()[0]?.model.trim() || 'unknown',
    cores: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
  };
}

/** Acquires a device, reads its capabilities and releases it at once, so the process can exit. */
async function probeWebGpu(): Promise<WebGpuReport> {
  let runtime: GpuRuntime;
  try {
    runtime = await acquireGpu();
  } catch (e) {
    const err = e as Error;
    return { available: false, code: e instanceof SparqError ? e.code : err.name, error: err.message };
  }
  try {
    return { available: true, description: describeAdapter(runtime.caps), ...runtime.caps };
  } finally {
    runtime.release();
  }
}

/** Probes the backends `requested` names: `auto` both, otherwise that one alone. */
export async function diagnose(requested: BackendChoice): Promise<DoctorReport> {
  const cpu = requested === 'webgpu' ? undefined : probeCpu();
  const webgpu = requested === 'cpu' ? undefined : await probeWebGpu();
  const selected = webgpu?.available ? 'webgpu' : cpu ? 'cpu' : null;
  return { sparq: sparqVersion(), requested, selected, backends: { cpu, webgpu } };
}

const formatMatrix = (c: SubgroupMatrixConfig): string =>
  `${c.componentType}→${c.resultComponentType} ${c.M}x${c.N}x${c.K}`;

const LABEL_WIDTH = 24;
const LINE_WIDTH = 100;

/**
 * Joins `items` with `sep` in lines of at most LINE_WIDTH characters (separator included), continuation
 * lines aligned with the value column.
 */
function wrap(items: readonly string[], sep: string): string {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    if (line && LABEL_WIDTH + line.length + sep.length + item.length >= LINE_WIDTH) {
      lines.push(line + sep.trimEnd());
      line = item;
    } else {
      line = line ? line + sep + item : item;
    }
  }
  lines.push(line);
  return lines.join('\n' + ' '.repeat(LABEL_WIDTH));
}

/** One `label  value` line of the text report; a list prints comma-separated, `none` when empty. */
function field(label: string, value: string | readonly string[]): string {
  const text =
    typeof value === 'string' ? wrap(value.split(' '), ' ') : value.length ? wrap(value, ', ') : 'none';
  return `    ${label}`.padEnd(LABEL_WIDTH) + text;
}

function formatCpu(cpu: CpuReport): string[] {
  return [
    'cpu: available',
    field('node', cpu.node),
    field('platform', `${cpu.platform} ${cpu.arch}`),
    field('processor', `${cpu.cpuModel}, ${cpu.cores} cores`),
    field('memory', `${(cpu.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`),
  ];
}

function formatWebGpu(gpu: WebGpuReport): string[] {
  if (!gpu.available) return ['webgpu: not available', field('reason', `${gpu.error} [${gpu.code}]`)];
  const subgroups =
    gpu.subgroupMinSize === gpu.subgroupMaxSize
      ? `${gpu.subgroupMinSize}`
      : `${gpu.subgroupMinSize}–${gpu.subgroupMaxSize}`;
  return [
    'webgpu: available',
    field('adapter', gpu.description),
    field('vendor', [gpu.adapter.vendor, gpu.adapter.architecture].filter(Boolean).join(' / ') || 'unknown'),
    field('software fallback', gpu.adapter.isFallbackAdapter ? 'yes' : 'no'),
    field('kernel tiers', gpu.tiers.join(' > ')),
    field('features', gpu.features),
    field('subgroup size', subgroups),
    field('subgroup matrices', gpu.subgroupMatrixConfigs.map(formatMatrix)),
    field(
      'limits',
      Object.entries(gpu.limits).map(([k, v]) => `${k} ${v}`),
    ),
    field('wgsl features', gpu.wgslLanguageFeatures),
  ];
}

/** The human-readable report: one block per backend, then the selection. */
export function formatReport(report: DoctorReport): string {
  const { cpu, webgpu } = report.backends;
  const blocks = [[`sparq ${report.sparq} doctor (--backend ${report.requested})`]];
  if (cpu) blocks.push(formatCpu(cpu));
  if (webgpu) blocks.push(formatWebGpu(webgpu));
  if (report.selected === 'webgpu' && webgpu?.available) {
    blocks.push([`selected: webgpu, best tier ${webgpu.tiers[0]}`]);
  } else if (report.selected === 'cpu') {
    const why = webgpu ? ' (no WebGPU adapter; the CPU backend keeps working)' : '';
    blocks.push([`selected: cpu${why}`]);
  } else {
    blocks.push(['selected: none (WebGPU was asked for and is not available; --backend cpu works)']);
  }
  return blocks.map((b) => b.join('\n')).join('\n\n') + '\n';
}

/** Prints the report; exit code 1 only when `--backend webgpu` finds no adapter. */
export async function run(args: CommandArgs, io: CliIo): Promise<number> {
  const report = await diagnose(args.values.backend as BackendChoice);
  io.stdout(args.values.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  if (report.selected !== null) return EXIT.ok;
  io.stderr('sparq doctor: --backend webgpu was asked for and no WebGPU adapter is available\n');
  return EXIT.failure;
}
