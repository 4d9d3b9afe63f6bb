/**
 * Out of band (issue 20), on ONE lab VM so the suite pays for one boot: a BIOS QEMU VM PXE-boots from the
 * lab's master and waits as a discovered node.
 *
 * 1. The node's serial console in a real browser: Debian's Chromium (playwright-core) signs in, opens the
 *    node's console page and sees the node agent's "corral: ..." lines arrive live over the WebSocket (the
 *    terminal starts empty: nothing is replayed, so every line seen was printed after the page opened).
 *    Then it types into the node's waiting shell on ttyS0 and reads the answers: a computation, Ctrl-C
 *    ending a `sleep`, and `stty size` after the page's "Tell the shell the size". Last, the session's
 *    recording replays in the browser. The path: xterm.js → WebSocket → master → lab socket → QEMU's
 *    16550 UART → the node's tty.
 * 2. A Redfish power cycle reboots the same VM into PXE. A Redfish TEST SERVER (test/helpers/redfish-server.ts,
 *    from DMTF DSP0266 + the DSP2043 public-rackmount1 mockup: no real Redfish service runs here,
 *    docs/redfish.md) runs inside the master's namespace and drives the VM through its QMP socket. The real
 *    master, configured through its API with driver `auto`, finds Redfish, pins the certificate, sets a
 *    one-time PXE boot and power-cycles the node; the master's own boot timeline then shows the VM's
 *    firmware asking DHCP and fetching the iPXE script again (the node agent alone never does either), and
 *    the console's node page shows the BMC's inventory and log after "Read inventory and log from the BMC".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser as Chromium, Page } from 'playwright-core';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import type { BootActivityEntry } from '../../master/store/boot-activity.js';
import { Browser, launchChromium } from '../helpers/browser.js';
import { basic } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';
import { TEST_SERVER_NOTICE } from '../helpers/redfish-server.js';

const SERVER = fileURLToPath(new URL('../helpers/redfish-server.js', import.meta.url));
const BMC_USER = 'corral';
const BMC_PASSWORD = 'e2e-Redfish-pw-42';
const BOOT_TIMEOUT_MS = 240_000;
const REBOOT_TIMEOUT_MS = 180_000;

let lab: Lab | undefined;
let browser: Chromium | undefined;
let dir = '';
let poweredOnAt = 0;
let bmc: ChildProcess | undefined;
let bmcPort = 0;
let bmcFingerprint = '';
let bmcOutput = '';

before(async () => {
  requireRoot('the lab (network namespaces, QEMU taps)');
  requirePeers('qemu-system-x86_64', 'ip');
  console.log(`# ${TEST_SERVER_NOTICE}`);
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-oob-'));
  lab = await startLab({
    dir: join(dir, 'lab'),
    vms: [{ firmware: 'bios', qmp: true }],
    logger: silentLogger(),
    memoryMb: 512,
    diskGb: 1,
    subnetPrefix: `10.97.${1 + Math.floor(Math.random() * 250)}`,
    masterConfig: { nodes: { namePattern: 'oob-{n}', discoverAction: 'wait', pollSeconds: 5 } },
  });
  poweredOnAt = Date.now();
  const vm = lab.vms[0]!;
  // The BMC stand-in on the master namespace's own loopback: the master reaches it, nothing else does.
  bmc = lab.net.spawnIn(
    lab.masterNs,
    [process.execPath, SERVER, '--port', '0', '--tls-dir', join(dir, 'bmc-tls'), '--qmp', vm.spec.qmpSocket!],
    { env: { ...process.env, REDFISH_TEST_PASSWORD: BMC_PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  bmc.stdout?.on('data', (d: Buffer) => (bmcOutput += d.toString()));
  bmc.stderr?.on('data', (d: Buffer) => (bmcOutput += d.toString()));
  const ready = await waitFor(
    'the Redfish test server',
    () => /READY (\{.*\})/.exec(bmcOutput)?.[1],
    20_000,
    100,
  );
  const r = JSON.parse(ready) as { port: number; fingerprint256: string };
  bmcPort = r.port;
  bmcFingerprint = r.fingerprint256;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (bmc && bmc.exitCode === null) bmc.kill('SIGTERM');
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(`${lab!.hostUrl}/api/v1${path}`, {
    method,
    headers: {
      ...basic('admin', lab!.adminPassword),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (await r.json()) as T };
}

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
  // The fit settles over a few frames (CI run 5 read 121 columns on the way to 76): wait until the shown
  // size is the same on two reads half a second apart.
  let last = '';
  const size = await waitFor(
    'the new size, settled',
    async () => {
      const t = ((await page.textContent('[data-console-size]')) ?? '').trim();
      const m = /^(\d+) × (\d+)$/.exec(t);
      const settled = m && Number(m[1]) < 140 && t === last;
      last = t;
      return settled ? { cols: Number(m[1]), rows: Number(m[2]) } : undefined;
    },
    15_000,
    500,
  );
  await page.click('[data-console-stty]');
  // The button typed the size the page shows into the shell...
  const typed = await waitRow(
    page,
    (r) => /stty rows \d+ cols \d+\s*$/.test(r),
    'the stty line the button typed',
  );
  const [, rows, cols] = /stty rows (\d+) cols (\d+)/.exec(typed)!;
  assert.deepEqual(
    { rows: Number(rows), cols: Number(cols) },
    size,
    'the button sent the size the page shows',
  );
  // ...and the shell now reports it.
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

test('a Redfish power cycle reboots the lab VM into PXE', async () => {
  const l = lab!;
  const vm = l.vms[0]!;
  // The VM enlisted in the first test; this one runs on its own too (it waits the same way).
  const enlisted = await waitFor(
    'the VM to enlist',
    async () => {
      const r = await api<{ nodes: { mac: string; name: string }[] }>('GET', '/nodes').catch(() => undefined);
      return r?.json.nodes.find((n) => n.mac === vm.spec.mac);
    },
    BOOT_TIMEOUT_MS,
    2000,
  ).catch((err: Error) => assert.fail(`${err.message}\n${vm.console().slice(-3000)}`));

  const set = await api<{ power: { driver: string } }>('PUT', `/nodes/${enlisted.name}/power`, {
    driver: 'auto',
    address: '127.0.0.1',
    port: bmcPort,
    username: BMC_USER,
    password: BMC_PASSWORD,
  });
  assert.equal(set.status, 200, JSON.stringify(set.json));
  const status = await api<{ state: string; power: { driver: string; tlsPin: string } }>(
    'POST',
    `/nodes/${enlisted.name}/power/status`,
  );
  assert.equal(status.status, 200, JSON.stringify(status.json));
  assert.equal(status.json.state, 'on');
  assert.equal(status.json.power.driver, 'redfish', 'auto chose Redfish');
  assert.equal(status.json.power.tlsPin, bmcFingerprint, 'the certificate was pinned on first use');

  const pxe = await api<{ message: string }>('POST', `/nodes/${enlisted.name}/power/pxe`);
  assert.equal(pxe.status, 200, JSON.stringify(pxe.json));
  assert.match(pxe.json.message, /boot once from Pxe/);
  const cycledAt = new Date().toISOString();
  const started = Date.now();
  const cycle = await api<{ message: string }>('POST', `/nodes/${enlisted.name}/power/cycle`);
  assert.equal(cycle.status, 200, JSON.stringify(cycle.json));
  assert.match(cycle.json.message, /power-cycled through Redfish .*ResetType PowerCycle/);

  // The firmware's own steps after the cycle: a DHCP exchange and iPXE fetching the boot script.
  const steps = await waitFor(
    'the VM to PXE-boot again after the cycle',
    async () => {
      const r = await api<{ entries: BootActivityEntry[] }>('GET', `/boot-activity?mac=${vm.spec.mac}`);
      const after = r.json.entries.filter((e) => e.at > cycledAt);
      return after.some((e) => e.kind === 'dhcp') && after.some((e) => e.kind === 'script')
        ? after
        : undefined;
    },
    REBOOT_TIMEOUT_MS,
    2000,
  ).catch((err: Error) =>
    assert.fail(`${err.message}\n${vm.console().slice(-3000)}\n${bmcOutput.slice(-2000)}`),
  );
  console.log(
    `# e2e: Redfish power cycle → iPXE script fetched again in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(${steps.map((s) => s.kind).join(' → ')})`,
  );
  // The BMC saw the session-authenticated reset, and every session was closed again.
  const reqs = bmcOutput
    .split('\n')
    .filter((line) => line.startsWith('REQ '))
    .map((line) => JSON.parse(line.slice(4)) as { method: string; path: string; auth: string });
  assert.ok(reqs.some((r) => r.path.endsWith('ComputerSystem.Reset') && r.auth === 'session'));
  assert.equal(
    reqs.filter((r) => r.method === 'POST' && r.path.endsWith('/Sessions')).length,
    reqs.filter((r) => r.method === 'DELETE').length,
    'one logout per login',
  );
  assert.ok(!reqs.some((r) => r.auth === 'basic'));

  // The node page: inventory and log entries after the read button; the password nowhere.
  const b = new Browser(l.hostUrl);
  await b.login('admin', l.adminPassword);
  const token = await b.csrfToken();
  const read = await b.post(`/nodes/${enlisted.name}/power/bmc`, { _csrf: token });
  assert.equal(read.status, 303);
  const page = await (await b.get(`/nodes/${enlisted.name}`)).text();
  assert.match(page, /BMC \(Redfish\)/);
  assert.ok(page.includes('437XR1138R2'), 'serial number on the node page');
  assert.ok(page.includes('P79 v1.45 (12/06/2017)'), 'BIOS version on the node page');
  assert.match(page, /ResetType PowerCycle: power cycle: powered on; boot override Pxe applied/);
  assert.ok(page.includes(bmcFingerprint), 'the pinned fingerprint is shown');
  assert.ok(!page.includes(BMC_PASSWORD));
  assert.ok(!l.master.logs().includes(BMC_PASSWORD), 'the password is not in the master log');
});
