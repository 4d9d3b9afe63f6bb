/**
 * HA parts with a real peer: keepalived's own check (`keepalived -t`) of the rendered config, and the
 * epoch checks of the feed on both sides (a real HA router and a real follower over loopback HTTP).
 * The pure parts are test/unit/ha-units.test.ts.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { waitFor } from '../helpers/netns.js';
import { requirePeers } from '../helpers/peers.js';
import { apiErrorHandler } from '../../master/api/errors.js';
import { Authenticator } from '../../master/auth/users.js';
import { HaController } from '../../master/ha/controller.js';
import { createHaRouter } from '../../master/ha/router.js';
import { silentLogger } from '../../master/util/logger.js';
import { stagedPath } from '../../master/daemons/config-install.js';
import {
  keepalivedFiles,
  writeKeepalivedConfig,
  type KeepalivedSettings,
} from '../../master/ha/keepalived.js';
import { ChangeStore } from '../../master/store/changes.js';

const SETTINGS: KeepalivedSettings = {
  nodeId: '10.0.0.1',
  interface: 'eth1',
  address: '10.0.0.1',
  unicastPeer: '10.0.0.2',
  vip: '10.0.0.50/24',
  virtualRouterId: 51,
  priority: 150,
  advertInt: 1,
  trackUrl: 'http://127.0.0.1:80/api/v1/ha/track',
};

describe('keepalived.conf checked by keepalived', () => {
  before(() => requirePeers('keepalived'));

  it('passes keepalived -t, and a bad value is refused before it replaces the config', () => {
    const dir = mkdtempSync('/run/corral-ka-');
    try {
      const files = keepalivedFiles(join(dir, 'ha'));
      // keepalived -t only reads the config, but wants an existing non-loopback interface name.
      const iface = readdirSync('/sys/class/net').find((n) => n !== 'lo') ?? 'eth0';
      const onLo = { ...SETTINGS, interface: iface };
      writeKeepalivedConfig(onLo, files);
      const good = readFileSync(files.conf, 'utf8');
      assert.throws(() => writeKeepalivedConfig({ ...onLo, interface: 'nosuchif0' }, files), {
        code: 'KEEPALIVED_CONFIG_INVALID',
      });
      assert.equal(readFileSync(files.conf, 'utf8'), good, 'the previous config is kept');
      assert.ok(!existsSync(stagedPath(files.conf)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('feed epochs (router and follower over loopback HTTP)', () => {
  const TOKEN = 'feed-test-token-0123456789';
  const listen = async (server: Server): Promise<number> => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };
  const haConfig = (dir: string, nodeId: string, port: number) =>
    testConfig({
      dataDir: dir,
      ha: { enabled: true, nodeId, token: TOKEN, peerUrl: `http://127.0.0.1:${port}`, keepalived: false },
    });

  it('a primary acknowledges nothing for a follower of a later epoch, and steps down', async () => {
    const r = tempRepos();
    const server = createServer();
    const port = await listen(server);
    // The backup it becomes after stepping down follows this very server: refused (503), harmless.
    const config = haConfig(r.dir, 'a', port);
    const controller = new HaController({
      config,
      repos: r.repos,
      logger: silentLogger(),
      onRole: async () => {},
    });
    const app = express();
    app.use(
      '/api/v1/ha',
      createHaRouter({
        controller,
        repos: r.repos,
        config,
        logger: silentLogger(),
        authenticator: new Authenticator(r.repos),
      }),
    );
    app.use(apiErrorHandler(silentLogger()));
    server.on('request', app);
    try {
      await controller.confirmPromotion('test');
      assert.equal(controller.role, 'primary');
      const acked = controller.acks.acked;
      const last = r.repos.store.lastChangeSeq();
      assert.ok(last > acked, 'the promotion wrote changes the backup has not acknowledged');
      const waiting = controller.acks.wait(last, 1500);
      // A follower that was primary in epoch 7 (a fenced split-brain side) claims our whole journal.
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/ha/feed?since=${last}&epoch=7&node=b&wait=0`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NOT_PRIMARY');
      assert.equal(controller.acks.acked, acked, 'its since= acknowledged nothing');
      assert.equal(await waiting, false, 'a write waiting for the backup was not released');
      await waitFor('the primary steps down', () => controller.role === 'backup', 3000, 20);
    } finally {
      await controller.close();
      server.closeAllConnections();
      server.close();
      r.cleanup();
    }
  });

  it('a backup does not follow a primary of an older epoch, and records it when promoted', async () => {
    const f = tempRepos();
    const old = tempRepos();
    // Both journals share seq 1 (the old primary's events stand in for its writes after the split).
    f.repos.store.write((j) => f.repos.store.setEpochIn(j, 5));
    for (let i = 0; i < 3; i++) old.repos.events.append({ kind: 'old', message: `stale ${i}` });
    const changes = new ChangeStore(old.repos.store).since(1);
    let asked = 0;
    const server = createServer((req, res) => {
      asked++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ epoch: 2, nodeId: 'old-primary', lastSeq: 3, history: [], changes }));
      req.resume();
    });
    const port = await listen(server);
    const controller = new HaController({
      config: haConfig(f.dir, 'b', port),
      repos: f.repos,
      logger: silentLogger(),
      onRole: async () => {},
    });
    try {
      controller.start();
      await waitFor(
        'the follower refuses the stale primary',
        () => /older than ours/.test(controller.status().follower?.lastError ?? ''),
        5000,
        20,
      );
      assert.ok(asked >= 1);
      assert.equal(f.repos.store.lastChangeSeq(), 1, 'none of the stale changes was applied');
      assert.equal(f.repos.events.count(), 0);
      assert.equal(controller.status().follower?.connected, false);
      await controller.confirmPromotion('test');
      assert.equal(f.repos.store.epoch(), 6);
      const refused = f.repos.events.list({ kind: 'ha.stale-primary-refused' });
      assert.equal(refused.length, 1);
      assert.match(refused[0]!.message, /refused to follow old-primary, primary in the older epoch 2/);
    } finally {
      await controller.close();
      server.closeAllConnections();
      server.close();
      f.cleanup();
      old.cleanup();
    }
  });
});
