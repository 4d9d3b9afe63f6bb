/**
 * `npm run screenshots [-- --out DIR]`: PNGs of the console's main pages, for reviews and docs. Starts the
 * real `corral master` on loopback with a temporary data directory (plain HTTP console, no DHCP, TFTP or
 * HAProxy), enlists one made-up node and takes a restore point through the API, signs in with Chromium
 * (playwright-core + Debian's chromium) and writes one full-page PNG per page into DIR (default
 * ./screenshots). Everything it started is stopped and the data directory removed, also on failure.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startMasterProcess, type MasterProcess } from './master-process.js';
import { apiOk } from './api.js';
import { launchChromium } from './browser.js';

const PASSWORD = 'screenshots-admin-pw';
const MAC = '52:54:00:5c:00:01';

/** Page name (the PNG's file name) → console path. */
const PAGES: [string, string][] = [
  ['dashboard', '/'],
  ['nodes', '/nodes'],
  ['node', `/nodes/${MAC}`],
  ['images', '/images'],
  ['services', '/services'],
  ['snapshots', '/snapshots'],
  ['settings', '/settings'],
  ['users', '/users'],
  ['events', '/events'],
  ['audit', '/audit'],
];

function outDir(argv: string[]): string {
  const i = argv.indexOf('--out');
  if (i >= 0 && !argv[i + 1]) throw new Error('usage: npm run screenshots [-- --out DIR]');
  return resolve(i >= 0 ? argv[i + 1]! : 'screenshots');
}

async function api(master: MasterProcess, method: string, path: string, body?: unknown): Promise<void> {
  await apiOk({ url: master.url, password: PASSWORD }, method, path, body);
}

async function main(): Promise<void> {
  const out = outDir(process.argv.slice(2));
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'corral-screenshots-'));
  let master: MasterProcess | undefined;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    const cfg = join(dir, 'corral.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        address: '127.0.0.1',
        http: { port: 0, bind: '127.0.0.1' },
        tftp: { enabled: false },
        lb: { enabled: false },
        console: { https: false },
        monitor: { enabled: true, intervalSeconds: 1 },
      }),
    );
    master = await startMasterProcess({
      args: ['--config', cfg],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    });
    // A node as the discovery agent would enlist it (no credentials), then a restore point.
    const enlist = await fetch(`${master.url}/api/v1/enlist`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        mac: MAC,
        inventory: {
          cpu: { model: 'QEMU Virtual CPU', count: 4 },
          memoryBytes: 8 * 2 ** 30,
          disks: [{ name: 'vda', sizeBytes: 64 * 2 ** 30, serial: 'SHOT0001' }],
          nics: [{ name: 'eth0', mac: MAC, link: 'up', speedMbps: 1000 }],
          dmi: { vendor: 'QEMU', product: 'Standard PC (Q35 + ICH9, 2009)', serial: 'SCREEN-1' },
          firmware: 'uefi',
        },
      }),
    });
    if (enlist.status !== 201) throw new Error(`enlist: HTTP ${enlist.status} ${await enlist.text()}`);
    await api(master, 'POST', '/snapshots', {
      name: 'before-screenshots',
      note: 'taken by npm run screenshots',
    });

    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${master.url}/login`);
    await page.fill('input[name="user"]', 'admin');
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${master.url}/`), page.click('button[type="submit"]')]);

    for (const [name, path] of PAGES) {
      const res = await page.goto(`${master.url}${path}`);
      const landed = new URL(page.url()).pathname;
      // A screenshot of the login form or an error page would be worse than none.
      if (res?.status() !== 200 || landed === '/login')
        throw new Error(`${path}: HTTP ${res?.status() ?? '?'} at ${landed}, not the page`);
      // Charts draw after their data arrives; give them a moment where there are any.
      if (await page.locator('[data-chart]').count())
        await page.waitForSelector('[data-chart] canvas', { timeout: 15_000 }).catch(() => undefined);
      const file = join(out, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(file);
    }
    await context.close();
  } finally {
    await browser?.close().catch(() => undefined);
    await master?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
