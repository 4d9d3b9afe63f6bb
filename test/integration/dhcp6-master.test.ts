/**
 * The master with `dhcp6.enabled` (master.ts wiring, config slice, radvd under the supervisor), in a
 * namespace this test creates: ISC dhclient -6 acting as a UEFI HTTP boot client (option 16
 * "HTTPClient:Arch:00016…", option 61 = 16) gets an address and the master's /boot/loader URL over IPv6,
 * the lease is in the master's database, and radvd's advertisement reaches the client.
 */
import { requireRoot } from '../helpers/peers.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  TestNet,
  addIpv6,
  linkLocalReady,
  startNsMaster,
  stopNsLab,
  waitFor,
  type Host,
} from '../helpers/netns.js';
import type { MasterProcess } from '../helpers/master-process.js';

const V4 = '10.87.0.1';
const V6 = 'fd00:59::1';
const HTTP_PORT = 8087;
const TFTP_PORT = 6987;

describe('master with dhcp6.enabled', { timeout: 120_000 }, () => {
  if (process.getuid?.() !== 0) {
    it('needs root for network namespaces', () => requireRoot());
    return;
  }
  let net: TestNet;
  let dir: string;
  let master: MasterProcess | undefined;
  let c: Host;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-dhcp6-master-'));
    net = new TestNet('d6m');
  });
  after(async () => {
    await stopNsLab({ master, net, dir });
  });

  it('leases an IPv6 address with the HTTP boot URL, stores it, and advertises the prefix', async () => {
    const srv = net.addHost('srv', `${V4}/24`);
    await addIpv6(net, srv, `${V6}/64`);
    master = await startNsMaster({
      net,
      srv,
      dir,
      address: V4,
      config: {
        console: { https: false },
        nodeImage: { autoBuild: false },
        monitor: { enabled: false },
        dhcp6: { enabled: true, address: V6, prefix: 'fd00:59::/64', range: 'fd00:59::100-fd00:59::1ff' },
      },
      args: ['--http-port', String(HTTP_PORT), '--tftp-port', String(TFTP_PORT)],
      timeoutMs: 30_000,
    });
    await waitFor(
      'DHCPv6 listening',
      () => (master!.logs().includes('DHCPv6 server listening') ? true : undefined),
      20_000,
    );
    assert.match(master.logs(), /radvd running/);

    c = net.addHost('c', null, '52:54:00:59:00:01');
    await linkLocalReady(net, c.ns, c.ifname);
    const conf = join(dir, 'dhclient6.conf');
    const leaseFile = join(dir, 'dhclient6.leases');
    writeFileSync(
      conf,
      [
        // dhclient has no name for option 16 (RFC 8415 §21.16): enterprise, item length, item.
        'option dhcp6.vclass code 16 = {integer 32, integer 16, string};',
        'send dhcp6.client-arch-type 16;',
        'send dhcp6.vclass 343 33 "HTTPClient:Arch:00016:UNDI:003001";',
        'also request dhcp6.bootfile-url;',
        '',
      ].join('\n'),
    );
    const client = net.spawnIn(c.ns, [
      'dhclient',
      '-6',
      '-d',
      '-1',
      '-cf',
      conf,
      '-lf',
      leaseFile,
      '-pf',
      join(dir, 'dhclient6.pid'),
      '-sf',
      '/bin/true',
      c.ifname,
    ]);
    let clientLog = '';
    client.stderr?.on('data', (b: Buffer) => (clientLog += b.toString()));
    const lease = await waitFor(
      'dhclient -6 lease from the master',
      () => {
        const text = existsSync(leaseFile) ? readFileSync(leaseFile, 'utf8') : '';
        return text.includes('iaaddr') && text.includes('bootfile-url') ? text : undefined;
      },
      40_000,
    ).catch((e: Error) => {
      const text = existsSync(leaseFile) ? readFileSync(leaseFile, 'utf8') : '(no lease file)';
      const dhcp6Log = master!
        .logs()
        .split('\n')
        .filter((l) => l.includes('dhcp6'))
        .slice(-8)
        .join('\n');
      throw new Error(`${e.message}\n--- lease:\n${text}\n--- master dhcp6 lines:\n${dhcp6Log}`);
    });
    client.kill('SIGTERM');
    // The Secure Boot chain by default over IPv6 too (boot.uefiChain): the signed ISO for this MAC.
    assert.match(
      lease,
      new RegExp(
        `option dhcp6.bootfile-url "http://\\[${V6}\\]:${HTTP_PORT}/boot/http/52:54:00:59:00:01/corral.iso"`,
      ),
    );
    const address = /iaaddr (fd00:59::[0-9a-f]+)/.exec(lease)?.[1];
    assert.ok(address, lease);

    // The binding is a row of dhcp6_leases (migration 16), journaled for replication.
    const db = new Database(join(dir, 'data', 'corral.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT * FROM dhcp6_leases WHERE address = ?').get(address) as
        { state: string; mac: string | null } | undefined;
      assert.equal(row?.state, 'bound');
      const change = db.prepare("SELECT COUNT(*) AS n FROM changes WHERE entity = 'dhcp6_leases'").get() as {
        n: number;
      };
      assert.ok(change.n >= 1);
    } finally {
      db.close();
    }
    // radvd's advertisement installed the on-link prefix in the client.
    await waitFor(
      'RA-learnt prefix',
      () =>
        /fd00:59::\/64 .*expires/.test(net.nsExec(c.ns, ['ip', '-6', 'route', 'show', 'dev', c.ifname]))
          ? true
          : undefined,
      30_000,
    );
  });

  // Dual-stack (issue 18): with dhcp6 on and http.bind unset the master listens on 0.0.0.0 and ::, and
  // answers each request in its own family, so a node's chain never changes family half-way.
  it('dual-stack: HTTP boot scripts and TFTP over both IPv4 and IPv6, URLs in the family asked', async () => {
    net.nsExec(c.ns, ['ip', 'addr', 'add', '10.87.0.50/24', 'dev', c.ifname]);
    net.nsExec(c.ns, ['ip', '-6', 'addr', 'add', 'fd00:59::150/64', 'dev', c.ifname, 'nodad']);
    const script = (base: string): string =>
      net.nsExec(c.ns, ['curl', '-sgf', '--max-time', '10', `${base}/boot/ipxe?mac=52:54:00:59:00:01`]);
    const v4 = script(`http://${V4}:${HTTP_PORT}`);
    const v6 = script(`http://[${V6}]:${HTTP_PORT}`);
    assert.match(v4, new RegExp(`http://${V4.replace(/\./g, '\\.')}:${HTTP_PORT}/boot/`));
    assert.doesNotMatch(v4, /\[fd00|corral\.ip=/);
    assert.match(v6, new RegExp(`http://\\[${V6}\\]:${HTTP_PORT}/boot/`));
    assert.doesNotMatch(v6, new RegExp(V4.replace(/\./g, '\\.')));
    // tftp-hpa over each family from the same client: both listeners serve the boot loaders.
    for (const [flag, server] of [
      ['-4', V4],
      ['-6', V6],
    ] as const) {
      const got = join(dir, `ipxe${flag}.efi`);
      net.nsExec(c.ns, [
        'tftp',
        flag,
        '-m',
        'binary',
        server,
        String(TFTP_PORT),
        '-c',
        'get',
        'snponly.efi',
        got,
      ]);
      // What an x64 UEFI PXE client gets over IPv6 (dhcp6/uefi-loader.ts), served from both listeners.
      assert.equal(statSync(got).size, statSync('/usr/lib/ipxe/snponly.efi').size, `TFTP ${flag}`);
    }
    // Network GRUB's config for this MAC (the Secure Boot chain, boot/grub.ts), generated per request, over
    // TFTP in each family (curl's TFTP client: tftp-hpa's `get` takes the MAC's colons for HOST:FILE). This
    // master has no node environment (autoBuild off), so both say so and retry; the IPv6 URLs and corral.ip
    // of a GRUB config over IPv6 are checked with a real GRUB in e2e/pxe-ipv6.
    for (const host of [V4, `[${V6}]`]) {
      const cfg = net.nsExec(c.ns, [
        'curl',
        '-sgf',
        '--max-time',
        '10',
        `tftp://${host}:${TFTP_PORT}/grub/node/52:54:00:59:00:01/0.cfg`,
      ]);
      assert.match(cfg, /node environment is not built/, cfg);
      assert.match(cfg, /configfile \/grub\/node\/52:54:00:59:00:01\/0\.cfg/, cfg);
    }
  });
});
