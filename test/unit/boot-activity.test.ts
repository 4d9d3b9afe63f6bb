/**
 * The boot timeline (issue 22): the pure step descriptions (failure marks and hints), the DHCP step built
 * from a request and the policy's decision, attribution by address, and the store's bounds and eviction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BootActivity, describe, dhcpStep, type BootStep } from '../../master/boot/activity.js';
import { DHCPACK, DHCPDISCOVER, DHCPOFFER, emptyOptions, type DhcpPacket } from '../../master/dhcp/codec.js';
import { BootActivityStore } from '../../master/store/boot-activity.js';
import { silentLogger } from '../../master/util/logger.js';
import { bootTimeline } from '../../web-ui/node-view.js';
import Database from 'better-sqlite3';
import { tempRepos } from '../helpers/repos.js';

const MAC = '52:54:00:aa:00:01';

function packet(
  type: number,
  options: Partial<DhcpPacket['options']>,
  fields: Partial<DhcpPacket> = {},
): DhcpPacket {
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 1,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: MAC,
    sname: '',
    file: '',
    ...fields,
    options: { ...emptyOptions(), messageType: type, ...options },
  };
}

test('describe: a kernel 404 is the failing step, with the node-environment hint', () => {
  const d = describe({
    kind: 'http',
    path: '/boot/node/vmlinuz',
    status: 404,
    bytes: 58,
    ms: 2,
    aborted: false,
  });
  assert.equal(d.failed, true);
  assert.match(d.summary, /^kernel: HTTP 404/);
  assert.match(d.hint ?? '', /^kernel missing: the node environment is not built — see the dashboard/);
  const ok = describe({
    kind: 'http',
    path: '/boot/node/initrd.img',
    status: 200,
    bytes: 1_300_000,
    ms: 40,
    aborted: false,
  });
  assert.deepEqual([ok.failed, ok.hint], [false, null]);
  assert.equal(ok.summary, 'initrd: HTTP 200, 1270 KiB in 40 ms');
  const cut = describe({
    kind: 'http',
    path: '/boot/node/vmlinuz',
    status: 200,
    bytes: null,
    ms: 9000,
    aborted: true,
  });
  assert.equal(cut.failed, true);
  assert.match(cut.hint ?? '', /closed the connection/);
});

test('describe: TFTP refusals and failures name the fix; successes are plain', () => {
  const missing = describe({
    kind: 'tftp',
    file: 'undionly.kpxe',
    ok: false,
    bytes: 0,
    ms: 0,
    error: 'File not found',
  });
  assert.equal(missing.failed, true);
  assert.match(missing.hint ?? '', /install Debian package ipxe/);
  const stalled = describe({
    kind: 'tftp',
    file: 'ipxe.efi',
    ok: false,
    bytes: 14_680,
    ms: 6000,
    error: 'timed out',
  });
  assert.equal(stalled.failed, true);
  assert.match(stalled.summary, /after 14 KiB: timed out/);
  assert.match(stalled.hint ?? '', /tftp\.maxBlksize/);
  const ok = describe({ kind: 'tftp', file: 'undionly.kpxe', ok: true, bytes: 70_000, ms: 120 });
  assert.deepEqual(ok, { summary: 'TFTP undionly.kpxe: 68 KiB in 120 ms', failed: false, hint: null });
});

test('describe: a UEFI tsize probe (ERROR 8 after the OACK, nothing sent) is no failure', () => {
  const probe = describe({
    kind: 'tftp',
    file: 'ipxe.efi',
    ok: false,
    bytes: 0,
    ms: 40,
    error: 'client sent ERROR 8: User aborted the transfer',
  });
  assert.deepEqual(probe, {
    summary: 'TFTP ipxe.efi: size asked, then ended by the client (tsize probe)',
    failed: false,
    hint: null,
  });
  // The same error mid-file is a client giving up: a failure.
  const midway = describe({
    kind: 'tftp',
    file: 'ipxe.efi',
    ok: false,
    bytes: 2936,
    ms: 40,
    error: 'client sent ERROR 8: x',
  });
  assert.equal(midway.failed, true);
});

test('describe: scripts, agent and installer reports', () => {
  assert.equal(describe({ kind: 'script', template: 'ipxe/discover.hbs', ip: '10.0.0.5' }).failed, false);
  const noImage = describe({ kind: 'script', template: 'ipxe/no-image.hbs', ip: '10.0.0.5' });
  assert.equal(noImage.failed, true);
  assert.match(noImage.hint ?? '', /node environment missing/);
  assert.equal(
    describe({ kind: 'enlist', name: 'node-1', created: true, ip: '10.0.0.5' }).summary,
    'agent enlisted as node-1 (new node) from 10.0.0.5',
  );
  const fail = describe({ kind: 'deploy', event: 'result', ok: false, reason: 'disk /dev/vda not found' });
  assert.equal(fail.failed, true);
  assert.match(fail.summary, /disk \/dev\/vda not found/);
});

test('dhcpStep: architecture, classes, boot file and address from the request and the reply', () => {
  const req = packet(DHCPDISCOVER, { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0] });
  const reply = packet(DHCPOFFER, { bootfileName: 'undionly.kpxe' }, { op: 2, yiaddr: '10.0.0.100' });
  const step = dhcpStep(req, {
    reply: { packet: reply, to: { address: '255.255.255.255', port: 68, why: 'test' } },
    note: 'offer',
  });
  assert.deepEqual(step, {
    kind: 'dhcp',
    message: 'DHCPDISCOVER',
    reply: 'DHCPOFFER',
    pxe: true,
    arch: 0,
    vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
    userClass: null,
    bootFile: 'undionly.kpxe',
    ip: '10.0.0.100',
    clientIp: null,
    note: 'offer',
    problem: null,
  });
  assert.equal(
    describe(step).summary,
    'DHCPDISCOVER → DHCPOFFER (BIOS, boot file undionly.kpxe, address 10.0.0.100)',
  );
  const exhausted = dhcpStep(req, {
    reply: null,
    note: 'no free address in 10.0.0.0/24',
    tag: 'pool-exhausted',
  });
  const d = describe(exhausted);
  assert.equal(d.failed, true);
  assert.match(d.summary, /DHCPDISCOVER, no reply.*: no free address/);
  assert.match(d.hint ?? '', /widen dhcp\.range/);
  // A PXE client answered without a boot file (an architecture Corral does not serve) cannot boot.
  const arm = dhcpStep(packet(DHCPDISCOVER, { vendorClassId: 'PXEClient:Arch:00011', clientArch: [11] }), {
    reply: {
      packet: packet(DHCPOFFER, {}, { op: 2, yiaddr: '10.0.0.101' }),
      to: { address: '255.255.255.255', port: 68, why: 'test' },
    },
    note: 'offer',
  });
  assert.equal(describe(arm).failed, true);
  assert.match(describe(arm).summary, /arch 11/);
});

test('BootActivity: TFTP and kernel fetches are attributed to the MAC that DHCP gave the address', () => {
  const t = tempRepos();
  try {
    let ms = Date.parse('2026-12-06T10:00:00Z');
    const activity = new BootActivity({
      store: t.repos.bootActivity,
      logger: silentLogger(),
      now: () => new Date((ms += 1000)),
      lookupIp: (ip) => (ip === '10.0.0.77' ? '52:54:00:aa:00:77' : undefined),
    });
    const ack = packet(DHCPACK, { bootfileName: 'undionly.kpxe' }, { op: 2, yiaddr: '10.0.0.100' });
    activity.record(
      MAC,
      dhcpStep(packet(3, { vendorClassId: 'PXEClient:Arch:00000' }), {
        reply: { packet: ack, to: { address: '10.0.0.100', port: 68, why: 'test' } },
        note: 'ack',
      }),
    );
    activity.recordByIp('10.0.0.100', {
      kind: 'tftp',
      file: 'undionly.kpxe',
      ok: true,
      bytes: 70_000,
      ms: 90,
    });
    activity.recordByIp('::ffff:10.0.0.100', {
      kind: 'http',
      path: '/boot/node/vmlinuz',
      status: 404,
      bytes: 58,
      ms: 1,
      aborted: false,
    });
    // Not in the DHCP map: the leases decide; unknown to both: not recorded, only counted.
    activity.recordByIp('10.0.0.77', { kind: 'tftp', file: 'ipxe.efi', ok: true, bytes: 1, ms: 1 });
    activity.recordByIp('10.0.0.99', { kind: 'tftp', file: 'ipxe.efi', ok: true, bytes: 1, ms: 1 });
    assert.equal(activity.unattributed, 1);
    // proxyDHCP: the boot server request (port 4011) carries the client's address in ciaddr.
    const proxyReq = packet(3, { vendorClassId: 'PXEClient:Arch:00007' }, { ciaddr: '192.168.1.50' });
    activity.record('52:54:00:aa:00:03', dhcpStep(proxyReq, { reply: null, note: 'x' }));
    activity.recordByIp('192.168.1.50', { kind: 'tftp', file: 'ipxe.efi', ok: true, bytes: 1, ms: 1 });
    assert.deepEqual(
      t.repos.bootActivity.forMac('52:54:00:aa:00:03').map((e) => e.kind),
      ['dhcp', 'tftp'],
    );
    // An OS's DHCP client that is neither a boot ROM nor followed is no boot attempt.
    activity.record(
      '52:54:00:aa:00:02',
      dhcpStep(packet(DHCPDISCOVER, { vendorClassId: 'udhcp 1.36.1' }), { reply: null, note: 'x' }),
    );
    // A followed MAC's later non-PXE DHCP (the agent's udhcpc) is recorded.
    activity.record(
      MAC,
      dhcpStep(packet(DHCPDISCOVER, { vendorClassId: 'udhcp 1.36.1' }), { reply: null, note: 'ignored' }),
    );
    // Installer progress: one step per phase, not per report.
    for (const phase of ['download', 'download', 'download', 'write']) {
      activity.record(MAC, { kind: 'deploy', event: 'progress', phase });
    }
    const steps = t.repos.bootActivity.forMac(MAC);
    assert.equal(steps[3]?.summary, 'DHCPDISCOVER, no reply (OS client udhcp 1.36.1): ignored');
    assert.deepEqual(
      steps.map((s) => [s.kind, s.failed]),
      [
        ['dhcp', false],
        ['tftp', false],
        ['http', true],
        ['dhcp', false],
        ['deploy', false],
        ['deploy', false],
      ],
    );
    assert.equal(steps[0]?.at, '2026-12-06T10:00:01.000Z');
    assert.equal(steps[2]?.detail['path'], '/boot/node/vmlinuz');
    assert.equal(t.repos.bootActivity.forMac('52:54:00:aa:00:77').length, 1);
    assert.equal(t.repos.bootActivity.forMac('52:54:00:aa:00:02').length, 0);
  } finally {
    t.cleanup();
  }
});

test('BootActivity: a script asked again right after the kernel (no DHCP between) marks the kernel unusable', () => {
  const t = tempRepos();
  try {
    const activity = new BootActivity({ store: t.repos.bootActivity, logger: silentLogger() });
    const script: BootStep = { kind: 'script', template: 'ipxe/discover.hbs', ip: '10.0.0.5' };
    const get = (path: string): BootStep => ({
      kind: 'http',
      path,
      status: 200,
      bytes: 9,
      ms: 1,
      aborted: false,
    });
    const dhcp = dhcpStep(packet(DHCPDISCOVER, { userClass: ['iPXE'] }), { reply: null, note: 'x' });
    activity.record(MAC, script);
    activity.record(MAC, get('/boot/node/vmlinuz'));
    activity.record(MAC, script); // iPXE's `kernel` failed: `goto failed`, sleep, chain the script
    activity.record(MAC, get('/boot/node/vmlinuz'));
    activity.record(MAC, get('/boot/node/initrd.img'));
    activity.record(MAC, dhcp); // Linux started: its DHCP, then a later boot
    activity.record(MAC, script);
    // The agent's enlist polls while it waits: one step.
    for (let i = 0; i < 5; i++)
      activity.record(MAC, { kind: 'enlist', name: 'node-1', created: i === 0, ip: '10.0.0.5' });
    const steps = t.repos.bootActivity.forMac(MAC);
    assert.deepEqual(
      steps.map((s) => s.failed),
      [false, false, true, false, false, false, false, false],
    );
    assert.equal(steps.at(-1)?.summary, 'agent enlisted as node-1 (new node) from 10.0.0.5');
    assert.match(steps[2]?.summary ?? '', /again right after the kernel download/);
    assert.match(steps[2]?.hint ?? '', /could not load it/);
  } finally {
    t.cleanup();
  }
});

test('store: bounded per MAC and in MACs tracked; the oldest go first', () => {
  const t = tempRepos();
  try {
    const store = new BootActivityStore(t.repos.store, { perMac: 5, maxMacs: 3, batch: 4 });
    const add = (mac: string, n: number): void =>
      store.add({
        mac,
        at: `2026-12-06T10:00:${String(n).padStart(2, '0')}Z`,
        kind: 'tftp',
        summary: `step ${n}`,
        failed: false,
        hint: null,
        detail: { n },
      });
    for (let n = 0; n < 12; n++) add('52:54:00:00:00:01', n);
    store.flush();
    assert.deepEqual(
      store.forMac('52:54:00:00:00:01').map((e) => e.summary),
      ['step 7', 'step 8', 'step 9', 'step 10', 'step 11'],
    );
    add('52:54:00:00:00:02', 20);
    add('52:54:00:00:00:03', 21);
    add('52:54:00:00:00:01', 22); // 01 active again: 02 is now the least recently active
    add('52:54:00:00:00:04', 23);
    const macs = store.machines().map((m) => m.mac);
    assert.deepEqual(macs, ['52:54:00:00:00:04', '52:54:00:00:00:01', '52:54:00:00:00:03']);
    assert.equal(store.forMac('52:54:00:00:00:02').length, 0, 'evicted with its steps');
    const file = new Database(t.path, { readonly: true });
    const rows = file.prepare('SELECT COUNT(*) AS n FROM boot_activity').get() as { n: number };
    file.close();
    assert.equal(rows.n, 5 + 1 + 1);
    assert.equal(store.machines()[1]?.entries, 5);
  } finally {
    t.cleanup();
  }
});

test('machines and bootTimeline: a failure stands until a later step of its kind succeeds', () => {
  const t = tempRepos();
  try {
    const activity = new BootActivity({ store: t.repos.bootActivity, logger: silentLogger() });
    const fetch = (status: number): BootStep => ({
      kind: 'http',
      path: '/boot/node/vmlinuz',
      status,
      bytes: 1,
      ms: 1,
      aborted: false,
    });
    activity.record(MAC, { kind: 'script', template: 'ipxe/discover.hbs', ip: '10.0.0.5' });
    activity.record(MAC, fetch(404));
    activity.record(MAC, { kind: 'script', template: 'ipxe/discover.hbs', ip: '10.0.0.5' });
    let [m] = t.repos.bootActivity.machines({ unenlisted: true });
    assert.match(m?.failure?.hint ?? '', /^kernel missing/);
    let view = bootTimeline(t.repos.bootActivity.forMac(MAC));
    assert.equal(view.rows[0]?.kind, 'script', 'newest first');
    assert.equal(view.failure?.summary, m?.failure?.summary);
    activity.record(MAC, fetch(200));
    [m] = t.repos.bootActivity.machines();
    assert.equal(m?.failure, null);
    view = bootTimeline(t.repos.bootActivity.forMac(MAC));
    assert.equal(view.failure, null);
    assert.equal(view.rows.filter((r) => r.failed).length, 1, 'the old failure stays marked in the list');
    // An enlisted MAC leaves the "not enlisted" list.
    t.repos.store.write((j) =>
      t.repos.nodes.insertIn(j, { mac: MAC, name: 'node-1', seqNo: 1, state: 'discovered' }),
    );
    assert.equal(t.repos.bootActivity.machines({ unenlisted: true }).length, 0);
    assert.deepEqual(t.repos.bootActivity.machines()[0]?.node, { name: 'node-1', state: 'discovered' });
  } finally {
    t.cleanup();
  }
});

test('BootActivity: a database that refuses writes never reaches the DHCP handler; memory stays bounded', () => {
  const t = tempRepos();
  try {
    const store = new BootActivityStore(t.repos.store, { batch: 8 });
    const activity = new BootActivity({ store, logger: silentLogger() });
    const saboteur = new Database(t.path);
    saboteur.exec('DROP TABLE boot_activity'); // every later write fails
    saboteur.close();
    const step: BootStep = { kind: 'script', template: 'ipxe/discover.hbs', ip: '10.0.0.5' };
    for (let i = 0; i < 12_000; i++) activity.record(MAC, step);
    activity.flush();
    assert.ok(store.droppedCount > 0, 'the oldest unwritten steps were dropped');
    assert.throws(() => store.flush(), /no such table/);
  } finally {
    t.cleanup();
  }
});

test("BootActivity: a firmware's DHCPv6 boot request names its boot option; iPXE's own DHCP does not change it", () => {
  const t = tempRepos();
  try {
    const activity = new BootActivity({ store: t.repos.bootActivity, logger: silentLogger() });
    const v6 = (vendorClass: string, userClass: string | null): BootStep => ({
      kind: 'dhcp',
      message: 'SOLICIT',
      reply: 'ADVERTISE',
      pxe: true,
      arch: 7,
      vendorClass,
      userClass,
      bootFile: 'tftp://[fd00:5a::1]/snponly.efi',
      ip: 'fd00:5a::101',
      clientIp: null,
      note: '',
      problem: null,
    });
    assert.equal(activity.firmwarePath(MAC), undefined);
    activity.record(MAC, v6('PXEClient:Arch:00007:UNDI:003016', null));
    assert.equal(activity.firmwarePath(MAC), 'PXEClient over IPv6');
    activity.record(MAC, v6('PXEClient:Arch:00007:UNDI:003010', 'iPXE'));
    assert.equal(activity.firmwarePath(MAC), 'PXEClient over IPv6', "iPXE's DHCPv6 after the firmware's");
    activity.record(MAC.toUpperCase(), v6('HTTPClient:Arch:00016:UNDI:003016', null));
    assert.equal(activity.firmwarePath(MAC), 'HTTPClient over IPv6');
    activity.flush();
    // Recorded in the node's timeline too, like DHCPv4's steps.
    assert.equal(t.repos.bootActivity.forMac(MAC).filter((e) => e.kind === 'dhcp').length, 3);
  } finally {
    t.cleanup();
  }
});
