import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type SageEvaluation, evaluateSage } from '../../src/attention/sage/evaluate.js';
import { formatEvaluation } from '../../src/cli/commands/eval.js';
import { main } from '../../src/cli/main.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('../../src/cli/bin-dev.ts', import.meta.url));

/** Runs the CLI from source in a child process. */
function sparq(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI in this process, collecting what it writes. */
async function sparqInProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

describe('sparq eval', () => {
  test('--help and `help eval` print the usage; `sparq --help` lists eval', async () => {
    for (const args of [
      ['eval', '--help'],
      ['help', 'eval'],
    ]) {
      const r = await sparqInProcess(args);
      assert.equal(r.status, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: sparq eval <suite> \[--quick\] \[--seed N\] \[--json\]$/m);
      assert.match(r.stdout, /--quick/);
      assert.equal(r.stderr, '');
    }
    assert.match((await sparqInProcess(['--help'])).stdout, /^ {2}eval +\S/m);
  });

  test('a missing or unknown suite, extra words or a bad seed: usage error, exit 2, nothing on stdout', async () => {
    for (const [args, message] of [
      [['eval'], /eval takes one suite, one of sage(, [a-z0-9-]+)*; got none/],
      [['eval', 'sparge'], /got 'sparge'/],
      [['eval', 'sage', 'extra'], /got 'sage extra'/],
      [['eval', 'sage', '--seed=-1'], /--seed must be a non-negative integer; got '-1'/],
      [['eval', 'sage', '--seed', '1.5'], /--seed must be a non-negative integer/],
      [['eval', 'sage', '--seed', '1e3'], /--seed must be a non-negative integer/],
      [['eval', 'sage', '--tiny'], /--tiny/],
    ] as const) {
      const r = await sparqInProcess([...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
    }
  });

  test('`eval sage --quick --json`: one JSON document on stdout, progress on stderr, exit 0', () => {
    const r = sparq(['eval', 'sage', '--quick', '--json', '--seed', '1']);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout) as SageEvaluation;
    assert.equal(e.mode, 'quick');
    assert.deepEqual(e.seeds, [1]);
    assert.deepEqual(
      e.inputs.map((i) => i.id),
      ['gaussian', 'k-bias', 'qk-outliers', 'v-bias', 'long'],
    );
    assert.equal(e.inputs.find((i) => i.id === 'long')?.shape[2], 1024);
    assert.equal(e.rows.filter((row) => row.family === 'preset').length, 20);
    for (const row of e.rows) {
      assert.ok(typeof row.config === 'string' && typeof row.options === 'object');
      assert.equal(row.nanCount, 0);
      for (const s of [row.relL1, row.rmse]) assert.ok(typeof s.mean === 'number' || s.mean === 'Infinity');
    }
    // JSON has no Infinity: the unlimited fp16 accumulation's relL1 is written as a string, not null
    const unlimited = e.rows.find((row) => row.family === 'fp16-accumulation' && row.infCount > 0);
    assert.ok(unlimited);
    assert.equal(unlimited.relL1.mean, 'Infinity' as never);
    assert.equal(unlimited.cosine, null);
    assert.equal(e.findings.length, 9);
    for (const f of e.findings) {
      assert.equal(typeof f.holds, 'boolean');
      assert.ok(f.evidence.length >= 2 && f.criterion.length > 0);
    }
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0], /^sparq eval sage: \[1\/\d+\] seed 1 gaussian: sage1$/);
    assert.ok(lines.length > 30);
  });

  test('the text report: presets table, findings table with verdicts, criteria, non-finite outputs', () => {
    const e = evaluateSage({ quick: true, seed: 2, shapes: { heads: 1, tokens: 64, longTokens: 128 } });
    const text = formatEvaluation(e);
    assert.match(text, /^## SageAttention accuracy vs the float64 oracle \(quick: seed 2; cpu emulation\)$/m);
    assert.match(text, /^- long \[1, 1, 128, 64\]: /m);
    assert.match(text, /^\| input \| preset \| cosine \| relL1 \| RMSE \|$/m);
    assert.match(text, /^\| gaussian \| sage1 \| 0\.999\d\d \| \d\.\d+(e-\d+)? \| /m);
    assert.match(
      text,
      /^\| K smoothing rescues INT4 QK \| k-bias \| sage2, INT4 per-thread QK, smoothK on \| /m,
    );
    assert.match(text, /\| undefined \(inf output\) \| inf \| unlimited: \d+ inf, 0 NaN, relL1 Infinity;/);
    const verdicts = text.match(/\*\*(holds|does not hold)\*\*/g) ?? [];
    assert.equal(verdicts.length, e.findings.length);
    assert.match(text, /^- FP16 accumulation without range limits overflows.*: no NaN in any output;/m);
    assert.match(
      text,
      /^- v-bias, sage2, fp32\+fp16, vScaleMax 448 \(no range limit\): 0 NaN, \d+ ±inf output/m,
    );
    // full mode prints mean ± std
    const full = evaluateSage({ seed: 2, shapes: { heads: 1, tokens: 32, longTokens: 64 } });
    assert.match(
      formatEvaluation(full),
      /^\| gaussian \| sage1 \| 0\.\d{5} ± 0\.\d{5} \| \S+ ± \S+ \| \S+ ± \S+ \|$/m,
    );
    assert.match(formatEvaluation(full), /\(full: seeds 2, 3, 4, mean ± std; cpu emulation\)/);
  });
});
