/**
 * The Redfish power driver against the Redfish TEST SERVER of test/helpers/redfish-server.ts (built from
 * DMTF DSP0266 and the DSP2043 public-rackmount1 mockup, because no real Redfish service runs here; see
 * docs/redfish.md), over real HTTPS on loopback, with a real QEMU VM behind it driven through QMP. The
 * master's real PowerControl, store and SecretBox are used; the VM's state is read back through its own
 * QMP socket, not through the server. One VM for all tests (it only sits in its firmware: no boot media).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { requirePeers } from '../helpers/peers.js';
import { waitFor } from '../helpers/netns.js';
import { tempRepos, testConfig } from '../helpers/repos.js';
import {
  qmp,
  startRedfishServer,
  TEST_SERVER_NOTICE,
  type RedfishServer,
} from '../helpers/redfish-server.js';
import { Enrolment } from '../../master/enrolment/service.js';
import { createPowerControl, type PowerControl } from '../../master/remote/power.js';
import { SecretBox } from '../../master/remote/secrets.js';
import { isCorralError } from '../../master/util/errors.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import type { Repos } from '../../master/store/repos.js';

const USER = 'corral';
const PASSWORD = 'Rf-s3cret-Pa55word';
const MAC = '52:54:00:20:f1:01';

let dir = '';
let qemu: ChildProcess | undefined;
let qmpSocket = '';
let server: RedfishServer | undefined;
let t: ReturnType<typeof tempRepos>;
let repos: Repos;
let power: PowerControl;
let node: NodeRecord;
let logPath = '';

async function startServer(tlsName: string, resetTypes?: string[], port = 0): Promise<RedfishServer> {
  return startRedfishServer({
    host: '127.0.0.1',
    port,
    tlsDir: join(dir, tlsName),
    qmpSocket,
    username: USER,
    password: PASSWORD,
    ...(resetTypes ? { resetTypes } : {}),
  });
}

async function vmRunning(): Promise<boolean> {
  const [s] = (await qmp(qmpSocket, [{ execute: 'query-status' }])) as { running: boolean }[];
  return s!.running;
}

async function bootIndexes(): Promise<{ nic0: number; disk0: number }> {
  const get = (id: string) => ({
    execute: 'qom-get',
    arguments: { path: `/machine/peripheral/${id}`, property: 'bootindex' },
  });
  const [nic0, disk0] = (await qmp(qmpSocket, [get('nic0'), get('disk0')])) as number[];
  return { nic0: nic0!, disk0: disk0! };
}

const code = (c: string) => (e: unknown) => isCorralError(e) && e.code === c;

before(async () => {
  requirePeers('qemu-system-x86_64', 'qemu-img');
  console.log(`# ${TEST_SERVER_NOTICE}`);
  dir = mkdtempSync(join(tmpdir(), 'corral-redfish-'));
  qmpSocket = join(dir, 'vm.qmp');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'disk.qcow2'), '64M']);
  // No boot media and no option ROM: the firmware finds nothing and waits; the VM only has to exist.
  // The NIC has no network backend (QEMU warns): nothing leaves this process.
  qemu = spawn(
    'qemu-system-x86_64',
    [
      '-accel',
      'tcg',
      '-m',
      '64',
      '-display',
      'none',
      '-nodefaults',
      '-qmp',
      `unix:${qmpSocket},server=on,wait=off`,
      '-device',
      'virtio-net-pci,id=nic0,romfile=,bootindex=1',
      '-drive',
      `if=none,id=d0,file=${join(dir, 'disk.qcow2')},format=qcow2`,
      '-device',
      'virtio-blk-pci,drive=d0,id=disk0,bootindex=2',
    ],
    { stdio: 'ignore' },
  );
  await waitFor('the QMP socket', () => existsSync(qmpSocket), 10_000, 100);
  server = await startServer('tls-a');
  t = tempRepos();
  repos = t.repos;
  node = repos.store.write((j) =>
    repos.nodes.insertIn(j, { mac: MAC, name: 'rf1', seqNo: 1, state: 'ready' }),
  );
  logPath = join(dir, 'master.log');
  power = createPowerControl({
    repos,
    config: testConfig({ dataDir: t.dir, remote: { power: { pollSeconds: 0, timeoutSeconds: 10 } } }),
    logger: pino({ level: 'debug' }, pino.destination({ dest: logPath, sync: true })),
    secrets: SecretBox.forDataDir(t.dir),
  });
});

after(async () => {
  await server?.close();
  if (qemu && qemu.exitCode === null) qemu.kill('SIGKILL');
  t?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('first contact pins the certificate, logs in with a session, logs out; Basic is never used', async () => {
  const s = server!;
  power.configure(
    node,
    { driver: 'redfish', address: '127.0.0.1', port: s.port, username: USER, password: PASSWORD },
    'alice',
  );
  assert.equal(power.view(MAC)?.tlsPin, null, 'nothing pinned before the first contact');
  assert.equal(await power.refresh(node), 'on');
  assert.equal(power.view(MAC)?.tlsPin, s.fingerprint256, 'the fingerprint seen first is pinned');
  const pinned = repos.events.list({ kind: 'power.pinned' });
  assert.ok(JSON.stringify(pinned).includes(s.fingerprint256), 'a power.pinned event names it');
  const logins = s.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Sessions'));
  const logouts = s.requests.filter((r) => r.method === 'DELETE');
  assert.equal(logins.length, 1);
  assert.equal(logouts.length, 1);
  assert.equal(s.openSessions(), 0, 'the session was deleted on close');
  assert.ok(
    s.requests.every((r) => r.auth !== 'basic'),
    `no request used Basic: ${JSON.stringify(s.requests)}`,
  );
  assert.ok(
    s.requests.filter((r) => r.path.includes('/Systems/')).every((r) => r.auth === 'session'),
    'system resources were read with the session token',
  );
});

test('off and on through ComputerSystem.Reset change the VM itself (read over QMP)', async () => {
  const off = await power.act(node, 'off', 'alice');
  assert.match(off.message, /powered off .*ResetType ForceOff/);
  assert.equal(off.state, 'off');
  assert.equal(await vmRunning(), false);
  const on = await power.act(node, 'on', 'alice');
  assert.match(on.message, /ResetType On/);
  assert.equal(on.state, 'on');
  assert.equal(await vmRunning(), true);
  assert.equal(server!.openSessions(), 0);
});

test('one-time boot override: disk first for the next boot only, then the default order again', async () => {
  assert.deepEqual(await bootIndexes(), { nic0: 1, disk0: 2 });
  const r = await power.act(node, 'disk', 'alice');
  assert.match(r.message, /boot once from Hdd/);
  const details = await power.bmcDetails(node);
  assert.deepEqual(details?.bootOverride, { target: 'Hdd', enabled: 'Once' });
  const cycled = await power.act(node, 'cycle', 'alice');
  assert.match(cycled.message, /ResetType PowerCycle/);
  assert.deepEqual(await bootIndexes(), { nic0: 2, disk0: 1 }, 'the override reached QEMU');
  assert.deepEqual((await power.bmcDetails(node))?.bootOverride, { target: 'None', enabled: 'Disabled' });
  await power.act(node, 'cycle', 'alice');
  assert.deepEqual(await bootIndexes(), { nic0: 1, disk0: 2 }, '"Once": the boot after is the default');
  const pxe = await power.act(node, 'pxe', 'alice');
  assert.match(pxe.message, /boot once from Pxe/);
  const http = await power.act(node, 'uefi-http', 'alice');
  assert.match(http.message, /boot once from UefiHttp/);
});

test('inventory and the BMC log entries (system log inline, manager SEL by link)', async () => {
  const d = (await power.bmcDetails(node))!;
  assert.equal(d.model, '3500');
  assert.equal(d.manufacturer, 'Contoso');
  assert.equal(d.serialNumber, '437XR1138R2');
  assert.equal(d.biosVersion, 'P79 v1.45 (12/06/2017)');
  assert.equal(d.powerState, 'On');
  assert.ok(d.resetTypes.includes('PowerCycle'));
  const text = d.logEntries.map((e) => `${e.source}: ${e.message}`).join('\n');
  assert.match(text, /System\/Systems\/437XR1138R2\/LogServices\/Log: ResetType ForceOff: powered off/);
  assert.match(text, /Boot source override set: Hdd \(Once\)/);
  assert.match(text, /Manager\/Managers\/BMC\/LogServices\/SEL: Session \w+ opened for user corral/);
});

test('a wrong password is REDFISH_AUTH_FAILED; nothing Redfish at the port is REDFISH_UNREACHABLE', async () => {
  const other = repos.store.write((j) =>
    repos.nodes.insertIn(j, { mac: '52:54:00:20:f1:02', name: 'rf2', seqNo: 2, state: 'ready' }),
  );
  power.configure(
    other,
    {
      driver: 'redfish',
      address: '127.0.0.1',
      port: server!.port,
      username: USER,
      password: 'wrong-password-1',
    },
    'alice',
  );
  await assert.rejects(power.act(other, 'on', 'alice'), code('REDFISH_AUTH_FAILED'));
  power.configure(
    other,
    { driver: 'redfish', address: '127.0.0.1', port: 1, username: USER, password: PASSWORD },
    'alice',
  );
  await assert.rejects(power.refresh(other), code('REDFISH_UNREACHABLE'));
});

test('driver auto: Redfish where the service root answers, else IPMI', async () => {
  const a = repos.store.write((j) =>
    repos.nodes.insertIn(j, { mac: '52:54:00:20:f1:03', name: 'rf3', seqNo: 3, state: 'ready' }),
  );
  power.configure(
    a,
    { driver: 'auto', address: '127.0.0.1', port: server!.port, username: USER, password: PASSWORD },
    'alice',
  );
  assert.equal(await power.refresh(a), 'on');
  assert.equal(power.view(a.mac)?.driver, 'redfish');
  assert.equal(power.view(a.mac)?.tlsPin, server!.fingerprint256);
  const b = repos.store.write((j) =>
    repos.nodes.insertIn(j, { mac: '52:54:00:20:f1:04', name: 'rf4', seqNo: 4, state: 'ready' }),
  );
  power.configure(
    b,
    { driver: 'auto', address: '127.0.0.1', port: 1, username: USER, password: PASSWORD },
    'alice',
  );
  // The IPMI side is not under test here (test/integration/ipmi-power.test.ts drives ipmi_sim): record
  // what the resolved driver ran instead of waiting out ipmitool's retries against nothing.
  const ran: string[][] = [];
  const withIpmi = createPowerControl({
    repos,
    config: testConfig({ dataDir: t.dir, remote: { power: { pollSeconds: 0, timeoutSeconds: 10 } } }),
    logger: pino({ level: 'silent' }),
    secrets: SecretBox.forDataDir(t.dir),
    runIpmitool: (_bin, args) => {
      ran.push(args);
      return Promise.resolve({ code: 0, stdout: 'Chassis Power is off\n', stderr: '' });
    },
  });
  assert.equal(await withIpmi.refresh(b), 'off');
  assert.deepEqual(ran.length, 1);
  assert.ok(ran[0]!.join(' ').includes('-H 127.0.0.1 -p 623'), ran[0]!.join(' '));
  assert.equal(power.view(b.mac)?.driver, 'ipmi');
  assert.equal(power.view(b.mac)?.port, 623);
});

test('a changed certificate is refused before the password is sent; repin accepts it', async () => {
  const port = server!.port;
  const before = server!.fingerprint256;
  await server!.close();
  // Same address and port, a new certificate (a new key pair), and a BMC that offers no PowerCycle.
  server = await startServer('tls-b', ['On', 'ForceOff', 'ForceRestart'], port);
  assert.notEqual(server.fingerprint256, before);
  await assert.rejects(power.act(node, 'cycle', 'alice'), (e: unknown) => {
    assert.ok(code('REDFISH_CERT_CHANGED')(e), String(e));
    assert.match((e as Error).message, new RegExp(server!.fingerprint256.slice(0, 20)));
    return true;
  });
  assert.equal(server.requests.length, 0, 'not one HTTP request reached the impostor');
  power.configure(
    node,
    { driver: 'redfish', address: '127.0.0.1', port, username: USER, repin: true },
    'alice',
  );
  const r = await power.act(node, 'cycle', 'alice');
  assert.match(r.message, /ResetType ForceRestart/, 'the advertised ResetType is chosen');
  assert.equal(power.view(MAC)?.tlsPin, server.fingerprint256);
});

test("an enrolment rule sets a caught node's Redfish driver from its facts, with sealed credentials", async () => {
  const enrolment = new Enrolment({
    repos,
    config: testConfig({ dataDir: t.dir }),
    logger: pino({ level: 'silent' }),
    deployer: { deploy: () => Promise.reject(new Error('this rule only waits')) },
    power,
  });
  // The site convention under test: the BMC's address mirrors the node's last octet (here on loopback).
  const rule = enrolment.create(
    {
      name: 'contoso-bmc',
      match: { vendor: 'Contoso*' },
      outcome: {
        power: {
          driver: 'redfish',
          address: '127.0.0.{ip4}',
          port: server!.port,
          username: USER,
          password: PASSWORD,
        },
      },
    },
    'alice',
  );
  const stored = JSON.stringify(rule);
  assert.ok(!stored.includes(PASSWORD), 'the rule keeps the password sealed only');
  assert.match(stored, /"passwordSealed":"v1:/);
  const caught = repos.store.write((j) =>
    repos.nodes.insertIn(j, {
      mac: '52:54:00:20:f1:05',
      name: 'new-5',
      seqNo: 5,
      state: 'discovered',
      ip: '127.0.0.1',
      inventory: { dmi: { vendor: 'Contoso', product: '3500', serial: '437XR1138R2' } },
    }),
  );
  const [result] = await enrolment.apply([caught.mac]);
  assert.equal(result?.rule, 'contoso-bmc', JSON.stringify(result));
  assert.ok(
    result?.done.includes(`power driver redfish at 127.0.0.1:${server!.port}`),
    JSON.stringify(result),
  );
  assert.equal(power.view(caught.mac)?.driver, 'redfish');
  assert.equal(
    await power.refresh(repos.nodes.get(caught.mac)!),
    'on',
    "the rule's credentials open the BMC",
  );
  // A node without the fact the pattern needs is caught, and its power is left alone with a reason.
  const noIp = repos.store.write((j) =>
    repos.nodes.insertIn(j, {
      mac: '52:54:00:20:f1:06',
      name: 'new-6',
      seqNo: 6,
      state: 'discovered',
      inventory: { dmi: { vendor: 'Contoso' } },
    }),
  );
  const [second] = await enrolment.apply([noIp.mac]);
  assert.match(second?.error?.message ?? '', /no \{ip4\} fact/);
  assert.equal(power.view(noIp.mac), undefined);
});

test('the password is never in a view, event, log line or the database file', () => {
  const seen = [
    JSON.stringify(power.view(MAC)),
    JSON.stringify(repos.events.list({ limit: 1000 })),
    readFileSync(logPath, 'utf8'),
    readFileSync(t.path).toString('latin1'),
    existsSync(`${t.path}-wal`) ? readFileSync(`${t.path}-wal`).toString('latin1') : '',
  ];
  assert.ok(readFileSync(logPath, 'utf8').includes('power action'), 'the log was written');
  for (const text of seen) assert.ok(!text.includes(PASSWORD), 'password leaked');
});
