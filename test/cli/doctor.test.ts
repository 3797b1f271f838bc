import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GpuRuntime } from '../../src/gpu/runtime.js';
import { type DoctorReport, formatReport } from '../../src/cli/commands/doctor.js';
import { adapterLabel, testGpu } from '../gpu/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('../../src/cli/bin-dev.ts', import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const dataUrl = (js: string): string => 'data:text/javascript,' + encodeURIComponent(js);

/**
 * A preload that replaces the `webgpu` package with a module that writes MARK to stderr and throws, as
 * if Dawn were not installed. It proves `--backend cpu` never loads Dawn, and drives the no-adapter path
 * on machines that have an adapter.
 */
const MARK = 'sparq-test: webgpu was imported';
const BLOCK_WEBGPU = dataUrl(
  `import { register } from 'node:module';
  register(${JSON.stringify(
    dataUrl(
      `export async function resolve(specifier, context, next) {
        if (specifier !== 'webgpu') return next(specifier, context);
        const body = ${JSON.stringify(`process.stderr.write(${JSON.stringify(MARK + '\n')}); throw new Error('blocked by the test');`)};
        return { url: 'data:text/javascript,' + encodeURIComponent(body), shortCircuit: true };
      }`,
    ),
  )});`,
);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source in a child process, optionally with Dawn blocked. */
function sparq(args: string[], opts: { blockWebgpu?: boolean } = {}): Run {
  const preload = opts.blockWebgpu ? ['--import', BLOCK_WEBGPU] : [];
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...preload, ENTRY, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sparq dispatcher', () => {
  test('--help and `help` list the commands and exit 0', () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = sparq(args);
      assert.equal(r.status, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: sparq <command> \[options\]$/m);
      assert.match(r.stdout, /^ {2}doctor +\S/m);
      assert.equal(r.stderr, '');
    }
  });

  test('--version prints the version of package.json', () => {
    const r = sparq(['--version']);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `${VERSION}\n`);
  });

  test('no command, an unknown command or an unknown global option: message on stderr, exit 2', () => {
    const none = sparq([]);
    assert.equal(none.status, 2);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /Usage: sparq <command>/);
    const unknown = sparq(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const option = sparq(['--frobnicate']);
    assert.equal(option.status, 2);
    assert.match(option.stderr, /--frobnicate/);
  });

  test('`<command> --help` and `help <command>` print the command usage', () => {
    for (const args of [
      ['doctor', '--help'],
      ['help', 'doctor'],
    ]) {
      const r = sparq(args);
      assert.equal(r.status, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: sparq doctor \[--backend cpu\|webgpu\|auto\] \[--json\]$/m);
    }
    assert.equal(sparq(['help', 'frobnicate']).status, 2);
  });
});

