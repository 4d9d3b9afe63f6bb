import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openRepos } from '../../master/store/repos.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../master/store/migrations.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos } from '../helpers/repos.js';

test('opens in WAL mode with migrations applied once', () => {
  const t = tempRepos();
  try {
    const outside = new Database(t.path, { readonly: true });
    assert.equal(outside.pragma('journal_mode', { simple: true }), 'wal');
    outside.close();
    assert.equal(t.repos.store.schemaVersion(), SCHEMA_VERSION);
    t.repos.store.close();
    const again = openRepos({ path: join(t.dir, 'corral.db'), logger: silentLogger() });
    assert.equal(again.store.schemaVersion(), SCHEMA_VERSION);
    again.store.close();
    const file = new Database(t.path, { readonly: true });
    const n = file.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number };
    file.close();
    assert.equal(n.n, MIGRATIONS.length);
  } finally {
    t.cleanup();
  }
});

test('every mutation appends to the change journal in the same transaction', () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const before = repos.changes.lastSeq();
    repos.store.write((journal) => {
      repos.nodes.insertIn(journal, {
        mac: '52:54:00:00:00:01',
        name: 'node-1',
        seqNo: 1,
        state: 'discovered',
      });
      repos.events.appendIn(journal, { nodeMac: '52:54:00:00:00:01', kind: 'test', message: 'hello' });
    });
    const changes = repos.changes.since(before);
    assert.deepEqual(
      changes.map((c) => [c.entity, c.op]),
      [
        ['nodes', 'upsert'],
        ['events', 'upsert'],
      ],
    );
    assert.equal(changes[0]?.data?.['name'], 'node-1');
    assert.equal(changes[0]?.epoch, 0);

    // A failing transaction leaves neither the row nor its journal entry.
    const seq = repos.changes.lastSeq();
    assert.throws(() =>
      repos.store.write((journal) => {
        repos.nodes.insertIn(journal, {
          mac: '52:54:00:00:00:02',
          name: 'node-2',
          seqNo: 2,
          state: 'discovered',
        });
        throw new Error('boom');
      }),
    );
    assert.equal(repos.nodes.get('52:54:00:00:00:02'), undefined);
    assert.equal(repos.changes.lastSeq(), seq);

    // A constraint violation surfaces as CONFLICT and journals nothing.
    assert.throws(
      () =>
        repos.store.write((journal) =>
          repos.nodes.insertIn(journal, {
            mac: '52:54:00:00:00:03',
            name: 'node-1',
            seqNo: 3,
            state: 'discovered',
          }),
        ),
      (err: Error & { code?: string }) => err.code === 'CONFLICT',
    );
    assert.equal(repos.changes.lastSeq(), seq);

    repos.store.write((journal) => repos.nodes.deleteIn(journal, '52:54:00:00:00:01'));
    const last = repos.changes.since(seq);
    assert.equal(last.at(-1)?.op, 'delete');
    assert.equal(last.at(-1)?.data, null);
  } finally {
    t.cleanup();
  }
});

test('settings and users round-trip and are journaled', () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    repos.settings.set('ui.theme', { dark: true });
    assert.deepEqual(repos.settings.get('ui.theme'), { dark: true });
    repos.store.write((j) => repos.users.upsertIn(j, 'ops', 'scrypt$x', 'operator'));
    assert.equal(repos.users.get('ops')?.role, 'operator');
    assert.deepEqual(
      repos.changes.since(0).map((c) => c.entity),
      ['settings', 'users'],
    );
    assert.equal(repos.store.integrityCheck(), 'ok');
  } finally {
    t.cleanup();
  }
});
