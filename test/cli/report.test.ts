import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { METHODS } from '../../src/experiments/experiment.js';
import { main } from '../../src/cli/main.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('../../src/cli/bin-dev.ts', import.meta.url));
/** Debian's chromium package; CI installs it and sets SPARQ_REQUIRE_CHROMIUM=1 so a missing browser fails. */
const CHROMIUM = process.env.SPARQ_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const requireChromium = process.env.SPARQ_REQUIRE_CHROMIUM === '1';

async function inProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

describe('sparq report', () => {
  test('usage errors: an unknown experiment in --only, a bad --jobs', async () => {
    for (const [args, message] of [
      [['report', '--only', 'sage,nope'], /--only: no experiment 'nope'/],
      [['report', '--only', ','], /--only needs at least one experiment name/],
      [['report', '--jobs', '0'], /--jobs must be a positive integer/],
    ] as const) {
      const r = await inProcess([...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
  });

  test(
    'chromium is there when CI requires it',
    { skip: !requireChromium && 'set SPARQ_REQUIRE_CHROMIUM=1 to require it' },
    () => {
      assert.ok(haveChromium, `${CHROMIUM} is missing: install Debian's chromium package`);
    },
  );

  test(
    'writes the page from child-process runs and it renders in headless Chromium without errors',
    { skip: !haveChromium && `no ${CHROMIUM}` },
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'sparq-report-'));
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          ENTRY,
          'report',
          '--only',
          'sage',
          '--seeds',
          '1',
          '--jobs',
          '2',
          '--backend',
          'cpu',
          '--out',
          out,
          '--json',
        ],
        { cwd: ROOT, encoding: 'utf8', timeout: 300_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const summary = JSON.parse(r.stdout);
      assert.equal(summary.page, join(out, 'index.html'));
      assert.deepEqual(summary.failures, []);
      assert.deepEqual(
        summary.records.map((x: { name: string }) => x.name),
        ['sage'],
      );
      const html = readFileSync(join(out, 'index.html'), 'utf8');
      assert.ok(existsSync(join(out, 'results', 'sage.quick.json')));

      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(`console: ${m.text()}`);
        });
        page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()}`));
        await page.goto(pathToFileURL(join(out, 'index.html')).href, { waitUntil: 'load' });
        assert.deepEqual(errors, []);
        assert.equal(await page.title(), 'sparq report');
        // the table of the ten methods, each row naming its method
        const methods = await page.$$eval('table.methods tbody tr td:first-child b', (els) =>
          els.map((e) => e.textContent),
        );
        assert.deepEqual(methods, [...METHODS]);
        // the SageAttention row carries this run's accuracy headline
        const sageRow = await page.$eval('table.methods tbody tr:first-child', (e) => e.textContent ?? '');
        assert.match(sageRow, /rel\. L1 on Gaussian N 256, D 64: sage1 \d/);
        // every figure is an SVG that the browser laid out with a real size, with marks in it
        const figures = await page.$$eval('figure svg', (els) =>
          els.map((e) => ({
            w: e.getBoundingClientRect().width,
            h: e.getBoundingClientRect().height,
            marks: e.querySelectorAll('path, circle, rect').length,
          })),
        );
        assert.ok(figures.length >= 1);
        for (const f of figures) assert.ok(f.w > 100 && f.h > 100 && f.marks > 5, JSON.stringify(f));
        const verdicts = await page.$$eval('.findings .verdict', (els) => els.map((e) => e.textContent));
        assert.ok(
          verdicts.length > 0 &&
            verdicts.every((v) => ['holds', 'does not hold', 'inconclusive'].includes(v ?? '')),
        );
        assert.match(html, /Machine: .* cores/);
        assert.match(html, /Backend used: <b>cpu<\/b>/);
      } finally {
        await browser.close();
      }
    },
  );
});