describe('sparq doctor', () => {
  test('bad options exit 2 with a message on stderr and nothing on stdout', () => {
    for (const [args, message] of [
      [['--backend', 'bogus'], /--backend must be one of auto, cpu, webgpu; got 'bogus'/],
      [['--backend'], /--backend/],
      [['--colour'], /--colour/],
      [['extra'], /extra/],
    ] as const) {
      const r = sparq(['doctor', ...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
    }
  });

  test('--json prints one JSON document with a cpu entry and the webgpu adapter the library sees', async () => {
    const r = sparq(['doctor', '--json']);
    assert.equal(r.status, 0, r.stderr);
    // JSON.parse of the whole of stdout fails on anything besides the document (Dawn warns on stderr).
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.equal(report.sparq, VERSION);
    assert.equal(report.requested, 'auto');
    const { cpu, webgpu } = report.backends;
    assert.equal(cpu?.available, true);
    assert.equal(cpu.node, process.version);
    assert.ok(cpu.cores >= 1);
    assert.ok(webgpu);
    const gpu = await testGpu();
    if (typeof gpu === 'string') {
      assert.equal(webgpu.available, false);
      assert.ok(!webgpu.available && webgpu.error.length > 0);
      assert.equal(report.selected, 'cpu');
      return;
    }
    const rt = gpu as GpuRuntime;
    assert.ok(webgpu.available, 'the library found an adapter, so doctor must');
    assert.equal(report.selected, 'webgpu');
    assert.equal(webgpu.description, adapterLabel(rt));
    assert.ok(webgpu.description.length > 0);
    assert.equal(webgpu.tiers.at(-1), 'f32');
    assert.deepEqual(webgpu.tiers, rt.caps.tiers);
    assert.deepEqual(webgpu.features, rt.caps.features);
    assert.equal(webgpu.subgroupMaxSize, rt.caps.subgroupMaxSize);
    assert.ok(webgpu.limits.maxStorageBufferBindingSize > 0);
  });

  test('the text report names each backend and the selection', async () => {
    const r = sparq(['doctor']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^cpu: available$/m);
    assert.match(r.stdout, /^webgpu: (not )?available$/m);
    if (typeof (await testGpu()) !== 'string') {
      assert.match(r.stdout, /^ {4}kernel tiers +(\S+ > )*f32$/m);
      assert.match(r.stdout, /^selected: webgpu, best tier /m);
    }
  });

  test('--backend cpu never loads Dawn', () => {
    const r = sparq(['doctor', '--backend', 'cpu', '--json'], { blockWebgpu: true });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, new RegExp(MARK));
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.equal(report.selected, 'cpu');
    assert.deepEqual(Object.keys(report.backends), ['cpu']);
  });

  test('without WebGPU, auto reports why and selects the CPU backend (exit 0)', () => {
    const r = sparq(['doctor', '--json'], { blockWebgpu: true });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(MARK), 'the preload must have stood in for Dawn');
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.equal(report.selected, 'cpu');
    assert.equal(report.backends.cpu?.available, true);
    const webgpu = report.backends.webgpu;
    assert.ok(webgpu && !webgpu.available);
    assert.equal(webgpu.code, 'E_NO_ADAPTER');
    assert.match(webgpu.error, /blocked by the test.*CPU backend/);
    const text = sparq(['doctor'], { blockWebgpu: true });
    assert.equal(text.status, 0);
    assert.match(text.stdout, /^webgpu: not available$/m);
    assert.match(text.stdout, /^selected: cpu \(no WebGPU adapter; the CPU backend keeps working\)$/m);
  });

  test('without WebGPU, --backend webgpu exits 1 and says so on stderr', () => {
    const r = sparq(['doctor', '--backend', 'webgpu', '--json'], { blockWebgpu: true });
    assert.equal(r.status, 1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.equal(report.selected, null);
    assert.deepEqual(Object.keys(report.backends), ['webgpu']);
    assert.match(r.stderr, /--backend webgpu was asked for and no WebGPU adapter is available/);
  });

  test('the text report formats subgroup matrices as component→result MxNxK, lines within 100 columns', () => {
    // An H100 as ARCHITECTURE.md records it: the tensor-core tier with f16 and i8 matrix shapes.
    const report: DoctorReport = {
      sparq: VERSION,
      requested: 'webgpu',
      selected: 'webgpu',
      backends: {
        webgpu: {
          available: true,
          description: 'NVIDIA H100 80GB HBM3',
          adapter: {
            vendor: 'nvidia',
            architecture: 'hopper',
            device: 'NVIDIA H100 80GB HBM3',
            description: 'NVIDIA H100 80GB HBM3',
            isFallbackAdapter: false,
          },
          features: ['chromium-experimental-subgroup-matrix', 'shader-f16', 'subgroups', 'timestamp-query'],
          limits: { maxBufferSize: 2 ** 32 - 1, maxComputeWorkgroupStorageSize: 49152 },
          subgroupMinSize: 32,
          subgroupMaxSize: 32,
          subgroupMatrixConfigs: [
            { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
            { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 8, K: 8 },
            { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 8, K: 32 },
          ],
          wgslLanguageFeatures: ['packed_4x8_integer_dot_product'],
          tiers: ['subgroup-matrix', 'f16', 'f32'],
          timestamps: true,
        },
      },
    };
    const text = formatReport(report);
    assert.match(text, /^ {4}subgroup matrices +f16→f32 16x16x16, f16→f16 16x8x8, i8→i32 16x8x32$/m);
    assert.match(text, /^ {4}kernel tiers +subgroup-matrix > f16 > f32$/m);
    assert.match(text, /^ {4}software fallback +no$/m);
    assert.match(text, /^ {4}subgroup size +32$/m);
    assert.match(text, /^selected: webgpu, best tier subgroup-matrix$/m);
    assert.doesNotMatch(text, /^cpu:/m);
    const longError = { available: false as const, code: 'E_NO_ADAPTER', error: 'word '.repeat(60).trim() };
    const wrapped = formatReport({ ...report, selected: null, backends: { webgpu: longError } });
    for (const line of [...text.split('\n'), ...wrapped.split('\n')]) assert.ok(line.length <= 100, line);
    assert.match(wrapped, /^selected: none/m);
  });
});
