import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Tensor,
  attention,
  download,
  randn,
  readSafetensors,
  sageAttention,
  tensor,
  upload,
  writeSafetensorsFile,
} from '../../src/index.js';
import type { AttentionReport } from '../../src/cli/commands/attention.js';
import { sparqVersion } from '../../src/cli/version.js';
import type { GpuRuntime } from '../../src/gpu/runtime.js';
import { testGpu } from '../gpu/harness.js';
import { runSparq } from './run-sparq.js';

const SHAPE = [1, 2, 64, 32];

/** Runs `sparq attention ...` from source in a child process; async, so independent runs overlap. */
const sparq = (args: string[]) => runSparq('attention', args);

let dir: string;
let qkv: string;
const inputs: Record<string, Tensor> = {};
/** The shared test runtime, or why there is none (acquired at file level, as the GPU tests do). */
const gpu = await testGpu();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparq-attention-'));
  qkv = join(dir, 'qkv.safetensors');
  inputs.q = randn(SHAPE, { seed: 1 });
  inputs.k = randn(SHAPE, { seed: 2 });
  inputs.v = randn(SHAPE, { seed: 3 });
  writeSafetensorsFile(qkv, inputs);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The library's output and LSE for the same call, on the host. */
async function direct(
  method: string,
  [q, k, v]: Tensor[],
  runtime: GpuRuntime | undefined,
): Promise<{ out: Tensor; lse: Tensor }> {
  const opts = { returnLse: true } as const;
  if (runtime === undefined) {
    return method === 'dense'
      ? attention(q, k, v, opts)
      : sageAttention(q, k, v, { ...opts, preset: method as 'sage1' });
  }
  const [gq, gk, gv] = [q, k, v].map((t) => upload(runtime, tensor(t.toFloat32(), t.shape, 'float16')));
  const r =
    method === 'dense'
      ? attention(gq, gk, gv, opts)
      : sageAttention(gq, gk, gv, { ...opts, preset: method as 'sage1' });
  return { out: await download(r.out), lse: await download(r.lse) };
}

/** Cosine each method must reach on Gaussian inputs (dense is exact up to float rounding). */
const MIN_COSINE: Record<string, number> = { dense: 0.99999, sage1: 0.999, sage2: 0.999 };

for (const backend of ['cpu', 'webgpu'] as const) {
  describe(`sparq attention --backend ${backend}`, { concurrency: true }, () => {
    for (const method of ['dense', 'sage1', 'sage2']) {
      test(`${method}: writes o and lse as the library computes them; --compare --json reports metrics`, async (t) => {
        const runtime = backend === 'webgpu' ? gpu : undefined;
        if (typeof runtime === 'string') return t.skip(runtime);
        const out = join(dir, `${method}-${backend}.safetensors`);
        const r = await sparq([
          '--in',
          qkv,
          '--method',
          method,
          '--backend',
          backend,
          '--out',
          out,
          '--lse',
          '--compare',
          '--json',
        ]);
        assert.equal(r.status, 0, r.stderr);
        const report = JSON.parse(r.stdout) as AttentionReport;
        assert.equal(report.method, method);
        assert.equal(report.backend, backend);
        assert.equal(report.computeDtype, backend === 'webgpu' ? 'float16' : 'float32');
        assert.deepEqual(report.outputShape, SHAPE);
        assert.equal(report.smScale, 1 / Math.sqrt(32));
        assert.equal(backend === 'webgpu', report.adapter !== null);
        assert.equal(backend === 'webgpu' && method === 'dense', report.tier !== null);
        assert.ok(report.timeMs >= 0);
        const c = report.compare;
        assert.ok(c !== null);
        assert.ok(c.cosine > MIN_COSINE[method], `cosine ${c.cosine}`);
        // dense: float rounding only; on the tensor-core tier P enters the f16 matrix product (README: < 2e-3)
        const denseTol = report.tier === 'subgroup-matrix' ? 2e-3 : 1e-5;
        assert.ok(c.relL1 >= 0 && c.relL1 < (method === 'dense' ? denseTol : 0.05), `relL1 ${c.relL1}`);
        assert.ok(c.rmse >= 0 && c.rmse < (method === 'dense' ? denseTol : 0.01), `rmse ${c.rmse}`);
        assert.ok(c.lseMaxAbsError !== undefined && c.lseMaxAbsError < 0.05, `lse ${c.lseMaxAbsError}`);

        const file = readSafetensors(out);
        assert.deepEqual(Object.keys(file.tensors).sort(), ['lse', 'o']);
        assert.equal(file.tensors.o.dtype, 'float32');
        assert.equal(file.metadata.method, method);
        assert.equal(file.metadata.backend, backend);
        assert.equal(file.metadata.sparq, sparqVersion());
        assert.equal(file.metadata.adapter, report.adapter ?? undefined);
        const want = await direct(method, [inputs.q, inputs.k, inputs.v], runtime);
        assert.deepEqual(file.tensors.o.data, want.out.data);
        assert.deepEqual(file.tensors.lse.data, want.lse.data);
      });
    }
  });
}

