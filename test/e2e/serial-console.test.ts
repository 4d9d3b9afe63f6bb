/**
 * The node's serial console in a real browser (issue 20): one BIOS QEMU VM PXE-boots from the lab's
 * master and waits as a discovered node; Debian's Chromium (playwright-core) signs in, opens the node's
 * console page and sees the node agent's "corral: ..." lines arrive live over the WebSocket (the
 * terminal starts empty: nothing is replayed, so every line seen was printed after the page opened).
 * Then it types into the node's waiting shell on ttyS0 and reads the answers: a computation, Ctrl-C
 * ending a `sleep`, and `stty size` after the page's "Tell the shell the size". Last, the session's
 * recording replays in the browser. The path: xterm.js → WebSocket → master → lab socket → QEMU's
 * 16550 UART → the node's tty.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import { launchChromium } from '../helpers/browser.js';
import { basic } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';

const BOOT_TIMEOUT_MS = 240_000;
let lab: Lab | undefined;
let browser: Browser | undefined;
let dir = '';
let poweredOnAt = 0;

before(async () => {
  requireRoot('the lab (network namespaces, QEMU taps)');
  requirePeers('qemu-system-x86_64', 'ip');
  dir = mkdtempSync(join(tmpdir(), 'corral-serial-e2e-'));
  lab = await startLab({
    dir: join(dir, 'lab'),
    vms: [{ firmware: 'bios' }],
    logger: silentLogger(),
    memoryMb: 512,
    diskGb: 1,
    subnetPrefix: '10.97.0',
    masterConfig: { nodes: { discoverAction: 'wait', pollSeconds: 5 } },
  });
  poweredOnAt = Date.now();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The terminal's rows as text (xterm's DOM renderer; no-break spaces made plain). */
async function rows(page: Page): Promise<string[]> {
  return page.$$eval(
    '[data-serial-console] .xterm-rows > div, [data-serial-replay] .xterm-rows > div',
    (els) => els.map((e) => (e.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()),
  );
}

async function waitRow(
  page: Page,
  pred: (row: string) => boolean,
  what: string,
  ms = 20_000,
): Promise<string> {
  try {
    return await waitFor(what, async () => (await rows(page)).find(pred), ms, 250);
  } catch {
    throw new Error(`${what}: not on the terminal in ${ms} ms. Rows:\n${(await rows(page)).join('\n')}`);
  }
}

test('a lab VM: its agent lines appear live in the browser, typing gets answers, Ctrl-C and size work, the session replays', async () => {
  const l = lab!;
  const vm = l.vms[0]!;
  const mac = vm.spec.mac;
  try {
    await waitFor(
      'the VM waits with its console shell',
      () => /root shell on the serial console/.test(vm.console()),
      BOOT_TIMEOUT_MS,
      1000,
    );
  } catch {
    assert.fail(
      `VM never reached the waiting shell:\n${vm.console().slice(-3000)}\n--- master:\n${l.master.logs().slice(-2000)}`,
    );
  }
  const node = await fetch(`${l.hostUrl}/api/v1/nodes/${mac}`, { headers: basic('admin', l.adminPassword) });
  assert.equal(node.status, 200, 'the VM enlisted');
  const bootedMs = Date.now() - poweredOnAt;

  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${l.hostUrl}/login`);
  await page.fill('input[name="user"]', 'admin');
  await page.fill('input[name="password"]', l.adminPassword);
  await Promise.all([page.waitForURL(`${l.hostUrl}/`), page.click('button[type="submit"]')]);

  // From the node page's link to its console.
  await page.goto(`${l.hostUrl}/nodes/${mac}`);
  await Promise.all([page.waitForURL(/\/console$/), page.click('a:has-text("Serial console")')]);
  const opened = Date.now();
  await page.waitForSelector('[data-serial-console][data-role="writer"]', { timeout: 15_000 });
  // The agent polls every 5 s and prints "corral: action wait" each time: a line printed after opening.
  await waitRow(page, (r) => r.includes('corral: action wait'), 'an agent line, live');
  const liveMs = Date.now() - opened;

  await page.click('[data-serial-console]');
  await page.keyboard.press('Enter');
  await waitRow(page, (r) => r.startsWith('corral-wait:'), 'the shell prompt');
  await page.keyboard.type('echo $((6*7))');
  await page.keyboard.press('Enter');
  await waitRow(page, (r) => r.trim() === '42', 'the answer 42');

  // Ctrl-C from the keyboard reaches the node's tty as SIGINT: `sleep 60` ends at once.
  const t0 = Date.now();
  await page.keyboard.type('sleep 60');
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1000);
  await page.keyboard.press('Control+C');
  await page.keyboard.type('echo after-$((1+1))');
  await page.keyboard.press('Enter');
  await waitRow(page, (r) => r.trim() === 'after-2', 'a command after Ctrl-C', 30_000);
  const ctrlCMs = Date.now() - t0;
  assert.ok(ctrlCMs < 30_000, `Ctrl-C ended sleep 60 (${ctrlCMs} ms)`);

  // Resize: the terminal re-fits to the window; the button tells the shell with `stty rows R cols C`.
  await page.setViewportSize({ width: 900, height: 700 });
  const size = await waitFor(
    'the new size',
    async () => {
      const t = (await page.textContent('[data-console-size]')) ?? '';
      const m = /^(\d+) × (\d+)$/.exec(t.trim());
      return m && Number(m[1]) < 140 ? { cols: Number(m[1]), rows: Number(m[2]) } : undefined;
    },
    10_000,
    250,
  );
  await page.click('[data-console-stty]');
  await page.keyboard.type('stty size');
  await page.keyboard.press('Enter');
  await waitRow(
    page,
    (r) => r.trim() === `${size.rows} ${size.cols}`,
    `stty size = ${size.rows} ${size.cols}`,
  );
  assert.deepEqual(errors, [], 'no script errors on the console page');
  await page.close();

  // The session was recorded: its replay shows the answer in a terminal.
  const replayPage = await context.newPage();
  await replayPage.goto(`${l.hostUrl}/nodes/${mac}/console`);
  await Promise.all([
    replayPage.waitForURL(/\/recordings\//),
    replayPage.click('a[href*="/console/recordings/"]'),
  ]);
  await waitRow(replayPage, (r) => r.trim() === '42', 'the answer in the replay');
  await context.close();
  console.log(
    `# e2e serial console: VM waiting ${(bootedMs / 1000).toFixed(1)} s after power-on; first live agent line ${(liveMs / 1000).toFixed(1)} s after opening; Ctrl-C round trip ${(ctrlCMs / 1000).toFixed(1)} s`,
  );
});
