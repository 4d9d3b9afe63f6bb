/**
 * HAProxy under HA binds the VIP before this master holds it: with `transparent` (lb.nonLocalBind) the
 * real HAProxy starts and listens on an address not configured in its namespace; without, it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHaproxyConfig } from '../../master/lb/render.js';
import { ServiceSpecSchema } from '../../master/lb/service-spec.js';
import { TestNet, waitFor } from '../helpers/netns.js';
import { requirePeers, requireRoot } from '../helpers/peers.js';

const web = ServiceSpecSchema.parse({
  name: 'web',
  port: 8080,
  role: 'app',
  backendPort: 8000,
  check: { type: 'http', path: '/healthz', expectStatus: 204 },
  intervalMs: 500,
  rise: 2,
  fall: 2,
});

test('HAProxy listens on the VIP it does not hold only with transparent', async () => {
  requireRoot();
  requirePeers('haproxy', 'ip');
  // The real HAProxy, in a namespace of this test where 10.99.0.50 is not configured: with `transparent`
  // it starts and listens; without, it refuses ("Cannot assign requested address").
  const dir = mkdtempSync(join(tmpdir(), 'corral-lb-vip-'));
  const net = new TestNet('lbvip');
  try {
    const host = net.addHost('m', '10.99.0.2/24');
    const file = join(dir, 'haproxy.cfg');
    const paths = { adminSocket: join(dir, 'admin.sock'), serverStateFile: join(dir, 'state') };
    writeFileSync(
      file,
      renderHaproxyConfig({
        bind: '10.99.0.50',
        nonLocalBind: false,
        paths,
        services: [{ spec: web, servers: [] }],
      }),
    );
    assert.throws(() => net.nsExec(host.ns, ['haproxy', '-f', file]), /Cannot assign requested address/);
    writeFileSync(
      file,
      renderHaproxyConfig({
        bind: '10.99.0.50',
        nonLocalBind: true,
        paths,
        services: [{ spec: web, servers: [] }],
      }),
    );
    net.spawnIn(host.ns, ['haproxy', '-db', '-f', file]);
    await waitFor(
      'HAProxy listening on the VIP it does not hold',
      () => (/10\.99\.0\.50:8080\b/.test(net.nsExec(host.ns, ['ss', '-Hltn'])) ? true : undefined),
      5000,
    );
  } finally {
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
