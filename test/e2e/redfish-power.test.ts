/**
 * End to end: a Redfish power cycle reboots a lab VM into PXE. One BIOS VM PXE-boots from Corral and
 * enlists; a Redfish TEST SERVER (test/helpers/redfish-server.ts, from DMTF DSP0266 + the DSP2043
 * public-rackmount1 mockup: no real Redfish service runs here, docs/redfish.md) runs inside the master's
 * namespace and drives that VM through its QMP socket. The real master, configured through its API with
 * driver `auto`, finds Redfish, pins the certificate, sets a one-time PXE boot and power-cycles the node;
 * the master's own boot timeline then shows the VM's firmware asking DHCP and fetching the iPXE script
 * again (the node agent alone never does either), and the console's node page shows the BMC's inventory
 * and log after "Read inventory and log from the BMC".
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import type { BootActivityEntry } from '../../master/store/boot-activity.js';
import { basic } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';
import { Browser } from '../helpers/browser.js';
import { TEST_SERVER_NOTICE } from '../helpers/redfish-server.js';

const SERVER = fileURLToPath(new URL('../helpers/redfish-server.js', import.meta.url));
const BMC_USER = 'corral';
const BMC_PASSWORD = 'e2e-Redfish-pw-42';
const ENLIST_TIMEOUT_MS = 240_000;
const REBOOT_TIMEOUT_MS = 180_000;

let lab: Lab | undefined;
let dir = '';
let bmc: ChildProcess | undefined;
let bmcPort = 0;
let bmcFingerprint = '';
let bmcOutput = '';

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

before(async () => {
  requireRoot();
  requirePeers('qemu-system-x86_64', 'ip');
  console.log(`# ${TEST_SERVER_NOTICE}`);
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-redfish-'));
  lab = await startLab({
    dir: join(dir, 'lab'),
    vms: [{ firmware: 'bios', qmp: true }],
    logger: silentLogger(),
    memoryMb: 384,
    diskGb: 1,
    subnetPrefix: `10.83.${1 + Math.floor(Math.random() * 250)}`,
    masterConfig: { nodes: { namePattern: 'rf-{n}', discoverAction: 'wait', pollSeconds: 5 } },
  });
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
});

after(async () => {
  if (bmc && bmc.exitCode === null) bmc.kill('SIGTERM');
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('a Redfish power cycle reboots the lab VM into PXE', async () => {
  const l = lab!;
  const vm = l.vms[0]!;
  const enlisted = await waitFor(
    'the VM to enlist',
    async () => {
      const r = await api<{ nodes: { mac: string; name: string }[] }>('GET', '/nodes').catch(() => undefined);
      return r?.json.nodes.find((n) => n.mac === vm.spec.mac);
    },
    ENLIST_TIMEOUT_MS,
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