describe('sparq attention options and errors', { concurrency: true }, () => {
  test('--layout NHD --causal --sm-scale on renamed bfloat16 tensors matches attention()', async () => {
    const shape = [1, 48, 2, 16];
    const named = {
      query: tensor(randn(shape, { seed: 4 }).toFloat32(), shape, 'bfloat16'),
      key: tensor(randn([1, 40, 2, 16], { seed: 5 }).toFloat32(), [1, 40, 2, 16], 'bfloat16'),
      value: tensor(randn([1, 40, 2, 16], { seed: 6 }).toFloat32(), [1, 40, 2, 16], 'bfloat16'),
    };
    const file = join(dir, 'named.safetensors');
    writeSafetensorsFile(file, named);
    const out = join(dir, 'named-out.safetensors');
    const args = ['--in', file, '--method', 'dense', '--backend', 'cpu', '--layout', 'NHD', '--causal'];
    const r = await sparq([
      ...args,
      ...['--causal-alignment', 'bottom-right', '--sm-scale', '0.2', '--q', 'query', '--k', 'key'],
      ...['--v', 'value', '--out', out],
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^dense on cpu: o \[1, 48, 2, 16\] float32 from bfloat16 inputs in \d/);
    assert.match(r.stdout, /^wrote .*named-out\.safetensors$/m);
    const got = readSafetensors(out);
    assert.deepEqual(Object.keys(got.tensors), ['o']);
    const want = attention(named.query, named.key, named.value, {
      layout: 'NHD',
      causal: true,
      causalAlignment: 'bottom-right',
      smScale: 0.2,
    });
    assert.deepEqual(got.tensors.o.data, want.data);
  });

  test('sage3 runs on WebGPU (the backend auto picks) with the accuracy it has on the CPU', async (t) => {
    if (typeof gpu === 'string') return t.skip(gpu);
    const [onGpu, onCpu] = await Promise.all([
      sparq(['--in', qkv, '--method', 'sage3', '--compare', '--json']),
      sparq(['--in', qkv, '--method', 'sage3', '--backend', 'cpu', '--compare', '--json']),
    ]);
    assert.equal(onGpu.status, 0, onGpu.stderr);
    assert.equal(onCpu.status, 0, onCpu.stderr);
    const g = JSON.parse(onGpu.stdout) as AttentionReport;
    const c = JSON.parse(onCpu.stdout) as AttentionReport;
    assert.equal(g.backend, 'webgpu');
    assert.equal(c.backend, 'cpu');
    // NVFP4 Q/K/V/P: cosine ≈ 0.98 on Gaussian inputs (README); the GPU reads them rounded to float16
    for (const r of [g, c])
      assert.ok(r.compare !== null && r.compare.cosine > 0.97, `cosine ${r.compare?.cosine}`);
    assert.ok(
      Math.abs(g.compare!.cosine - c.compare!.cosine) < 5e-3,
      `${g.compare!.cosine} vs ${c.compare!.cosine}`,
    );
  });

  test('a missing file, a missing tensor and mismatched shapes exit 1 with a message', async () => {
    const bad = join(dir, 'bad.safetensors');
    writeSafetensorsFile(bad, { q: inputs.q, k: inputs.k, v: randn([1, 2, 64, 16], { seed: 7 }) });
    const [missing, name, shape] = await Promise.all([
      sparq(['--in', join(dir, 'nope.safetensors'), '--method', 'dense']),
      sparq(['--in', qkv, '--method', 'dense', '--k', 'keys']),
      sparq(['--in', bad, '--method', 'sage1', '--backend', 'cpu']),
    ]);
    for (const r of [missing, name, shape]) {
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.match(missing.stderr, /^sparq attention: cannot read --in .*nope\.safetensors: ENOENT/);
    assert.match(name.stderr, /has no tensor 'keys'; it holds .*Name the tensors with --q, --k and --v/);
    for (const held of ['q', 'k', 'v'])
      assert.match(name.stderr, new RegExp(`${held} float32 \\[1, 2, 64, 32\\]`));
    assert.match(shape.stderr, /^sparq attention: v's head dim must equal q's head dim D = 32/);
  });

  test('bad option values exit 2 with usage; --help prints the usage', async () => {
    const runs = await Promise.all([
      sparq(['--in', qkv, '--method', 'sparse']),
      sparq(['--in', qkv, '--method', 'dense', '--sm-scale=-1']),
      sparq(['--in', qkv, '--method', 'dense', '--backend', 'cuda']),
      sparq(['--in', qkv, '--method', 'dense', '--layout', 'BHND']),
      sparq(['--method', 'dense']),
      sparq(['--in', qkv]),
      sparq(['--in', qkv, '--method', 'dense', '--frobnicate']),
    ]);
    const expected = [
      /--method must be one of dense, sage1, sage2, sage2\+\+, sage3, svg, svg2, sparge; got 'sparse'/,
      /--sm-scale must be a finite number > 0; got '-1'/,
      /--backend must be one of auto, cpu, webgpu; got 'cuda'/,
      /--layout must be one of HND, NHD; got 'BHND'/,
      /--in <file> is required/,
      /--method is required/,
      /Unknown option '--frobnicate'/,
    ];
    runs.forEach((r, i) => {
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, expected[i]);
      assert.match(r.stderr, /Run 'sparq attention --help' for usage/);
    });
    const help = await sparq(['--help']);
    assert.equal(help.status, 0);
    assert.match(
      help.stdout,
      /^Usage: sparq attention --in <qkv\.safetensors> --method <dense\|sage1\|sage2\|sage2\+\+\|sage3\|svg\|svg2\|sparge>/,
    );
    assert.match(help.stdout, /sparse video methods svg \(Sparse\s+VideoGen/);
  });
});
