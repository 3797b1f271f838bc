import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readSafetensors,
  svg2Attention,
  svgAttention,
  videoWorkload,
  writeSafetensorsFile,
} from '../../src/index.js';
import type { AttentionReport } from '../../src/cli/commands/attention.js';
import { runSparq } from './run-sparq.js';

/** `sparq attention ...args` from source in a child process. */
const sparq = (args: string[]) => runSparq('attention', args);

let dir: string;
let file: string;
const w = videoWorkload({
  frames: 2,
  height: 4,
  width: 4,
  prefixTokens: 2,
  seed: 1,
  headDim: 32,
  heads: ['spatial', 'temporal'],
});

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparq-attention-sparse-'));
  file = join(dir, 'qkv.safetensors');
  writeSafetensorsFile(file, { q: w.q, k: w.k, v: w.v });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('sparq attention --method svg / svg2 on the CPU writes what the library computes', async () => {
  const geometry = ['--frames', '2', '--height', '4', '--width', '4', '--prefix-tokens', '2'];
  const svgOut = join(dir, 'svg.safetensors');
  const svg2Out = join(dir, 'svg2.safetensors');
  const [a, b] = await Promise.all([
    sparq([
      '--in',
      file,
      '--method',
      'svg',
      ...geometry,
      '--density',
      '0.3',
      '--backend',
      'cpu',
      '--out',
      svgOut,
      '--json',
    ]),
    sparq([
      '--in',
      file,
      '--method',
      'svg2',
      '--prefix-tokens',
      '2',
      '--q-clusters',
      '4',
      '--k-clusters',
      '8',
      '--top-p',
      '0.8',
      '--backend',
      'cpu',
      '--out',
      svg2Out,
      '--compare',
    ]),
  ]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const report = JSON.parse(a.stdout) as AttentionReport;
  assert.equal(report.method, 'svg');
  const svgRef = svgAttention(w.q, w.k, w.v, {
    frames: 2,
    height: 4,
    width: 4,
    prefixTokens: 2,
    density: 0.3,
  });
  assert.deepEqual(readSafetensors(svgOut).tensors.o.data, svgRef.data);
  const svg2Ref = svg2Attention(w.q, w.k, w.v, { prefixTokens: 2, qClusters: 4, kClusters: 8, topP: 0.8 });
  assert.deepEqual(readSafetensors(svg2Out).tensors.o.data, svg2Ref.data);
  assert.match(b.stdout, /vs float64 oracle: cosine/);
});

test('sparq attention --method svg without the geometry, or a bad --top-p, is a usage error', async () => {
  const [a, b] = await Promise.all([
    sparq(['--in', file, '--method', 'svg', '--backend', 'cpu']),
    sparq(['--in', file, '--method', 'svg2', '--top-p', '1.5', '--backend', 'cpu']),
  ]);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /--frames, --height and --width/);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--top-p/);
});
