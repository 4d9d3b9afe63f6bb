/**
 * DHCPv6 against real peers in namespaces this test creates: ISC dhclient -6 (address and option 59 in
 * its lease file), Kea's perfdhcp -6, the Linux kernel as the consumer of radvd's router advertisements,
 * and hostile datagrams (truncated, overrunning, deeply relayed, source port 0) that must be dropped and
 * counted while the server keeps answering.
 */
import { requireRoot } from '../helpers/peers.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  TestNet,
  addIpv6,
  linkLocalReady,
  startDhcp6Serve,
  waitFor,
  type Dhcp6Serve,
  type Host,
} from '../helpers/netns.js';

const PREFIX = 'fd00:56::';
const SERVER = `${PREFIX}1`;

/** Sends datagrams to [SERVER]:547 from inside `ns`, optionally from source port 0 (raw socket, python3). */
const SENDER = String.raw`
import socket, struct, sys
dst, sport = sys.argv[1], int(sys.argv[2])
for line in sys.stdin:
    payload = bytes.fromhex(line.strip())
    if sport == 0:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
        # IPV6_CHECKSUM (7): the kernel fills the UDP checksum at offset 6 (RFC 8200 section 8.1).
        s.setsockopt(41, 7, 6)
        s.sendto(struct.pack('!HHHH', 0, 547, 8 + len(payload), 0) + payload, (dst, 0))
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.sendto(payload, (dst, 547))
print('SENT')
`;

