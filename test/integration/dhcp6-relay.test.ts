/**
 * DHCPv6 through a real relay (RFC 8415 §19): ISC dhcrelay -6 -I between a client link and the server's
 * link, in namespaces this test creates. dhclient -6 on the client link must get an address from the
 * server's range through RELAY-FORW/RELAY-REPL, with the Interface-Id option echoed (dhcrelay drops a
 * RELAY-REPL whose Interface-Id it did not send when run with -I).
 */
import { requireRoot } from '../helpers/peers.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNet, linkLocalReady, startDhcp6Serve, waitFor, type Host } from '../helpers/netns.js';

describe('dhcp6: through ISC dhcrelay -6', { timeout: 120_000 }, () => {
  if (process.getuid?.() !== 0) {
    it('needs root for network namespaces', () => requireRoot());
    return;
  }
  let serverLink: TestNet;
  let clientLink: TestNet;
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-dhcp6-relay-'));
    serverLink = new TestNet('d6s');
    clientLink = new TestNet('d6c');
  });
  after(async () => {
    await clientLink?.destroy();
    await serverLink?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dhclient -6 on the relayed link gets an address from the range; the relay accepts the RELAY-REPL', async () => {
    const srv = serverLink.addHost('srv', null); // h0
    const up = serverLink.addHost('rup', null); // h1: the relay's server-side interface, moved below
    const relay: Host = clientLink.addHost('rly', null); // h0: the relay's client-side interface
    serverLink.nsExec(up.ns, ['ip', 'link', 'set', up.ifname, 'netns', relay.ns]);
    clientLink.nsExec(relay.ns, ['ip', 'link', 'set', up.ifname, 'up']);
    serverLink.nsExec(srv.ns, ['ip', '-6', 'addr', 'add', 'fd00:99::1/64', 'dev', srv.ifname, 'nodad']);
    clientLink.nsExec(relay.ns, ['ip', '-6', 'addr', 'add', 'fd00:99::2/64', 'dev', up.ifname, 'nodad']);
    clientLink.nsExec(relay.ns, ['ip', '-6', 'addr', 'add', 'fd00:58::fe/64', 'dev', relay.ifname, 'nodad']);
    await linkLocalReady(serverLink, srv.ns, srv.ifname);
    await linkLocalReady(clientLink, relay.ns, relay.ifname);
    await linkLocalReady(clientLink, relay.ns, up.ifname);

    const server = await startDhcp6Serve(serverLink, srv.ns, [
      '--data-dir',
      dir,
      '--iface',
      srv.ifname,
      '--address',
      'fd00:99::1',
      '--prefix',
      'fd00:58::/64',
      '--range',
      'fd00:58::100-fd00:58::1ff',
      '--no-ra',
      '--log-level',
      'debug',
    ]);

    const dhcrelay = clientLink.spawnIn(relay.ns, [
      'dhcrelay',
      '-6',
      '-d',
      '-I',
      '--no-pid',
      '-l',
      relay.ifname,
      '-u',
      `fd00:99::1%${up.ifname}`,
    ]);
    let relayLog = '';
    dhcrelay.stderr?.on('data', (b: Buffer) => (relayLog += b.toString()));

    const c = clientLink.addHost('c', null, '52:54:00:58:00:01');
    await linkLocalReady(clientLink, c.ns, c.ifname);
    const leaseFile = join(dir, 'relayed.leases');
    const conf = join(dir, 'relayed.conf');
    writeFileSync(conf, 'send dhcp6.client-arch-type 7;\nalso request dhcp6.bootfile-url;\n');
    const client = clientLink.spawnIn(c.ns, [
      'dhclient',
      '-6',
      '-d',
      '-1',
      '-cf',
      conf,
      '-lf',
      leaseFile,
      '-pf',
      join(dir, 'relayed.pid'),
      '-sf',
      '/bin/true',
      c.ifname,
    ]);
    const lease = await waitFor(
      'a lease through the relay',
      () => {
        const text = existsSync(leaseFile) ? readFileSync(leaseFile, 'utf8') : '';
        return text.includes('iaaddr') && text.includes('bootfile-url') ? text : undefined;
      },
      40_000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}\n--- relay:\n${relayLog.slice(-1500)}\n--- server:\n${server.err().slice(-2500)}`,
      );
    });
    client.kill('SIGTERM');
    assert.match(lease, /iaaddr fd00:58::1[0-9a-f]{2} /);
    // Option 59 survives the relay wrapping; the URL names the server's own address.
    assert.match(lease, /option dhcp6.bootfile-url "tftp:\/\/\[fd00:99::1\]\/snponly.efi"/);
    // The server saw the exchange relayed (its log names the relay's address as the sender).
    assert.match(server.err(), /"from":"fd00:99::2"[^\n]*REPLY to/);
  });
});
