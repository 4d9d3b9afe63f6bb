/**
 * Whether an API route needs a login does not depend on where it is mounted (issue 15): a real master,
 * started in-process on loopback with its features, answers every feature's routes with 401
 * AUTH_REQUIRED without credentials, and only the routes of the explicit public list
 * (`publicApiRoutes`: health; boot/surface.ts: enlist, node metrics) without a login. With the admin's credentials the
 * same routes exist (no 401, no NOT_FOUND, the API's "no such route"): each probe reaches its router.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { startMaster, type Master } from '../../master/master.js';
import { silentLogger } from '../../master/util/logger.js';

const PASSWORD = 'auth-boundary-pw';
const ADMIN = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'corral-auth-boundary-'));
let master: Master | undefined;
let base = '';

/** One route of each feature's `api` router and of the core routes after the boundary. */
const LOGIN_ROUTES: [method: string, path: string, feature: string][] = [
  ['GET', '/nodes', 'core'],
  ['GET', '/events', 'core'],
  ['GET', '/changes', 'core'],
  ['GET', '/users', 'core'],
  ['GET', '/snapshots', 'snapshots'],
  ['GET', '/exec/runs', 'remote'],
  ['GET', '/nodes/52:54:00:00:00:01/power', 'remote'],
  ['GET', '/images', 'deploy'],
  ['GET', '/nodes/52:54:00:00:00:01/deployments', 'deploy'],
  ['GET', '/boot-activity', 'boot-activity'],
  ['GET', '/sharedroots', 'sharedroot'],
  ['GET', '/services', 'lb'],
  ['GET', '/lb', 'lb'],
  ['GET', '/dns', 'dns'],
];

async function call(method: string, path: string, auth?: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json' },
    ...(method === 'POST' ? { body: '{}' } : {}),
  });
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
  return { status: res.status, ...(body.error?.code ? { code: body.error.code } : {}) };
}

before(async () => {
  const config = buildConfig(
    {
      dataDir: dir,
      http: { port: 0, bind: '127.0.0.1' },
      tftp: { enabled: false },
      nodeImage: { autoBuild: false },
      monitor: { enabled: true, nodeSshSeconds: 0 },
      console: { https: false },
    },
    { address: '127.0.0.1' },
  );
  master = await startMaster(config, { logger: silentLogger(), initialAdminPassword: PASSWORD });
  base = `http://127.0.0.1:${master.httpPort}`;
});

after(async () => {
  await master?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('API authentication boundary', () => {
  it('refuses every feature route without credentials, and serves it with them', async () => {
    for (const [method, path, feature] of LOGIN_ROUTES) {
      const anonymous = await call(method, path);
      assert.deepEqual(anonymous, { status: 401, code: 'AUTH_REQUIRED' }, `${method} ${path} (${feature})`);
      const admin = await call(method, path, ADMIN);
      // NOT_FOUND is the API's "no such route"; a route that exists may still answer NODE_NOT_FOUND.
      assert.ok(
        admin.status !== 401 && admin.code !== 'NOT_FOUND',
        `${method} ${path} (${feature}) as admin: ${admin.status} ${admin.code ?? ''}`,
      );
    }
  });

  it('answers the public list without a login, each with its own check', async () => {
    assert.equal((await call('GET', '/health')).status, 200);
    // Enlistment validates its body instead of a login: an empty one is refused as invalid, not 401.
    const enlist = await call('POST', '/enlist');
    assert.notEqual(enlist.status, 401);
    assert.equal(enlist.status, 400);
    // Node metrics check the node's recorded address: an unknown MAC is refused by that check.
    assert.deepEqual(await call('POST', '/nodes/52:54:00:00:00:01/metrics'), {
      status: 403,
      code: 'METRICS_REFUSED',
    });
  });

  it('sends a route nobody declared to the login, not to a 404 that tells what exists', async () => {
    assert.deepEqual(await call('GET', '/no-such-route'), { status: 401, code: 'AUTH_REQUIRED' });
  });
});
