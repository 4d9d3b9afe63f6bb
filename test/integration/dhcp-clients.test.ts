/**
 * Corral's DHCP server against real clients, inside network namespaces this test creates:
 * busybox udhcpc and ISC dhclient get leases and boot options, a restart keeps leases, relayed requests
 * (a crafted giaddr, and ISC dhcrelay when installed) get the relay's pool, proxyDHCP works beside
 * dnsmasq, malformed packets are dropped and logged, and Kea's perfdhcp runs against it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, readEnv, udhcpcLease, waitFor, type Host } from '../helpers/netns.js';
import { parsePerfdhcp } from '../helpers/perfdhcp.js';
import { runIn, startServe, type ServeProcess } from '../helpers/dhcp-harness.js';
import { openStore } from '../../master/store/db.js';
import { LeaseStore } from '../../master/store/leases.js';
import { silentLogger } from '../../master/util/logger.js';
import {
  DHCPDISCOVER,
  DHCPOFFER,
  DHCPREQUEST,
  DHCPACK,
  DHCP_MIN_BYTES,
  FLAG_BROADCAST,
  PXE,
  decodePacket,
  decodePxeVendorOptions,
  emptyOptions,
  encodePacket,
  type DhcpOptions,
  type DhcpPacket,
} from '../../master/dhcp/codec.js';

const PROBE = fileURLToPath(new URL('../helpers/dhcp-probe.js', import.meta.url));

/** One udhcpc exchange on `host`: its lease variables; a failed exchange fails the test. */
async function udhcpc(
  net: TestNet,
  host: Host,
  dir: string,
  name: string,
  extra: string[],
): Promise<Record<string, string>> {
  return udhcpcLease(net, host, dir, name, extra).catch((err: Error) => assert.fail(err.message));
}

function request(
  type: number,
  mac: string,
  options: Partial<DhcpOptions>,
  fields: Partial<DhcpPacket> = {},
): DhcpPacket {
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: Math.floor(Math.random() * 0xffffffff),
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: mac,
    sname: '',
    file: '',
    ...fields,
    options: { ...emptyOptions(), messageType: type, ...options },
  };
}

interface Received {
  from: string;
  port: number;
  packet: DhcpPacket;
}