describe('dhcp6: real clients in network namespaces', { timeout: 180_000 }, () => {
  if (process.getuid?.() !== 0) {
    it('needs root for network namespaces', () => requireRoot());
    return;
  }
  let net: TestNet;
  let srv: Host;
  let dir: string;
  let server: Dhcp6Serve;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-dhcp6-'));
    net = new TestNet('d6');
    srv = net.addHost('srv', null);
    await addIpv6(net, srv, `${SERVER}/64`);
    server = await startDhcp6Serve(net, srv.ns, [
      '--data-dir',
      dir,
      '--iface',
      srv.ifname,
      '--address',
      SERVER,
      '--prefix',
      `${PREFIX}/64`,
      '--range',
      `${PREFIX}100-${PREFIX}4ff`,
    ]);
  });

  /** perfdhcp exits 3 when a packet was dropped (a loose matter here), 0 when none; anything else fails. */
  const perfdhcp = (host: Host, args: string[]): string => {
    const r = spawnSync('ip', ['netns', 'exec', host.ns, 'perfdhcp', '-6', '-l', host.ifname, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.ok(r.status === 0 || r.status === 3, `perfdhcp exited ${r.status}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  after(async () => {
    await net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('radvd advertises the prefix: the client kernel installs it as an on-link route with a lifetime', async () => {
    const c = net.addHost('ra', null, '52:54:00:56:00:09');
    await linkLocalReady(net, c.ns, c.ifname);
    // A fresh link sends Router Solicitations; radvd answers them.
    const route = await waitFor(
      'RA-learnt prefix route',
      () => {
        const out = net.nsExec(c.ns, ['ip', '-6', 'route', 'show', 'dev', c.ifname]);
        // An RA-learnt on-link prefix is a route with an expiry (the RA's valid lifetime).
        return /fd00:56::\/64 .*expires/.test(out) ? out : undefined;
      },
      30_000,
    );
    assert.match(route, /fd00:56::\/64 .*expires/);
    // AdvAutonomous off: no SLAAC address appears, the address must come from DHCPv6.
    assert.doesNotMatch(
      net.nsExec(c.ns, ['ip', '-6', 'addr', 'show', 'dev', c.ifname, 'scope', 'global']),
      /fd00:56/,
    );
  });

  it('dhclient -6 gets an address from the range and option 59 (boot file URL) by its architecture', async () => {
    const c = net.addHost('c1', null, '52:54:00:56:00:01');
    await linkLocalReady(net, c.ns, c.ifname);
    const conf = join(dir, 'dhclient6.conf');
    const leaseFile = join(dir, 'dhclient6.leases');
    writeFileSync(conf, 'send dhcp6.client-arch-type 7;\nalso request dhcp6.bootfile-url;\n');
    const client = net.spawnIn(c.ns, [
      'dhclient',
      '-6',
      '-d',
      '-1',
      '-v',
      '-cf',
      conf,
      '-lf',
      leaseFile,
      '-pf',
      join(dir, 'dhclient6.pid'),
      // No script: dhclient-script would write the host's /etc/resolv.conf.
      '-sf',
      '/bin/true',
      c.ifname,
    ]);
    let log = '';
    client.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    const lease = await waitFor(
      'dhclient -6 lease',
      () => {
        if (!existsSync(leaseFile)) return undefined;
        const text = readFileSync(leaseFile, 'utf8');
        return text.includes('iaaddr') && text.includes('bootfile-url') ? text : undefined;
      },
      40_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${log.slice(-1500)}`);
    });
    client.kill('SIGTERM');
    const addr = /iaaddr (fd00:56::[0-9a-f]+)/.exec(lease)?.[1];
    assert.ok(addr, lease);
    const n = parseInt(addr.split('::')[1] ?? '', 16);
    assert.ok(n >= 0x100 && n <= 0x4ff, `${addr} is outside the range`);
    assert.match(lease, /option dhcp6.bootfile-url "tftp:\/\/\[fd00:56::1\]\/snponly.efi"/);
  });

  it('perfdhcp -6 completes SOLICIT/ADVERTISE and REQUEST/REPLY exchanges', async () => {
    const p = net.addHost('perf', null, '52:54:00:56:00:02');
    await linkLocalReady(net, p.ns, p.ifname);
    const out = perfdhcp(p, ['-r', '50', '-R', '200', '-n', '100', '-p', '20']);
    const sa = out.split('***Statistics for: SOLICIT-ADVERTISE***')[1] ?? '';
    const rr = out.split('***Statistics for: REQUEST-REPLY***')[1] ?? '';
    const num = (text: string, label: string): number =>
      Number(new RegExp(`${label}: (\\d+)`).exec(text)?.[1] ?? NaN);
    assert.ok(num(sa, 'received packets') > 0, out);
    assert.ok(num(rr, 'received packets') > 0, out);
    // Loose: a drop or two under a shared 2-core machine is not a failure of the server.
    assert.ok(num(rr, 'drops') <= num(rr, 'sent packets') * 0.05, out);
  });

  it('hostile datagrams are dropped and counted; the server keeps answering', async () => {
    const h = net.addHost('bad', null);
    net.nsExec(h.ns, ['ip', '-6', 'addr', 'add', `${PREFIX}9/64`, 'dev', h.ifname, 'nodad']).toString();
    await linkLocalReady(net, h.ns, h.ifname);
    let deep = Buffer.from('01abcdef', 'hex');
    for (let i = 0; i < 12; i++) {
      const head = Buffer.alloc(34);
      head[0] = 12;
      const opt = Buffer.alloc(4);
      opt.writeUInt16BE(9, 0);
      opt.writeUInt16BE(deep.length, 2);
      deep = Buffer.concat([head, opt, deep]);
    }
    const hostile = [
      '01', // shorter than the 4-byte header
      '01abcdef0001', // truncated option header
      '01abcdef00010020aabb', // option length overruns the datagram
      '0c00' + '00'.repeat(10), // relay shorter than 34 bytes
      deep.toString('hex'), // 12 nested RELAY-FORW
    ];
    const send = (sport: number, payloads: string[]): string =>
      net.nsExec(h.ns, ['python3', '-c', SENDER, SERVER, String(sport)], payloads.join('\n') + '\n');
    assert.match(send(40000, hostile), /SENT/);
    // A well-formed SOLICIT from source port 0: no reply is possible, it must be dropped unread.
    assert.match(
      send(0, ['01abcdef000100040003000100030001525400560003' + '0003000c000000010000000000000000']),
      /SENT/,
    );
    await new Promise((r) => setTimeout(r, 500));
    // Still serving: a real client gets a lease after the flood.
    const out = perfdhcp(h, ['-r', '10', '-n', '5', '-p', '10']);
    assert.match(out.split('***Statistics for: REQUEST-REPLY***')[1] ?? '', /received packets: [1-9]/);
    server.child.kill('SIGTERM');
    const stats = await waitFor(
      'STATS',
      () => {
        const m = /STATS (\{.*\})/.exec(server.out());
        return m?.[1] ? (JSON.parse(m[1]) as Record<string, number>) : undefined;
      },
      10_000,
    );
    assert.equal(stats['malformed'], hostile.length, JSON.stringify(stats));
    assert.equal(stats['droppedSource'], 1, JSON.stringify(stats));
    assert.ok((stats['bound'] ?? 0) > 0);
  });
});
