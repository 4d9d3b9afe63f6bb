/**
 * The load balancer's ordering of HAProxy and the store, with a stand-in `haproxy` that refuses every
 * config at `-c` (the real HAProxy is in test/integration/lb-haproxy.test.ts): a refused apply is retried
 * on the next poll although the journal did not move, and a service HAProxy refuses to drop stays stored.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { waitFor } from '../helpers/netns.js';
import { LoadBalancer } from '../../master/lb/load-balancer.js';
import { ServiceSpecSchema } from '../../master/lb/service-spec.js';
import { silentLogger } from '../../master/util/logger.js';

const spec = (name: string, port: number) =>
  ServiceSpecSchema.parse({ name, port, role: 'app', backendPort: 8000, check: { type: 'tcp' } });

describe('load balancer: HAProxy refuses, the store stays consistent', () => {
  let r: ReturnType<typeof tempRepos>;
  let calls: string;
  let lb: LoadBalancer;

  beforeEach(() => {
    r = tempRepos();
    calls = join(r.dir, 'haproxy-calls');
    const bin = join(r.dir, 'fake-haproxy');
    // -v answers like HAProxy 2.6; -c refuses with an ALERT line, as HAProxy does for a bad config.
    writeFileSync(
      bin,
      `#!/bin/sh\necho "$*" >> '${calls}'\ncase "$1" in\n  -v) echo 'HAProxy version 2.6.12-1 2026/10/17 - https://haproxy.org/' ;;\n  -c) echo '[ALERT]    (1) : config : stand-in haproxy refuses every config' >&2; exit 1 ;;\n  *) exit 1 ;;\nesac\n`,
    );
    chmodSync(bin, 0o755);
    r.repos.store.write((j) => {
      r.repos.services.putIn(j, 'web', spec('web', 8080));
      r.repos.services.putIn(j, 'api', spec('api', 8081));
    });
    lb = new LoadBalancer({
      repos: r.repos,
      config: testConfig({ dataDir: r.dir, lb: { haproxyBin: bin, pollMs: 100 } }),
      logger: silentLogger(),
    });
  });
  afterEach(async () => {
    await lb.close();
    r.cleanup();
  });

  const checks = (): number =>
    existsSync(calls)
      ? readFileSync(calls, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('-c')).length
      : 0;

  it('retries a refused apply on the next tick, though the journal did not move', async () => {
    const seq = r.repos.store.lastChangeSeq();
    await lb.start();
    assert.match(lb.status().lastError ?? '', /stand-in haproxy refuses every config/);
    assert.equal(checks(), 1);
    await waitFor('the apply tried again', () => checks() >= 3, 3000, 50);
    assert.equal(r.repos.store.lastChangeSeq(), seq, 'nothing was written meanwhile');
    assert.match(lb.status().lastError ?? '', /stand-in haproxy refuses/);
  });

  it('a delete HAProxy refuses leaves the service stored, with no deletion event', async () => {
    await assert.rejects(lb.deleteService('web', 'tester'), { code: 'LB_CONFIG_INVALID' });
    assert.ok(checks() >= 1, 'HAProxy was asked before the store');
    assert.deepEqual(
      lb
        .services()
        .map((s) => s.name)
        .sort(),
      ['api', 'web'],
    );
    assert.equal(r.repos.events.list({ kind: 'lb.service.deleted' }).length, 0);
  });
});

describe('load balancer: a node with several instances in a members service', () => {
  it("drain applies to each of the node's servers; the others stay ready", async () => {
    const r = tempRepos();
    const lb = new LoadBalancer({
      repos: r.repos,
      config: testConfig({ dataDir: r.dir, lb: { pollMs: 100 } }),
      logger: silentLogger(),
    });
    try {
      r.repos.store.write((j) => {
        r.repos.nodes.insertIn(j, {
          mac: '52:54:00:00:00:31',
          name: 'dep-1',
          seqNo: 1,
          ip: '10.0.0.31',
          state: 'deployed',
        });
        r.repos.nodes.insertIn(j, {
          mac: '52:54:00:00:00:32',
          name: 'dep-2',
          seqNo: 2,
          ip: '10.0.0.32',
          state: 'deployed',
        });
        r.repos.services.putIn(
          j,
          'api',
          ServiceSpecSchema.parse({
            name: 'api',
            port: 8082,
            backendPort: 8000,
            members: [
              { node: 'dep-1', port: 30001 },
              { node: 'dep-1', port: 30002 },
              { node: 'dep-2', port: 30003 },
            ],
          }),
        );
      });
      const s = await lb.setServerState('api', 'dep-1', 'drain', 'tester');
      assert.equal(s.node, 'dep-1');
      assert.deepEqual(
        lb.view(lb.service('api')).servers.map((x) => `${x.name}=${x.admin}`),
        ['dep-1-p30001=drain', 'dep-1-p30002=drain', 'dep-2-p30003=ready'],
      );
      assert.deepEqual(
        lb.nodeHealth('52:54:00:00:00:31').map((h) => h.server.name),
        ['dep-1-p30001', 'dep-1-p30002'],
      );
      assert.match(r.repos.events.list({ kind: 'lb.server.admin' })[0]!.message, /^dep-1 set to drain/);
    } finally {
      await lb.close();
      r.cleanup();
    }
  });
});