async function probe(
  net: TestNet,
  ns: string,
  args: { bind: string; to?: string; send: Buffer[]; waitMs?: number; count?: number },
): Promise<Received[]> {
  const argv = [process.execPath, PROBE, '--bind', args.bind, '--wait-ms', String(args.waitMs ?? 1500)];
  if (args.to) argv.push('--to', args.to);
  for (const b of args.send) argv.push('--send', b.toString('hex'));
  if (args.count !== undefined) argv.push('--count', String(args.count));
  const r = await runIn(net, ns, argv, (args.waitMs ?? 1500) + 10_000);
  assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
  assert.equal(r.stderr, '', `probe: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('REPLY '))
    .map((l) => {
      const j = JSON.parse(l.slice(6)) as { from: string; port: number; hex: string };
      const d = decodePacket(Buffer.from(j.hex, 'hex'));
      assert.ok(d.ok, `probe received an undecodable packet: ${d.ok ? '' : d.error.reason}`);
      return { from: j.from, port: j.port, packet: d.packet };
    });
}

describe('dhcp: real clients in network namespaces', { timeout: 120_000 }, () => {
  before(() => failIfUnmet(unmetNeeds({ root: true, commands: ['udhcpc', 'dhclient', 'dhcrelay'] })));
  let net: TestNet;
  let rackNet: TestNet | null = null;
  let dir: string;
  let srv: Host;
  let server: ServeProcess | null = null;
  const others: ServeProcess[] = [];
  const octet = 1 + Math.floor(Math.random() * 250);
  const prefix = `10.79.${octet}`;
  const rackPrefix = `10.80.${octet}`;
  const SERVER = `${prefix}.1`;
  const serverArgs = (db: string): string[] => [
    '--db',
    db,
    '--address',
    SERVER,
    '--range',
    `${prefix}.100-${prefix}.199`,
    '--subnet',
    `${prefix}.0/24`,
    '--router',
    SERVER,
    '--pool',
    `${rackPrefix}.0/24=${rackPrefix}.100-${rackPrefix}.149`,
    '--http',
    `http://${SERVER}:8080`,
  ];
  let dbPath: string;
  let firstLease = '';
  let firstClient: Host | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-dhcp-it-'));
    dbPath = join(dir, 'corral.db');
    net = new TestNet('cd');
    srv = net.addHost('srv', `${SERVER}/24`);
    server = await startServe(net, srv.ns, dir, serverArgs(dbPath));
  });

  after(async () => {
    for (const s of [server, ...others]) if (s) await s.kill();
    await net?.destroy();
    await rackNet?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('udhcpc as a BIOS PXE client gets an address, next-server and undionly.kpxe', async () => {
    const c = net.addHost('c1', null, '52:54:00:79:00:01');
    const env = await udhcpc(net, c, dir, 'c1', ['-V', 'PXEClient:Arch:00000:UNDI:002001']);
    assert.match(env['ip'] ?? '', new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.1\\d\\d$`));
    assert.equal(env['siaddr'], SERVER);
    assert.equal(env['boot_file'], 'undionly.kpxe');
    assert.equal(env['serverid'], SERVER);
    assert.equal(env['router'], SERVER);
    assert.equal(env['subnet'], '255.255.255.0');
    assert.equal(env['lease'], '3600');
    firstLease = env['ip'] ?? '';
    firstClient = c;
  });

  it('udhcpc with option 93 = 7 (x86-64 UEFI) gets ipxe.efi', async () => {
    const c = net.addHost('c2', null, '52:54:00:79:00:02');
    const env = await udhcpc(net, c, dir, 'c2', [
      '-V',
      'PXEClient:Arch:00007:UNDI:003016',
      '-x',
      '0x5d:0007',
    ]);
    assert.equal(env['boot_file'], 'ipxe.efi');
    assert.equal(env['siaddr'], SERVER);
  });

  it('udhcpc with user class "iPXE" gets the HTTP URL of its boot script', async () => {
    const mac = '52:54:00:79:00:03';
    const c = net.addHost('c3', null, mac);
    // Option 77 as iPXE sends it: the bare bytes "iPXE".
    const env = await udhcpc(net, c, dir, 'c3', [
      '-V',
      'PXEClient:Arch:00000:UNDI:002001',
      '-x',
      '0x4d:69505845',
    ]);
    assert.equal(env['boot_file'], `http://${SERVER}:8080/boot/ipxe?mac=${mac}&platform=\${platform}`);
  });

  it('udhcpc without a PXE vendor class gets an address and no boot file', async () => {
    const c = net.addHost('c4', null, '52:54:00:79:00:04');
    const env = await udhcpc(net, c, dir, 'c4', []);
    assert.ok(env['ip']);
    assert.equal(env['boot_file'], undefined);
  });

  it('ISC dhclient gets a lease in range with the PXE filename', async () => {
    const c = net.addHost('c5', null, '52:54:00:79:00:05');
    const conf = join(dir, 'dhclient.conf');
    const leaseFile = join(dir, 'dhclient.leases');
    const script = join(dir, 'dhclient-script.sh');
    writeFileSync(
      conf,
      [
        'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";',
        'send host-name "node-5";',
        'request subnet-mask, routers, domain-name-servers, host-name, tftp-server-name, bootfile-name;',
        '',
      ].join('\n'),
    );
    writeFileSync(script, `#!/bin/sh\nenv > '${join(dir, 'dhclient.env')}'\nexit 0\n`);
    chmodSync(script, 0o755);
    const child = net.spawnIn(c.ns, [
      'dhclient',
      '-1',
      '-d',
      '-v',
      '-cf',
      conf,
      '-sf',
      script,
      '-lf',
      leaseFile,
      '-pf',
      join(dir, 'dhclient.pid'),
      c.ifname,
    ]);
    let output = '';
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const lease = await waitFor(
        'dhclient lease',
        () =>
          existsSync(leaseFile) && readFileSync(leaseFile, 'utf8').includes('fixed-address')
            ? readFileSync(leaseFile, 'utf8')
            : undefined,
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
      const ip = /fixed-address ([\d.]+);/.exec(lease)?.[1] ?? '';
      const last = Number(ip.split('.')[3]);
      assert.ok(ip.startsWith(`${prefix}.`) && last >= 100 && last <= 199, `address ${ip} outside the range`);
      assert.match(lease, /filename "undionly\.kpxe";/);
      assert.match(lease, new RegExp(`option dhcp-server-identifier ${SERVER.replace(/\./g, '\\.')};`));
      assert.match(lease, /option dhcp-lease-time 3600;/);
      // The binding is in the store, with the host name dhclient sent.
      const store = openStore({ path: dbPath, logger: silentLogger() });
      try {
        const rows = new LeaseStore(store).byMac('52:54:00:79:00:05');
        assert.deepEqual(
          rows.map((r) => [r.ip, r.state, r.hostname]),
          [[ip, 'bound', 'node-5']],
        );
      } finally {
        store.close();
      }
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('malformed packets are dropped and logged once each; the next client is served', async () => {
    const p = net.addHost('prb', `${prefix}.4/24`);
    const valid = encodePacket(request(DHCPDISCOVER, '52:54:00:79:00:ee', { vendorClassId: 'PXEClient' }));
    const overrun = Buffer.from(valid);
    overrun[DHCP_MIN_BYTES + 1] = 200; // option 53 claims 200 bytes
    const bad = [
      Buffer.from(Array.from({ length: 100 }, () => Math.floor(Math.random() * 256))), // random, too short
      valid.subarray(0, 239), // truncated
      Buffer.concat([valid, Buffer.alloc(5000)]), // oversized
      overrun, // an option longer than the packet
    ];
    const before = (server?.log().match(/dropped malformed DHCP packet/g) ?? []).length;
    await probe(net, p.ns, { bind: `${prefix}.4:68`, to: `${SERVER}:67`, send: bad, waitMs: 500 });
    const c = net.addHost('c6', null, '52:54:00:79:00:06');
    const env = await udhcpc(net, c, dir, 'c6', []);
    assert.ok(env['ip'], 'the server stopped serving');
    const lines = (server?.log() ?? '')
      .split('\n')
      .filter((l) => l.includes('dropped malformed DHCP packet'));
    assert.equal(lines.length - before, bad.length, 'each bad packet is logged exactly once');
    const reasons = lines.slice(before).map((l) => (JSON.parse(l) as { reason: string }).reason);
    assert.ok(reasons.some((r) => r.startsWith('truncated: 100 bytes')));
    assert.ok(reasons.some((r) => r.startsWith('truncated: 239 bytes')));
    assert.ok(reasons.some((r) => r.startsWith('oversized')));
    assert.ok(reasons.some((r) => /option 53 .* claims 200 bytes/.test(r)));
  });

  it('perfdhcp completes four-way exchanges', async (t) => {
    const perf = net.addHost('perf', `${prefix}.5/24`);
    const r = await runIn(
      net,
      perf.ns,
      ['perfdhcp', '-4', '-r', '100', '-R', '50', '-n', '200', '-l', perf.ifname, SERVER],
      30_000,
    );
    const stats = parsePerfdhcp(r.stdout);
    t.diagnostic(`perfdhcp: ${JSON.stringify(stats)}`);
    assert.ok(stats.ackReceived !== undefined, `no perfdhcp statistics:\n${r.stdout}${r.stderr}`);
    assert.ok(
      stats.ackReceived >= 190,
      `only ${stats.ackReceived} of 200 exchanges completed (drops ${stats.ackDrops})`,
    );
    assert.equal(stats.rejected, 0);
  });

  it('after a restart (kill -9) a new client never gets a lease held by another MAC', async () => {
    assert.ok(firstLease, 'the first test leased an address');
    await server?.kill();
    server = await startServe(net, srv.ns, dir, serverArgs(dbPath));
    const c = net.addHost('c7', null, '52:54:00:79:00:07');
    const env = await udhcpc(net, c, dir, 'c7', ['-r', firstLease]);
    assert.ok(env['ip']);
    assert.notEqual(env['ip'], firstLease);
    // ... and the holder, asking again, gets its own address back.
    assert.ok(firstClient);
    const again = await udhcpc(net, firstClient, dir, 'c1-again', []);
    assert.equal(again['ip'], firstLease);
  });

  let relayHost: Host | null = null;
  it('a relayed DHCPDISCOVER (giaddr) gets the relay subnet’s pool, sent back to the relay on port 67', async () => {
    const relay = net.addHost('rly', `${prefix}.2/24`);
    relayHost = relay;
    // The rack segment: a second bridge, with the relay's downstream interface on it.
    rackNet = new TestNet('cr');
    rackNet.nsExec(rackNet.bridgeNs, [
      'ip',
      'link',
      'add',
      'down0',
      'type',
      'veth',
      'peer',
      'name',
      `dp-${rackNet.id}`,
    ]);
    rackNet.nsExec(rackNet.bridgeNs, ['ip', 'link', 'set', `dp-${rackNet.id}`, 'master', 'br0']);
    rackNet.nsExec(rackNet.bridgeNs, ['ip', 'link', 'set', `dp-${rackNet.id}`, 'up']);
    rackNet.nsExec(rackNet.bridgeNs, ['ip', 'link', 'set', 'down0', 'netns', relay.ns]);
    net.nsExec(relay.ns, ['ip', 'addr', 'add', `${rackPrefix}.1/24`, 'dev', 'down0']);
    net.nsExec(relay.ns, ['ip', 'link', 'set', 'down0', 'up']);
    net.nsExec(srv.ns, ['ip', 'route', 'add', `${rackPrefix}.0/24`, 'via', `${prefix}.2`]);

    const discover = request(
      DHCPDISCOVER,
      '52:54:00:80:00:01',
      { vendorClassId: 'PXEClient', clientArch: [0] },
      { giaddr: `${rackPrefix}.1`, hops: 1 },
    );
    const got = await probe(net, relay.ns, {
      bind: '0.0.0.0:67',
      to: `${SERVER}:67`,
      send: [encodePacket(discover)],
      count: 1,
      waitMs: 3000,
    });
    assert.equal(got.length, 1);
    const offer = got[0] as Received;
    assert.equal(offer.from, SERVER);
    assert.equal(offer.port, 67);
    assert.equal(offer.packet.options.messageType, DHCPOFFER);
    assert.equal(offer.packet.giaddr, `${rackPrefix}.1`);
    assert.match(offer.packet.yiaddr, new RegExp(`^${rackPrefix.replace(/\./g, '\\.')}\\.1[0-4]\\d$`));
    assert.equal(offer.packet.file, 'undionly.kpxe');
  });

  it('udhcpc on another subnet gets a lease through ISC dhcrelay, then renews it straight to the server', async () => {
    assert.ok(rackNet && relayHost, 'the relay segment was set up by the previous test');
    const relay = net.spawnIn(relayHost.ns, [
      'dhcrelay',
      '-4',
      '-d',
      '--no-pid',
      '-iu',
      relayHost.ifname,
      '-id',
      'down0',
      SERVER,
    ]);
    const relayGone = new Promise<void>((resolve) => relay.once('exit', () => resolve()));
    // The relay host routes between the segments, as a rack's router does, so the renewal can reach us.
    net.nsExec(relayHost.ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const c = rackNet.addHost('rc1', null, '52:54:00:80:00:02');
    // A run script that configures the lease as a real client would (the address, and a route to the
    // server through the rack's router), and records every event udhcpc reports.
    const events = join(dir, 'rc1.events');
    const out = join(dir, 'rc1.env');
    const script = join(dir, 'rc1.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'case "$1" in bound)',
        `  env > '${out}'`,
        '  ip addr add "$ip/24" dev "$interface"',
        `  ip route replace ${SERVER}/32 via ${rackPrefix}.1 dev "$interface" ;;`,
        'esac',
        // Last, so that a recorded event means the script's work is done.
        `echo "$1 $ip" >> '${events}'`,
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const client = rackNet.spawnIn(c.ns, [
      'udhcpc',
      '-f',
      '-t',
      '4',
      '-T',
      '1',
      '-i',
      c.ifname,
      '-s',
      script,
      '-V',
      'PXEClient:Arch:00007:UNDI:003016',
      '-x',
      '0x5d:0007',
    ]);
    let output = '';
    client.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const eventLines = (): string[] =>
      existsSync(events) ? readFileSync(events, 'utf8').split('\n').filter(Boolean) : [];
    try {
      await waitFor(
        'udhcpc bound through dhcrelay',
        () => eventLines().find((l) => l.startsWith('bound ')),
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
      const env = readEnv(out);
      const ip = env['ip'] ?? '';
      assert.match(ip, new RegExp(`^${rackPrefix.replace(/\./g, '\\.')}\\.1[0-4]\\d$`));
      assert.equal(env['serverid'], SERVER);
      assert.equal(env['boot_file'], 'ipxe.efi');

      // RENEWING (RFC 2131 §4.3.2): unicast from ciaddr to the server identifier, no relay involved.
      // The relay is stopped first so that only the direct request can be answered: ISC dhcrelay also
      // picks up a unicast passing through it and relays a copy, which a router's helper address usually does not.
      relay.kill('SIGTERM');
      await Promise.race([relayGone, new Promise((r) => setTimeout(r, 5000))]);
      const log = (): string => server?.log() ?? '';
      const logBefore = log().length;
      client.kill('SIGUSR1');
      await waitFor('udhcpc renew', () => eventLines().find((l) => l.startsWith('renew ')), 15_000).catch(
        (err: Error) =>
          assert.fail(
            `${err.message}\nevents: ${eventLines().join('; ')}\n${output}\n${log().slice(logBefore)}`,
          ),
      );
      assert.equal(
        eventLines()
          .filter((l) => l.startsWith('renew '))
          .at(0),
        `renew ${ip}`,
      );
      // The server saw the renewal come straight from the client and acknowledged the same address.
      const lines = log()
        .slice(logBefore)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg?: string; from?: string; mac?: string });
      const mine = lines.filter((l) => l.mac === '52:54:00:80:00:02');
      assert.ok(
        mine.some((l) => l.from === ip && l.msg?.startsWith(`DHCPACK ${ip} (renewing)`)),
        `no direct renewal ACK in the server log: ${JSON.stringify(mine)}`,
      );
      assert.ok(!mine.some((l) => l.msg?.startsWith('DHCPNAK')), `renewal NAKed: ${JSON.stringify(mine)}`);
      const store = openStore({ path: dbPath, logger: silentLogger() });
      try {
        const rows = new LeaseStore(store).byMac('52:54:00:80:00:02');
        assert.deepEqual(
          rows.map((r) => [r.ip, r.state]),
          [[ip, 'bound']],
        );
      } finally {
        store.close();
      }
    } finally {
      client.kill('SIGTERM');
      relay.kill('SIGTERM');
    }
  });

  it('proxyDHCP beside dnsmasq: dnsmasq leases the address, Corral answers PXE with boot info only', async () => {
    await server?.stop();
    server = null;
    const dns = net.addHost('dns', `${prefix}.3/24`);
    const dnsmasq = net.spawnIn(dns.ns, [
      'dnsmasq',
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      `--interface=${dns.ifname}`,
      '--bind-interfaces',
      `--dhcp-range=${prefix}.200,${prefix}.250,255.255.255.0,1h`,
      `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      '--user=root',
      '--group=root',
      '--no-ping',
      '--log-facility=-',
    ]);
    try {
      const proxy = await startServe(net, srv.ns, dir, [
        '--db',
        join(dir, 'proxy.db'),
        '--address',
        SERVER,
        '--proxy',
      ]);
      others.push(proxy);
      await new Promise((r) => setTimeout(r, 300));
      // An ordinary client: the address comes from dnsmasq; Corral stays out of it.
      const c = net.addHost('c9', null, '52:54:00:79:00:09');
      const env = await udhcpc(net, c, dir, 'c9', []);
      assert.equal(env['serverid'], `${prefix}.3`);
      assert.match(env['ip'] ?? '', new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.2\\d\\d$`));

      // A PXE client's DHCPDISCOVER: two offers, dnsmasq's with an address, Corral's with boot info only.
      const p = net.addHost('pxe', `${prefix}.6/24`);
      const uuid = Buffer.from('00' + 'ab'.repeat(16), 'hex');
      const discover = request(
        DHCPDISCOVER,
        '52:54:00:79:00:0a',
        {
          vendorClassId: 'PXEClient:Arch:00000:UNDI:002001',
          clientArch: [0],
          clientUuid: uuid,
          paramRequestList: [1, 3, 43, 60, 66, 67],
        },
        { flags: FLAG_BROADCAST },
      );
      // To the subnet's broadcast address: with no default route in the namespace, a socket bound to
      // 0.0.0.0 cannot send to 255.255.255.255; the frame on the wire is an Ethernet broadcast either way.
      const offers = await probe(net, p.ns, {
        bind: '0.0.0.0:68',
        to: `${prefix}.255:67`,
        send: [encodePacket(discover)],
        count: 2,
        waitMs: 4000,
      });
      const fromCorral = offers.find((o) => o.packet.options.serverId === SERVER);
      const fromDnsmasq = offers.find((o) => o.packet.options.serverId === `${prefix}.3`);
      assert.ok(fromCorral, `no proxy offer; got ${offers.length} replies`);
      assert.ok(fromDnsmasq, 'no dnsmasq offer');
      assert.equal(fromDnsmasq.packet.options.messageType, DHCPOFFER);
      assert.notEqual(fromDnsmasq.packet.yiaddr, '0.0.0.0');
      const pxeOffer = fromCorral.packet;
      assert.equal(pxeOffer.options.messageType, DHCPOFFER);
      assert.equal(pxeOffer.yiaddr, '0.0.0.0', 'a proxyDHCP offer carries no address');
      assert.equal(pxeOffer.siaddr, SERVER);
      assert.equal(pxeOffer.file, 'undionly.kpxe');
      assert.equal(pxeOffer.options.vendorClassId, 'PXEClient');
      assert.equal(pxeOffer.options.leaseTime, undefined);
      assert.deepStrictEqual(pxeOffer.options.clientUuid, uuid);
      assert.deepEqual(
        [
          ...(decodePxeVendorOptions(pxeOffer.options.vendorSpecific ?? Buffer.alloc(0))?.get(
            PXE.DISCOVERY_CONTROL,
          ) ?? []),
        ],
        [8],
      );

      // The client, now addressed, asks the boot server on port 4011 and gets a DHCPACK back to its port.
      const pxeRequest = request(
        DHCPREQUEST,
        '52:54:00:79:00:0a',
        { vendorClassId: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7] },
        { ciaddr: `${prefix}.6` },
      );
      const acks = await probe(net, p.ns, {
        bind: `${prefix}.6:4011`,
        to: `${SERVER}:4011`,
        send: [encodePacket(pxeRequest)],
        count: 1,
        waitMs: 3000,
      });
      assert.equal(acks.length, 1);
      assert.equal(acks[0]?.port, 4011);
      assert.equal(acks[0]?.packet.options.messageType, DHCPACK);
      assert.equal(acks[0]?.packet.yiaddr, '0.0.0.0');
      assert.equal(acks[0]?.packet.file, 'ipxe.efi');
      const stats = await proxy.stop();
      assert.equal(stats['acks'], 1);
      assert.ok((stats['offers'] ?? 0) >= 1);
    } finally {
      dnsmasq.kill('SIGTERM');
    }
  });
});
