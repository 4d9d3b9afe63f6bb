/**
 * The DNS service with the real knot on loopback, in-process (no namespaces): the SOA serial keeps
 * growing across a restart of the service even when the clock says otherwise (it comes from the
 * installed zone file, master/dns/zone-file.ts), and a node added to the inventory is served after one
 * sync, answered to the real `dig`.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsConfigSchema } from '../../master/dns/config.js';
import { DnsService } from '../../master/dns/dns-service.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { silentLogger } from '../../master/util/logger.js';
import { freePort } from '../helpers/ports.js';
import { requirePeers } from '../helpers/peers.js';
import { nodeRecord } from '../helpers/node-record.js';

const dir = mkdtempSync(join(tmpdir(), 'corral-dns-knot-'));

function node(name: string, ip: string): NodeRecord {
  return nodeRecord({
    mac: `52:54:00:77:00:${ip.split('.')[3]!.padStart(2, '0')}`,
    name,
    ip,
    state: 'deployed',
  });
}

describe('DNS service with knot on loopback', { timeout: 60_000 }, () => {
  const services: DnsService[] = [];
  after(async () => {
    for (const s of services) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves an added node after one sync, and the serial grows across a restart against the clock', async () => {
    requirePeers('knotd', 'knotc', 'dig');
    const port = await freePort();
    const nodes: NodeRecord[] = [node('app-1', '10.0.0.11')];
    // A clock stuck in 1970 (1000 s): only the installed zone's serial can make the next one larger.
    const make = (): DnsService => {
      const s = new DnsService({
        config: {
          dns: DnsConfigSchema.parse({
            enabled: true,
            listen: ['127.0.0.1'],
            port,
            pollMs: 60_000,
            minReloadMs: 0,
          }),
          address: '127.0.0.1',
          dataDir: dir,
          ha: { enabled: false },
          dhcp6: { enabled: false },
        },
        nodes: { list: () => nodes },
        services: () => [],
        logger: silentLogger(),
        now: () => 1_000_000,
      });
      services.push(s);
      return s;
    };
    const dig = (type: string, name: string): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile(
          'dig',
          ['+short', '+time=1', '+tries=2', '-p', String(port), '@127.0.0.1', type, name],
          { timeout: 5_000 },
          (err, out) => (err ? reject(err) : resolve(out.trim())),
        ),
      );
    const serial = async (): Promise<number> => Number((await dig('SOA', 'cluster.')).split(' ')[2]);

    const first = make();
    await first.start();
    assert.equal(first.status().lastError, null);
    assert.equal(await serial(), 1000, 'a fresh zone starts at the clock');
    assert.equal(await dig('A', 'app-1.cluster.'), '10.0.0.11');

    nodes.push(node('app-2', '10.0.0.12'));
    await first.sync();
    assert.equal(await dig('A', 'app-2.cluster.'), '10.0.0.12');
    assert.equal(await serial(), 1001);
    await first.close();

    nodes.push(node('app-3', '10.0.0.13'));
    const second = make();
    await second.start();
    assert.equal(await serial(), 1002, 'past the installed zone, though the clock did not move');
    assert.equal(await dig('A', 'app-3.cluster.'), '10.0.0.13');
    assert.equal(second.status().knot.reloads, 0, 'the first zone of a start is loaded by knotd itself');
  });
});
