import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  randn,
  readSafetensors,
  spargeAttention,
  spargeParamsToJson,
  writeSafetensorsFile,
} from '../../src/index.js';
import type { SpargeParams } from '../../src/index.js';
import { runSparq } from './run-sparq.js';

/** `sparq attention ...args` from source in a child process. */
const sparq = (args: string[]) => runSparq('attention', args);

let dir: string;
let file: string;
const [q, k, v] = [1, 2, 3].map((seed) => randn([1, 2, 200, 16], { seed }));
const params: SpargeParams = {
  format: 'sparq.sparge-params',
  version: 1,
  heads: 2,
  blockQ: 128,
  blockK: 64,
  simThreshold: [0.25, 1],
  cdfThreshold: [0.5, 1],
  pvThreshold: [10, 50],
  sparse: [true, false],
  sparsity: [0.3, 0],
  l1: 0.07,
  l2: 0.08,
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparq-attention-sparge-'));
  file = join(dir, 'qkv.safetensors');
  writeSafetensorsFile(file, { q, k, v });
  writeFileSync(join(dir, 'params.json'), spargeParamsToJson(params));
  writeFileSync(join(dir, 'bad.json'), '{ "format": "sparq.sparge-params" }');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('sparq attention --method sparge on the CPU writes what spargeAttention computes', async () => {
  const outA = join(dir, 'a.safetensors');
  const outB = join(dir, 'b.safetensors');
  const [a, b] = await Promise.all([
    sparq([
      '--in',
      file,
      '--method',
      'sparge',
      '--topk',
      '0.5',
      '--pv-threshold',
      '5',
      '--backend',
      'cpu',
      '--out',
      outA,
    ]),
    sparq([
      '--in',
      file,
      '--method',
      'sparge',
      '--params',
      join(dir, 'params.json'),
      '--backend',
      'cpu',
      '--out',
      outB,
    ]),
  ]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(
    readSafetensors(outA).tensors.o.data,
    spargeAttention(q, k, v, { topk: 0.5, pvThreshold: 5 }).data,
  );
  assert.deepEqual(readSafetensors(outB).tensors.o.data, spargeAttention(q, k, v, { params }).data);
});

test('sparq attention --method sparge rejects bad hyperparameters and parameter files', async () => {
  const runs = await Promise.all([
    sparq(['--in', file, '--method', 'sparge', '--topk', '2', '--backend', 'cpu']),
    sparq(['--in', file, '--method', 'sparge', '--sim-threshold', '1.5', '--backend', 'cpu']),
    sparq(['--in', file, '--method', 'sparge', '--params', join(dir, 'bad.json'), '--backend', 'cpu']),
    sparq(['--in', file, '--method', 'sparge', '--params', join(dir, 'missing.json'), '--backend', 'cpu']),
  ]);
  assert.equal(runs[0].status, 2);
  assert.match(runs[0].stderr, /--topk must be a number in \(0, 1\]/);
  assert.equal(runs[1].status, 2);
  assert.match(runs[1].stderr, /--sim-threshold must be a number in \[-1, 1\]/);
  assert.equal(runs[2].status, 1, runs[2].stderr);
  assert.match(runs[2].stderr, /SpargeAttn parameters/);
  assert.equal(runs[3].status, 1);
  assert.match(runs[3].stderr, /cannot read --params/);
});
