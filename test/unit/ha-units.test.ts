/**
 * HA pure parts and store mechanics: keepalived.conf golden file (also checked by `keepalived -t`), the
 * witness's decisions, divergence points, the ack tracker, replicated apply / tail discard on real
 * temporary SQLite stores, and the epoch checks of the feed on both sides (a real HA router and a real
 * follower over loopback HTTP).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { golden } from '../helpers/golden.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import Database from 'better-sqlite3';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { hasCommand, waitFor } from '../helpers/netns.js';
import { apiErrorHandler } from '../../master/api/errors.js';
import { Authenticator } from '../../master/auth/users.js';
import { HaController } from '../../master/ha/controller.js';
import { createHaRouter } from '../../master/ha/router.js';
import { silentLogger } from '../../master/util/logger.js';
import { stagedPath } from '../../master/daemons/config-install.js';
import { AckTracker } from '../../master/ha/ack-tracker.js';
import { divergencePoint } from '../../master/ha/history.js';
import { decideLease, decidePromote, decideRelease } from '../../master/ha/witness-state.js';
import {
  keepalivedFiles,
  renderKeepalivedConf,
  writeKeepalivedConfig,
  type KeepalivedSettings,
} from '../../master/ha/keepalived.js';
import { safeSyncedPath } from '../../master/ha/files.js';
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

describe('keepalived.conf', () => {
  it('renders the golden file (UPDATE_FIXTURES=1 regenerates it)', () => {
    const text = renderKeepalivedConf(SETTINGS, keepalivedFiles('/var/lib/corral/ha'));
    golden('ha/keepalived.conf', text);
    assert.match(text, /state BACKUP\n\s+nopreempt/);
  });

  it(
    'passes keepalived -t, and a bad value is refused before it replaces the config',
    { skip: !hasCommand('keepalived') || process.getuid?.() !== 0 },
    () => {
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
    },
  );
});

describe('witness decisions', () => {
  const s0 = { epoch: 1, holder: 'a', leaseUntil: 0 };
  it('grants each epoch once, and only above the current one', () => {
    const g = decidePromote(s0, 'b', 2, 1000);
    assert.equal(g.granted, true);
    assert.deepEqual(g.state, { epoch: 2, holder: 'b', leaseUntil: 0 });
    assert.equal(decidePromote(g.state, 'a', 2, 1000).granted, false, 'epoch 2 is taken');
    assert.equal(decidePromote(g.state, 'a', 1, 1000).granted, false);
  });
  it('refuses a promotion while another master holds a lease, grants after it expires', () => {
    const leased = decideLease(s0, 'a', 1, 1000, 3000);
    assert.equal(leased.granted, true);
    assert.equal(decidePromote(leased.state, 'b', 2, 3999).granted, false);
    assert.equal(decidePromote(leased.state, 'b', 2, 4001).granted, true);
    assert.equal(decidePromote(decideRelease(leased.state, 'a', 1), 'b', 2, 1001).granted, true);
  });
  it('leases only to the holder of the current epoch', () => {
    assert.equal(decideLease(s0, 'b', 1, 0, 3000).granted, false);
    assert.equal(decideLease(s0, 'a', 0, 0, 3000).granted, false);
  });
});

describe('divergence point', () => {
  const history = [
    { epoch: 1, startSeq: 0, nodeId: 'a', at: '' },
    { epoch: 2, startSeq: 40, nodeId: 'b', at: '' },
  ];
  it('cuts a follower of an older epoch back to where the newer epoch began', () => {
    assert.equal(divergencePoint(history, 60, 1, 45), 40);
    assert.equal(divergencePoint(history, 60, 1, 40), undefined);
    assert.equal(divergencePoint(history, 60, 1, 12), undefined);
    assert.equal(divergencePoint(history, 60, 2, 55), undefined);
    assert.equal(divergencePoint(history, 60, 2, 61), 60, 'ahead of the primary in its own epoch');
  });
});

describe('ack tracker', () => {
  it('resolves waiters when the backup acknowledges, and times out otherwise', async () => {
    const t = new AckTracker();
    const w = t.wait(5, 1000);
    t.contact(4);
    t.contact(5);
    assert.equal(await w, true);
    assert.equal(await t.wait(9, 20), false);
  });
});

describe('replicated apply and tail discard (SQLite)', () => {
  it('a follower applies the primary journal with the same sequences and rows', () => {
    const p = tempRepos();
    const f = tempRepos();
    try {
      p.repos.events.append({ kind: 'a', message: 'one' });
      p.repos.settings.set('x', 1);
      p.repos.store.write((j) => p.repos.store.setEpochIn(j, 3));
      p.repos.events.append({ kind: 'b', message: 'two' });
      f.repos.store.applyReplicated(new ChangeStore(p.repos.store).since(0));
      assert.equal(f.repos.store.lastChangeSeq(), p.repos.store.lastChangeSeq());
      assert.equal(f.repos.store.epoch(), 3);
      assert.deepEqual(
        f.repos.events.list().map((e) => e.message),
        ['two', 'one'],
      );
      assert.equal(f.repos.settings.get('x'), 1);
      assert.deepEqual(
        new ChangeStore(f.repos.store).since(0).map((c) => c.epoch),
        [0, 0, 3, 3],
      );
    } finally {
      p.cleanup();
      f.cleanup();
    }
  });

  it('discardAfter rolls rows back to their state at the cut and archives the tail', () => {
    const r = tempRepos();
    try {
      r.repos.settings.set('kept', 'old');
      const cut = r.repos.store.lastChangeSeq();
      r.repos.settings.set('kept', 'new');
      r.repos.settings.set('added', true);
      r.repos.events.append({ kind: 'tail', message: 'gone' });
      const tail = r.repos.store.discardAfter(cut);
      assert.equal(tail.length, 3);
      assert.equal(r.repos.settings.get('kept'), 'old');
      assert.equal(r.repos.settings.get('added'), undefined);
      assert.equal(r.repos.events.count(), 0);
      assert.equal(r.repos.store.lastChangeSeq(), cut);
      const file = new Database(r.path, { readonly: true });
      const archived = file.prepare('SELECT COUNT(*) AS n FROM ha_discarded').get() as { n: number };
      file.close();
      assert.equal(archived.n, 3);
    } finally {
      r.cleanup();
    }
  });

  it('a write guard refuses local writes (a backup)', () => {
    const r = tempRepos();
    try {
      r.repos.store.setWriteGuard(() => {
        throw new Error('NOT_PRIMARY');
      });
      assert.throws(() => r.repos.settings.set('y', 1), /NOT_PRIMARY/);
    } finally {
      r.cleanup();
    }
  });
});

describe('ha config and file paths', () => {
  it('requires token and peerUrl when enabled', () => {
    assert.throws(() => testConfig({ ha: { enabled: true } }), /ha\.token/);
    const c = testConfig({ ha: { enabled: true, token: 'x'.repeat(16), peerUrl: 'https://10.0.0.2' } });
    assert.equal(c.ha.mode, 'sync');
  });
  it('only replicates relative paths inside the synced folders', () => {
    assert.ok(safeSyncedPath('tftp/undionly.kpxe'));
    assert.ok(!safeSyncedPath('tftp/../corral.db'));
    assert.ok(!safeSyncedPath('/etc/passwd'));
    assert.ok(!safeSyncedPath('keys/id'));
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
