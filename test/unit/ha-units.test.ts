/**
 * HA pure parts and store mechanics: keepalived.conf golden file, the witness's decisions, divergence
 * points, the ack tracker, replicated apply / tail discard on real temporary SQLite stores. The parts
 * with a real peer (`keepalived -t`, the feed over loopback HTTP) are test/integration/ha-feed-epochs.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { golden } from '../helpers/golden.js';
import Database from 'better-sqlite3';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { AckTracker } from '../../master/ha/ack-tracker.js';
import { divergencePoint } from '../../master/ha/history.js';
import { decideLease, decidePromote, decideRelease } from '../../master/ha/witness-state.js';
import {
  keepalivedFiles,
  renderKeepalivedConf,
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
    assert.ok(safeSyncedPath('ssh/id_ed25519'));
    assert.ok(!safeSyncedPath('ssh/../corral.db'));
    assert.ok(safeSyncedPath('node-keys/52-54-00-aa-bb-cc/deploy/ssh_host_ed25519_key'));
    assert.ok(!safeSyncedPath('node-keys/52-54-00-aa-bb-cc/overlay/etc/shadow'));
  });
});
