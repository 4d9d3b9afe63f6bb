/**
 * A diskless node's identity tar over HTTP (a real listener on loopback): only with the node's own
 * credential, and only to the address the master recorded for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { apiErrorHandler } from '../../master/api/errors.js';
import { enlist } from '../../master/nodes/enlist.js';
import { identityRefusal } from '../../master/sharedroot/boot-routes.js';
import { createNodeSurface } from '../../master/boot/surface.js';
import { HostKeyPins } from '../../master/remote/host-keys.js';
import { SharedRoots } from '../../master/sharedroot/service.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos, testConfig } from '../helpers/repos.js';

function makeTree(dir: string): void {
  mkdirSync(join(dir, 'sbin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  symlinkSync('/lib/systemd/systemd', join(dir, 'sbin/init'));
  writeFileSync(join(dir, 'etc/os-release'), 'ID=test\n');
}

test('identity tar: served to the node from its own address only, refused without a recorded address', async () => {
  const t = tempRepos();
  const src = join(t.dir, 'src');
  makeTree(src);
  const config = testConfig({ dataDir: t.dir });
  const roots = new SharedRoots(t.repos, config);
  const app = express();
  app.use(
    createNodeSurface({
      repos: t.repos,
      config,
      logger: silentLogger(),
      nodeImage: () => undefined,
      sharedRoots: roots,
      installerTools: () => undefined,
      hostKeys: HostKeyPins.forConfig(config),
    }).router,
  );
  app.use(apiErrorHandler(silentLogger()));
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    await roots.create('web', { dir: src });
    const mac = '52:54:00:00:00:09';
    const { node, reply } = enlist(
      t.repos,
      config,
      { mac, mode: 'discover', inventory: {} },
      { sourceIp: '127.0.0.1', credential: undefined, leaseIp: undefined },
    );
    roots.assign(node, 'web');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/boot/sharedroot/${mac}/identity.tar`;
    const setIp = (ip: string | null): void =>
      void t.repos.store.write((j) => t.repos.nodes.patchIn(j, mac, { ip }));

    // Without the node's credential, or with another, nothing is served even from the node's address.
    const none = await fetch(url);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'NODE_CREDENTIAL_REQUIRED');
    const wrong = await fetch(url, { headers: { authorization: `Bearer ${'0'.repeat(64)}` } });
    assert.equal(wrong.status, 403);
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'NODE_CREDENTIAL_INVALID');
    const auth = { authorization: `Bearer ${reply.credential ?? ''}` };
    const ok = await fetch(url, { headers: auth });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-type'), 'application/x-tar');
    assert.ok((await ok.arrayBuffer()).byteLength > 512);

    for (const [ip, why] of [
      ['10.99.0.50', /served only to 10\.99\.0\.50, not to 127\.0\.0\.1/],
      [null, /has no recorded address yet/],
    ] as const) {
      setIp(ip);
      const r = await fetch(url, { headers: auth });
      assert.equal(r.status, 403, `ip ${ip}`);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'SHAREDROOT_IDENTITY_REFUSED');
      assert.match(body.error.message, why);
    }
    assert.equal(identityRefusal({ name: 'n', ip: '10.0.0.5' }, '10.0.0.5'), null);
    assert.equal(identityRefusal({ name: 'n', ip: null }, '10.0.0.5')?.code, 'SHAREDROOT_IDENTITY_REFUSED');
  } finally {
    await new Promise((r) => server.close(r));
    t.cleanup();
  }
});
