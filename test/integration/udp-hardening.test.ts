/**
 * Issue 14, findings 1 and 5, against a real `corral master` in network namespaces:
 *
 * 1. Datagrams from source port 0 (legal on the wire; only a raw socket can send them) to TFTP (WRQ,
 *    ACK, RRQ) and to DHCP (67 and the proxyDHCP port 4011) must not stop the master: DHCP (udhcpc or
 *    proxyDHCP probes), TFTP (tftp-hpa) and HTTP still answer afterwards, and the drops are counted.
 * 5. One address flooding TFTP read requests with timeout=255 must not starve other nodes: a real
 *    tftp-hpa client at another address gets its file promptly, and the flood's slots free quickly.
 *
 * Needs root, iproute2, udhcpc, tftp-hpa, curl and python3 (for the raw sender).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePacket as encodeTftp } from '../../master/tftp/codec.js';
import { sendRawUdp } from '../helpers/raw-udp.js';
import { runIn } from '../helpers/dhcp-harness.js';
import { waitFor } from '../helpers/netns.js';
import { pxeBootRequest, pxeDiscover, startHostileLab, type HostileLab } from '../helpers/hostile-lab.js';

const labs: HostileLab[] = [];
after(async () => {
  for (const lab of labs.splice(0)) await lab.close();
});

const rrq = (filename: string, options: Record<string, string> = {}): Buffer =>
  encodeTftp({ op: 'RRQ', filename, mode: 'octet', options: new Map(Object.entries(options)) });
const wrq = (filename: string): Buffer =>
  encodeTftp({ op: 'WRQ', filename, mode: 'octet', options: new Map() });
const ack = (block: number): Buffer => encodeTftp({ op: 'ACK', block });

describe('source port 0 cannot stop the master (issue 14, finding 1)', { timeout: 240_000 }, () => {
  test('DHCP server mode: port-0 datagrams to TFTP 69 and DHCP 67; everything still answers', async () => {
    const lab = await startHostileLab({ mode: 'server' });
    labs.push(lab);
    const before = await lab.serving();
    console.log(`# before: ${before.dhcp}; tftp ${before.tftpMs} ms; http ok`);
    const to = lab.master.address;
    const src = lab.attacker.address;
    const sent = {
      tftpWrq: await sendRawUdp(lab.net, lab.attacker.ns, {
        src,
        dst: to,
        sport: 0,
        dport: 69,
        payloads: [wrq('x')],
      }),
      tftpAck: await sendRawUdp(lab.net, lab.attacker.ns, {
        src,
        dst: to,
        sport: 0,
        dport: 69,
        payloads: [ack(1)],
      }),
      tftpRrq: await sendRawUdp(lab.net, lab.attacker.ns, {
        src,
        dst: to,
        sport: 0,
        dport: 69,
        payloads: [rrq('undionly.kpxe'), rrq('undionly.kpxe', { timeout: '255', blksize: '1468' })],
      }),
      dhcp: await sendRawUdp(lab.net, lab.attacker.ns, {
        src,
        dst: to,
        sport: 0,
        dport: 67,
        payloads: [pxeDiscover('52:54:00:14:00:66'), pxeBootRequest('52:54:00:14:00:66', src)],
      }),
    };
    console.log(`# sent (raw IPv4, by python3): ${JSON.stringify(sent)}`);
    await new Promise((r) => setTimeout(r, 1000));
    const afterwards = await lab.serving();
    console.log(`# after: ${afterwards.dhcp}; tftp ${afterwards.tftpMs} ms; http ok`);
    const subsystems = afterwards.http.subsystems;
    assert.ok(subsystems, 'health reports subsystems');
    console.log(`# health subsystems: ${JSON.stringify(subsystems)}`);
    assert.equal(subsystems['tftp']?.dropped, 4, 'every port-0 datagram to TFTP was counted');
    assert.equal(subsystems['dhcp']?.dropped, 2, 'every port-0 datagram to DHCP was counted');
    assert.equal(subsystems['tftp']?.faults, 0, 'dropped before any code could fault');
    assert.match(lab.proc.logs(), /datagram from an impossible source dropped/);
  });

  test('proxyDHCP mode: port-0 datagrams to 4011 and 67; everything still answers', async () => {
    const lab = await startHostileLab({ mode: 'proxy' });
    labs.push(lab);
    const before = await lab.serving();
    console.log(`# before: ${before.dhcp}; tftp ${before.tftpMs} ms; http ok`);
    const src = lab.attacker.address;
    const to = lab.master.address;
    const n4011 = await sendRawUdp(lab.net, lab.attacker.ns, {
      src,
      dst: to,
      sport: 0,
      dport: 4011,
      payloads: [pxeBootRequest('52:54:00:14:00:67', src), pxeBootRequest('52:54:00:14:00:68', src)],
    });
    const n67 = await sendRawUdp(lab.net, lab.attacker.ns, {
      src,
      dst: to,
      sport: 0,
      dport: 67,
      payloads: [pxeDiscover('52:54:00:14:00:67')],
    });
    console.log(`# sent: ${n4011} to 4011 and ${n67} to 67 from port 0`);
    await new Promise((r) => setTimeout(r, 1000));
    const afterwards = await lab.serving();
    console.log(`# after: ${afterwards.dhcp}; tftp ${afterwards.tftpMs} ms; http ok`);
    assert.equal(afterwards.http.subsystems?.['dhcp']?.dropped, 3);
  });
});

const FLOOD = fileURLToPath(new URL('../helpers/tftp-flood.js', import.meta.url));

describe('TFTP starvation (issue 14, finding 5)', { timeout: 180_000 }, () => {
  test('256 RRQs with timeout=255 from one address: another node still gets its file, and the slots free in seconds', async () => {
    const lab = await startHostileLab({ mode: 'server' });
    labs.push(lab);
    await lab.serving();
    const t0 = Date.now();
    const flood = await runIn(
      lab.net,
      lab.attacker.ns,
      [process.execPath, FLOOD, '--to', lab.master.address, '--count', '256', '--wait-ms', '1500'],
      30_000,
    );
    assert.equal(flood.code, 0, flood.stderr);
    const replies = JSON.parse(flood.stdout) as Record<string, number>;
    console.log(`# flood from ${lab.attacker.address}: ${JSON.stringify(replies)}`);
    const held = await lab.health();
    const tftpAfterFlood = held.tftp === false ? undefined : held.tftp;
    console.log(`# tftp during the flood: ${JSON.stringify(tftpAfterFlood)}`);
    assert.equal(replies['oack'], 4, 'the flood holds tftp.maxPerClient (4) transfers');
    assert.equal(replies['busy'], 252, 'the rest is refused with "Server busy"');

    // A real node at another address, while the flood's four transfers are still waiting for ACKs.
    const got = await lab.tftpGet(lab.peer, 'undionly.kpxe', 15_000);
    assert.equal(got.code, 0, `tftp-hpa at ${lab.peer.address} during the flood: ${got.out}`);
    console.log(`# tftp-hpa at ${lab.peer.address} fetched undionly.kpxe in ${got.ms} ms during the flood`);
    assert.ok(got.ms < 5000, `took ${got.ms} ms`);
    // And atftp (with a blksize option), from the same other address.
    const t1 = Date.now();
    const at = await runIn(
      lab.net,
      lab.peer.ns,
      [
        'atftp',
        '--get',
        '-r',
        'undionly.kpxe',
        '-l',
        join(lab.dir, 'atftp.out'),
        '--option',
        'blksize 1428',
        lab.master.address,
      ],
      15_000,
    );
    assert.equal(at.code, 0, `atftp during the flood: ${at.stdout}${at.stderr}`);
    assert.equal(
      statSync(join(lab.dir, 'atftp.out')).size,
      statSync(join(lab.dir, 'data', 'tftp', 'undionly.kpxe')).size,
    );
    console.log(
      `# atftp at ${lab.peer.address} fetched undionly.kpxe in ${Date.now() - t1} ms during the flood`,
    );

    // The unanswered transfers end at the first-ACK deadline: 6 x min(255 s, 3 s) = 18 s, not 25 min.
    const freed = await waitFor(
      'the flood transfers to end',
      async () => {
        const h = await lab.health();
        return h.tftp !== false && h.tftp?.active === 0 ? Date.now() - t0 : undefined;
      },
      40_000,
      1000,
    );
    console.log(`# all flood transfers ended ${freed} ms after the flood began`);
    assert.ok(freed >= 17_000, `ended after ${freed} ms: before the first-ACK deadline?`);
    const end = await lab.health();
    assert.equal(end.tftp !== false && end.tftp?.failed, 4);
  });
});
