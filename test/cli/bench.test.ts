import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';

async function inProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

describe('sparq bench', () => {
  test('an unknown area is a usage error', async () => {
    const r = await inProcess(['bench', 'warp-drive']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no benchmark area 'warp-drive'; areas: numerics, attention, sage/);
  });

  test('runs the CPU numerics benchmark through the bench runner; --json prints the rows', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sparq-bench-')), 'rows.json');
    const r = await inProcess([
      'bench',
      'numerics',
      '--quick',
      '--filter',
      'float16',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.ok(doc.rows.length > 0);
    for (const row of doc.rows) {
      assert.equal(row.area, 'numerics');
      assert.ok(row.name.includes('float16'), row.name);
      assert.ok(row.value > 0 && Number.isFinite(row.value));
    }
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')).rows.length, doc.rows.length);
  });
});
