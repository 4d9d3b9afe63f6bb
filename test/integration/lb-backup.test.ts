/**
 * The load balancer on an HA backup: the real HAProxy on loopback, over a store whose write guard refuses
 * every write (NOT_PRIMARY), as a backup's does once HA has started. Backends going down and a crashed
 * HAProxy must neither abort the poll nor reject out of the restart timer (which would end the master
 * process): the events go to the log instead.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { requirePeers } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { waitFor } from '../helpers/netns.js';
import { LoadBalancer } from '../../master/lb/load-balancer.js';
import { ServiceSpecSchema } from '../../master/lb/service-spec.js';
import { CorralError } from '../../master/util/errors.js';
import { createLogger } from '../../master/util/logger.js';

const listenOn = (host: string, port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const s = createServer((c) => c.end());
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
describe('load balancer on an HA backup (real HAProxy, loopback)', { timeout: 60_000 }, () => {
  before(() => requirePeers('haproxy'));
  const r = tempRepos();
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const rejections: unknown[] = [];
  const onRejection = (err: unknown): void => void rejections.push(err);
  const backends: Server[] = [];
  let lb: LoadBalancer;

  before(async () => {
    process.on('unhandledRejection', onRejection);
    const backendPort = await freePort('127.0.0.2');
    for (const host of ['127.0.0.2', '127.0.0.3']) backends.push(await listenOn(host, backendPort));
    r.repos.store.write((j) => {
      ['127.0.0.2', '127.0.0.3'].forEach((ip, i) => {
        const mac = `52:54:00:77:00:0${i + 1}`;
        r.repos.nodes.insertIn(j, { mac, name: `b${i + 1}`, seqNo: i + 1, ip, state: 'deployed' });
        r.repos.nodes.patchIn(j, mac, { role: 'app' });
      });
    });
    const port = await freePort('127.0.0.1');
    r.repos.store.write((j) =>
      r.repos.services.putIn(
        j,
        'web',
        ServiceSpecSchema.parse({
          name: 'web',
          port,
          protocol: 'tcp',
          role: 'app',
          backendPort,
          intervalMs: 100,
          rise: 1,
          fall: 1,
        }),
      ),
    );
    // From here on this store is a backup's.
    r.repos.store.setWriteGuard(() => {
      throw new CorralError('NOT_PRIMARY', 'this master (test) is a read-only backup');
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    lb = new LoadBalancer({
      repos: r.repos,
      config: testConfig({ dataDir: r.dir, address: '127.0.0.1', lb: { pollMs: 100 } }),
      logger: createLogger({ level: 'info', destination: sink }),
    });
    await lb.start();
  });
  after(async () => {
    await lb?.close();
    for (const b of backends) b.close();
    process.off('unhandledRejection', onRejection);
    r.cleanup();
  });

  const server = (name: string) => lb.views()[0]?.servers.find((s) => s.name === name);
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);

  it('both backends come up', async () => {
    await waitFor(
      'b1 and b2 up',
      () => server('b1')?.health === 'up' && server('b2')?.health === 'up',
      10_000,
      50,
    );
  });

  it('both going down is seen for both, the poll never fails, and the events go to the log', async () => {
    for (const b of backends) b.close();
    await waitFor(
      'both down, both logged',
      () =>
        logged('server health changed').filter((l) => l['health'] === 'down').length === 2 ? true : undefined,
      10_000,
      50,
    );
    assert.equal(
      logged('load balancer sync failed').length,
      0,
      JSON.stringify(logged('load balancer sync failed')),
    );
    assert.equal(lb.status().lastError, null);
    const notRecorded = logged('event not recorded: this master is an HA backup');
    assert.deepEqual(
      notRecorded.map((l) => l['event']),
      ['lb.server.down', 'lb.server.down'],
    );
    assert.equal(r.repos.events.count(), 0);
  });

  it('a crashed HAProxy is started again without an unhandled rejection', async () => {
    const before = lb.status().haproxy;
    assert.ok(before.masterPid);
    process.kill(before.masterPid, 'SIGKILL');
    await waitFor(
      'haproxy restarted',
      () => lb.status().haproxy.restarts === before.restarts + 1,
      15_000,
      50,
    );
    // An unhandled rejection is reported after the microtask queue drains; give it a few turns.
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(rejections, []);
    await waitFor(
      'the restart event logged',
      () =>
        logged('event not recorded: this master is an HA backup').some(
          (l) => l['event'] === 'lb.haproxy.restarted',
        ),
      5000,
      50,
    );
    assert.equal(lb.status().haproxy.running, true);
  });
});
