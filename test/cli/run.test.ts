import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPERIMENTS } from '../../src/experiments/registry.js';
import { main } from '../../src/cli/main.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('../../src/cli/bin-dev.ts', import.meta.url));

function sparq(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function inProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

describe('sparq run', () => {
  test('--list names every registered experiment; --help shows them too', async () => {
    const list = await inProcess(['run', '--list']);
    assert.equal(list.status, 0);
    const names = list.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[0]);
    assert.deepEqual(
      names,
      EXPERIMENTS.map((e) => e.name),
    );
    const help = await inProcess(['run', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: sparq run <experiment>/);
    for (const e of EXPERIMENTS) assert.ok(help.stdout.includes(e.name), e.name);
    assert.match((await inProcess(['--help'])).stdout, /^ {2}run +\S/m);
  });

  test('usage errors: no name, an unknown name, two names, bad seeds', async () => {
    for (const [args, message] of [
      [['run'], /run takes one experiment, one of .*got none/],
      [['run', 'no-such'], /no experiment 'no-such'/],
      [['run', 'sage', 'sage'], /got 'sage sage'/],
      [['run', 'sage', '--seed=-3'], /--seed must be a non-negative integer/],
      [['run', 'sage', '--seeds', '0'], /--seeds must be a positive integer/],
      [['run', 'sage', '--list'], /--list takes no experiment name/],
      [['run', 'sage', '--backend', 'tpu'], /--backend must be one of auto, cpu, webgpu/],
    ] as const) {
      const r = await inProcess([...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
    }
  });

  test('a run as a subprocess: --json is the record alone on stdout, JSON and SVG files are written', () => {
    const out = mkdtempSync(join(tmpdir(), 'sparq-run-'));
    const r = sparq([
      'run',
      'sage',
      '--quick',
      '--seeds',
      '1',
      '--seed',
      '4',
      '--backend',
      'cpu',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const record = JSON.parse(r.stdout);
    assert.equal(record.name, 'sage');
    assert.deepEqual(record.seeds, [4]);
    assert.equal(record.mode, 'quick');
    assert.equal(record.backend, 'cpu');
    assert.ok(record.summary.findings.length > 0);
    const file = join(out, 'sage.quick.json');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).summary, record.summary);
    for (const p of record.summary.plots) {
      const svg = join(out, `sage-${p.id}.quick.svg`);
      assert.ok(existsSync(svg), svg);
      assert.match(readFileSync(svg, 'utf8'), /^<svg/);
    }
    assert.match(r.stderr, /sparq run sage: backend cpu/);
    assert.match(r.stderr, /100% done/);
  });
});
