/**
 * The console in a real browser: Debian's Chromium driven by playwright-core (no browser download) against
 * the real `corral master` process over HTTPS with its generated self-signed certificate. Signs in through
 * the form, checks the session cookie's flags as the browser stored them, finds an enlisted node in the
 * list and on its page, waits for the live uPlot chart to draw, and checks keyboard focus reaches the nav.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'browser-test-pw';
let master: MasterProcess | undefined;
let browser: Browser | undefined;
let dir = '';
let httpsUrl = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-browser-'));
  const cfg = join(dir, 'corral.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      address: '127.0.0.1',
      http: { port: 0 },
      tftp: { enabled: false },
      console: { https: true, httpsPort: 0 },
      monitor: { enabled: true, intervalSeconds: 1 },
    }),
  );
  master = await startMasterProcess({ args: ['--config', cfg], env: { CORRAL_ADMIN_PASSWORD: PASSWORD } });
  const m = /"https":"[\d.]+:(\d+)"/.exec(master.logs());
  assert.ok(m, `master logged its HTTPS port:\n${master.logs().slice(-2000)}`);
  httpsUrl = `https://127.0.0.1:${m[1]}`;
  const enlist = await fetch(`${master.url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      mac: '52:54:00:be:ef:01',
      inventory: {
        cpu: { model: 'QEMU Virtual CPU', count: 2 },
        memoryBytes: 536870912,
        disks: [{ name: 'vda', sizeBytes: 4294967296, serial: 'BROWSER1' }],
        nics: [{ name: 'eth0', mac: '52:54:00:be:ef:01', link: 'up' }],
      },
    }),
  });
  assert.equal(enlist.status, 201);
  browser = await chromium.launch({
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
});

after(async () => {
  await browser?.close();
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('sign in over HTTPS, see the node, the live chart draws, keyboard reaches the navigation', async () => {
  const context = await browser!.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1366, height: 800 },
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });

  await page.goto(`${httpsUrl}/`);
  assert.match(page.url(), /\/login/);
  await page.fill('input[name="user"]', 'admin');
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([page.waitForURL(`${httpsUrl}/`), page.click('button[type="submit"]')]);

  const cookie = (await context.cookies()).find((c) => c.name === 'corral_session');
  assert.ok(cookie, 'session cookie stored');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, 'Strict');

  // uPlot draws into a <canvas>; the master samples itself every second here.
  await page.waitForSelector('canvas', { timeout: 30_000 });
  if (process.env['CORRAL_SCREENSHOTS'])
    await page.screenshot({ path: join(process.env['CORRAL_SCREENSHOTS'], 'dashboard.png') });

  await page.goto(`${httpsUrl}/nodes`);
  const row = page.locator('tr', { hasText: '52:54:00:be:ef:01' });
  assert.equal(await row.count(), 1, 'the node list shows the enlisted node');
  if (process.env['CORRAL_SCREENSHOTS'])
    await page.screenshot({ path: join(process.env['CORRAL_SCREENSHOTS'], 'nodes.png') });
  await page.goto(`${httpsUrl}/nodes/52:54:00:be:ef:01`);
  assert.ok((await page.content()).includes('BROWSER1'), 'node page shows the disk serial');
  if (process.env['CORRAL_SCREENSHOTS'])
    await page.screenshot({ path: join(process.env['CORRAL_SCREENSHOTS'], 'node.png'), fullPage: true });

  // Keyboard: Tab from the top lands on a focusable link or control.
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.tagName ?? '');
  assert.match(focused, /^(A|BUTTON|INPUT|SELECT)$/);

  assert.deepEqual(errors, [], 'no script errors in the browser (CSP included)');
  await context.close();
});
