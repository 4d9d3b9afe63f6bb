/**
 * The console in a real browser: Debian's Chromium driven by playwright-core (no browser download) against
 * the real `corral master` process over HTTPS with its generated self-signed certificate. Signs in through
 * the form, checks the session cookie's flags as the browser stored them, finds an enlisted node in the
 * list and on its page, waits for the live uPlot chart to draw, and checks keyboard focus reaches the nav.
 * Then it starts an action through the UI (a lifecycle transition, from a second tab) and checks the node
 * page shows its result live over the event stream, without reloading; and that signing out ends that
 * stream and sends the open page to the login form.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

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
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('sign in over HTTPS, see the node, the live chart draws, keyboard reaches the navigation, an action shows live', async () => {
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
  // The node page opens its event stream; once the browser has the response, the server has fixed the
  // stream's starting point, so every later event reaches this page.
  const streamOpen = page.waitForResponse((r) => r.url().includes('/monitor/stream'), { timeout: 30_000 });
  await page.goto(`${httpsUrl}/nodes/52:54:00:be:ef:01`);
  assert.ok((await page.content()).includes('BROWSER1'), 'node page shows the disk serial');
  assert.equal((await streamOpen).headers()['content-type'], 'text/event-stream; charset=utf-8');
  if (process.env['CORRAL_SCREENSHOTS'])
    await page.screenshot({ path: join(process.env['CORRAL_SCREENSHOTS'], 'node.png'), fullPage: true });

  // Keyboard: Tab from the top lands on a focusable link or control.
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.tagName ?? '');
  assert.match(focused, /^(A|BUTTON|INPUT|SELECT)$/);

  // Start an action through the UI in a second tab, as a colleague would: "Move to state" with a reason
  // and "I confirm". The first tab must show the result live, in the same document (no reload).
  await page.evaluate(() => {
    (window as unknown as { corralSameDocument?: boolean }).corralSameDocument = true;
  });
  const liveRows = page.locator('[data-live-events] tbody tr.is-new');
  assert.equal(await liveRows.count(), 0);
  const actor = await context.newPage();
  await actor.goto(`${httpsUrl}/nodes/52:54:00:be:ef:01`);
  const to = await actor.locator('#a-to option').first().getAttribute('value');
  assert.ok(to, 'the node offers a next state');
  await actor.selectOption('#a-to', to);
  await actor.fill('#a-reason', 'browser e2e');
  await actor.check('form[action$="/transition"] input[name="confirm"]');
  await Promise.all([
    actor.waitForURL(/[?&]ok=/),
    actor.click('form[action$="/transition"] button[type="submit"]'),
  ]);
  assert.match(decodeURIComponent(actor.url()), new RegExp(`discovered → ${to}`));

  await liveRows.first().waitFor({ timeout: 15_000 });
  const liveRow = await liveRows.first().innerText();
  assert.match(liveRow, /node\.state/);
  assert.match(liveRow, new RegExp(`: discovered → ${to} \\(browser e2e\\)`));
  assert.match(liveRow, /admin/);
  assert.equal(
    await page.evaluate(() => (window as unknown as { corralSameDocument?: boolean }).corralSameDocument),
    true,
    'the row arrived without a reload',
  );

  // Signing out (in the other tab) ends the session; the open page's stream ends and it goes to the login.
  await Promise.all([actor.waitForURL(/\/login$/), actor.click('button:has-text("Sign out")')]);
  await page.waitForURL(/\/login\?expired=1/, { timeout: 15_000 });
  await actor.close();

  assert.deepEqual(errors, [], 'no script errors in the browser (CSP included)');
  await context.close();
});
