/**
 * Master restore points against real SQLite stores: create while writes go on, diff, restore (journaled,
 * so a follower applying the change feed ends identical), schema checks, offline restore of a corrupt
 * database, retention apply.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { restoreOffline, markMasterRunning } from '../../master/snapshots/offline.js';
import {
  checksumRestorePoint,
  CONFIG_FILE,
  DB_FILE,
  MANIFEST_FILE,
  readManifest,
  writeManifest,
} from '../../master/snapshots/manifest.js';
import { RestorePoints } from '../../master/snapshots/restore-points.js';
import { SnapshotScheduler } from '../../master/snapshots/scheduler.js';
import { openStore } from '../../master/store/db.js';
import type { NodeState } from '../../master/store/nodes.js';
import { openRepos, type Repos } from '../../master/store/repos.js';
import { isCorralError } from '../../master/util/errors.js';
import { silentLogger } from '../../master/util/logger.js';

const logger = silentLogger();

function addNode(
  repos: Repos,
  mac: string,
  name: string,
  seqNo: number,
  state: NodeState = 'discovered',
): void {
  repos.store.write((journal) => {
    repos.nodes.insertIn(journal, { mac, name, seqNo, state, inventory: {} });
  });
}

/** Rows of the restorable tables of a database file (read on a connection of the test's own). */
function state(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  const out: Record<string, unknown[]> = {};
  for (const [t, k] of [
    ['nodes', 'mac'],
    ['settings', 'key'],
    ['services', 'name'],
    ['lb_server_admin', 'id'],
    ['users', 'name'],
    ['reservations', 'mac'],
    ['images', 'sha256'],
  ] as const) {
    out[t] = db.prepare(`SELECT * FROM ${t} ORDER BY ${k}`).all();
  }
  out['settings'] = (out['settings'] as { key: string }[]).filter((r) => !r.key.startsWith('ha.'));
  db.close();
  return out;
}

describe('master restore points', () => {
  let dir: string;
  let repos: Repos;
  let points: RestorePoints;
  const templates = (): string => join(dir, 'templates');

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-snapshot-'));
    repos = openRepos({ path: join(dir, 'data', 'corral.db'), logger });
    mkdirSync(templates());
    writeFileSync(join(templates(), 'a.hbs'), 'one');
    points = new RestorePoints({
      repos,
      dir: join(dir, 'data', 'snapshots'),
      logger,
      config: { address: '10.0.0.1', dhcp: { mode: 'off' } },
      templatesDir: templates(),
    });
  });
  after(() => {
    repos.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a consistent online copy while writes continue, and restores it row by row, journaled', async () => {
    addNode(repos, '52:54:00:00:00:01', 'alpha', 1);
    addNode(repos, '52:54:00:00:00:02', 'beta', 2);
    repos.settings.set('ui.motd', 'hello');
    repos.store.write((journal) => {
      repos.services.putIn(journal, 'web', { name: 'web', port: 80 });
      repos.services.setAdminIn(journal, 'web', '52:54:00:00:00:01', 'drain');
    });

    // Writes from this same connection interleave with the backup's steps.
    let writes = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        repos.settings.set('load.counter', ++writes);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const snap = await points.create({ name: 'good', note: 'before the change' });
    stop = true;
    await writer;
    const copy = new Database(join(points.dir, snap.id, DB_FILE), { readonly: true });
    assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
    const counterInCopy = JSON.parse(
      (copy.prepare("SELECT value FROM settings WHERE key = 'load.counter'").get() as { value: string })
        .value,
    ) as number;
    assert.ok(
      counterInCopy >= 1 && counterInCopy <= writes,
      `copy holds a committed value (${counterInCopy}/${writes})`,
    );
    copy.close();
    assert.equal(snap.kind, 'manual');
    assert.deepEqual(snap.templates, {
      'a.hbs': readManifest(join(points.dir, snap.id))?.templates['a.hbs'],
    });
    const wanted = state(join(points.dir, snap.id, DB_FILE));

    // The "bad change": rename swap between two nodes (unique names), delete a service (cascades its
    // admin rows), a new node, a changed setting, a new HA epoch, a template edit.
    repos.store.write((journal) => {
      repos.nodes.patchIn(journal, '52:54:00:00:00:01', { name: 'tmp' });
      repos.nodes.patchIn(journal, '52:54:00:00:00:02', { name: 'alpha' });
      repos.nodes.patchIn(journal, '52:54:00:00:00:01', { name: 'beta' });
      repos.services.deleteIn(journal, 'web');
      repos.settings.setIn(journal, 'ui.motd', 'broken');
    });
    addNode(repos, '52:54:00:00:00:03', 'gamma', 3);
    repos.store.write((journal) => repos.store.setEpochIn(journal, 7));
    writeFileSync(join(templates(), 'a.hbs'), 'two');

    const diff = points.diff('good');
    const byTable = Object.fromEntries(diff.tables.map((t) => [t.table, t]));
    assert.equal(byTable['nodes']?.added, 1);
    assert.equal(byTable['nodes']?.changed, 2);
    assert.deepEqual(byTable['nodes']?.rows.find((r) => r.key === '52:54:00:00:00:01')?.fields, [
      'name',
      'updated_at',
    ]);
    assert.equal(byTable['services']?.removed, 1);
    assert.equal(byTable['lb_server_admin']?.removed, 1);
    assert.ok(byTable['settings']?.rows.some((r) => r.key === 'ui.motd' && r.change === 'changed'));
    assert.deepEqual(diff.templates, [{ file: 'a.hbs', change: 'changed' }]);

    // A follower that has everything up to now, applying only the journal the restore writes.
    const follower = join(dir, 'follower.db');
    await repos.store.backup(follower);
    const seqBefore = repos.store.lastChangeSeq();
    const eventsBefore = repos.events.list({ limit: 1000 }).length;

    await assert.rejects(points.restore('nope'), (e) => isCorralError(e) && e.code === 'SNAPSHOT_NOT_FOUND');
    const result = await points.restore('good', 'tester');
    assert.equal(result.safety.kind, 'safety');
    assert.deepEqual(
      state(join(dir, 'data', 'corral.db')),
      wanted,
      'restorable tables are back to the restore point',
    );
    assert.equal(repos.store.epoch(), 7, 'the HA epoch never goes back');
    assert.ok(
      repos.events.list({ limit: 1000 }).length > eventsBefore,
      'the event log is kept and records the restore',
    );
    assert.deepEqual(result.templatesChanged, [{ file: 'a.hbs', change: 'changed' }]);

    const fStore = openStore({ path: follower, logger });
    fStore.applyReplicated(repos.changes.since(seqBefore, 10000));
    assert.deepEqual(
      state(follower),
      state(join(dir, 'data', 'corral.db')),
      'a follower applying the change feed matches',
    );
    fStore.close();

    // Nothing differs any more: a second restore journals only its own event rows.
    const seq2 = repos.store.lastChangeSeq();
    const again = await points.restore('good');
    assert.deepEqual(again.summary.tables, {});
    assert.ok(repos.changes.since(seq2, 100).every((c) => c.entity === 'events'));

    // And the safety restore point brings the bad change back (undo of the undo).
    await points.restore(result.safety.id);
    assert.equal(repos.nodes.get('52:54:00:00:00:03')?.name, 'gamma');
    assert.equal(repos.services.get('web'), undefined);
  });

  it('keeps child rows an ON DELETE CASCADE takes along when their changed parent is replaced', async () => {
    repos.store.write((journal) => {
      repos.services.putIn(journal, 'db', { name: 'db', port: 5432 });
      repos.services.setAdminIn(journal, 'db', '52:54:00:00:00:02', 'maint');
    });
    await points.create({ name: 'cascade' });
    repos.store.write((journal) => repos.services.putIn(journal, 'db', { name: 'db', port: 6432 }));
    const r = await points.restore('cascade');
    assert.deepEqual(r.summary.tables['services'], { upserted: 1, deleted: 0 });
    assert.deepEqual(
      repos.services.adminStates('db').map((a) => [a.nodeMac, a.state]),
      [['52:54:00:00:00:02', 'maint']],
    );
    assert.deepEqual(repos.services.get('db')?.spec, { name: 'db', port: 5432 });
  });

  it('two restore points in one second that draw the same id: the second draws again', async () => {
    const drawn = ['20300106T100000Z-aaaa', '20300106T100000Z-aaaa', '20300106T100000Z-bbbb'];
    const own = new RestorePoints({
      repos,
      dir: join(dir, 'same-second'),
      logger,
      now: () => new Date('2030-01-06T10:00:00Z'),
      newId: () => drawn.shift() ?? '20300106T100000Z-cccc',
    });
    const a = await own.create({ name: 'first' });
    const b = await own.create({ name: 'second' });
    assert.equal(a.id, '20300106T100000Z-aaaa');
    assert.equal(b.id, '20300106T100000Z-bbbb', 'not a rename onto the first one (ENOTEMPTY)');
    assert.deepEqual(
      own
        .list()
        .map((m) => m.name)
        .sort(),
      ['first', 'second'],
    );
  });

  it('the scheduler takes one restore point per due period and applies retention', async () => {
    const clock = { now: new Date('2030-01-06T10:00:00Z') };
    const own = new RestorePoints({ repos, dir: join(dir, 'scheduled'), logger, now: () => clock.now });
    const scheduler = new SnapshotScheduler({
      points: own,
      schedule: () => ({ hourly: true, daily: false, weekly: false }),
      retention: () => ({ keepLast: 2, keepHourly: 0, keepDaily: 0, keepWeekly: 0 }),
      logger,
      tickMs: 3_600_000,
      now: () => clock.now,
    });
    const scheduled = (): number => own.list().filter((m) => m.kind === 'scheduled').length;
    await scheduler.tick();
    await scheduler.tick();
    assert.equal(scheduled(), 1, 'one per hour');
    clock.now = new Date('2030-01-06T11:00:00Z');
    await scheduler.tick();
    clock.now = new Date('2030-01-06T12:00:00Z');
    await scheduler.tick();
    assert.equal(scheduled(), 2, 'three hours, retention keeps the last 2');
    assert.deepEqual(
      own.list().map((m) => m.createdAt),
      ['2030-01-06T12:00:00.000Z', '2030-01-06T11:00:00.000Z'],
    );
    await scheduler.close();
  });

  it('refuses a restore point with a migration this Corral does not know, naming the versions', async () => {
    const snap = await points.create({ name: 'future' });
    const path = join(points.dir, snap.id);
    const db = new Database(join(path, DB_FILE));
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 'x')").run();
    db.close();
    writeManifest(path, { ...snap, migrations: [...snap.migrations, 999], schemaVersion: 999 });
    const before = points.list().length;
    await assert.rejects(points.restore('future'), (e) => {
      assert.ok(isCorralError(e));
      assert.equal(e.code, 'SNAPSHOT_INCOMPATIBLE');
      assert.match(
        e.message,
        /schema version 999 \(migrations 999 unknown here\); this master is at schema version \d+/,
      );
      return true;
    });
    assert.equal(points.list().length, before, 'no safety restore point for a refused restore');
  });

  it('migrates a restore point from an older schema before restoring it', async () => {
    repos.store.write((journal) => repos.services.putIn(journal, 'api', { name: 'api' }));
    const snap = await points.create({ name: 'old-schema' });
    const path = join(points.dir, snap.id);
    const db = new Database(join(path, DB_FILE));
    db.exec(
      'DROP TABLE lb_server_admin; DROP TABLE services; DELETE FROM schema_migrations WHERE version = 4',
    );
    db.close();
    // As a restore point from an older Corral would be: its checksums are of the files it holds.
    writeManifest(path, {
      ...snap,
      migrations: snap.migrations.filter((v) => v !== 4),
      files: checksumRestorePoint(path),
    });
    await points.restore('old-schema');
    assert.equal(
      repos.services.list().length,
      0,
      'services did not exist at that schema: none after restore',
    );
    assert.ok(
      readManifest(path)?.migrations.every((v) => v !== 4),
      'the restore point itself is unchanged',
    );
  });

  it('previews retention without deleting, then applies it; manual restore points are kept', async () => {
    for (let i = 0; i < 3; i++) await points.create({ kind: 'scheduled', reason: 'test' });
    const total = points.list().length;
    const policy = { keepLast: 1, keepHourly: 0, keepDaily: 0, keepWeekly: 0 };
    const preview = points.previewRetention(policy);
    assert.equal(points.list().length, total, 'preview deletes nothing');
    assert.ok(preview.remove.length >= 2);
    assert.ok(preview.remove.every((r) => r.kind !== 'manual'));
    const applied = await points.applyRetention(policy);
    assert.deepEqual(applied.remove, preview.remove);
    assert.equal(points.list().length, total - preview.remove.length);
    assert.ok(points.list().some((m) => m.name === 'good'));
  });

  it('restores offline: a corrupt database is moved aside into a safety restore point and replaced', async () => {
    const snap = points.get('good');
    const dataDir = join(dir, 'offline');
    cpSync(join(points.dir, snap.id), join(dataDir, 'snapshots', snap.id), { recursive: true });
    writeFileSync(join(dataDir, 'corral.db'), Buffer.alloc(8192, 0x5a)); // not a database any more

    const unmark = markMasterRunning(join(dataDir, 'snapshots'));
    writeFileSync(join(dataDir, 'snapshots', '.master.pid'), `${process.ppid}\n`); // a live process that is not us
    await assert.rejects(
      restoreOffline({ dataDir, dir: join(dataDir, 'snapshots'), idOrName: 'good', logger }),
      (e) => isCorralError(e) && e.code === 'SNAPSHOT_MASTER_RUNNING',
    );
    unmark();

    const r = await restoreOffline({ dataDir, dir: join(dataDir, 'snapshots'), idOrName: 'good', logger });
    assert.equal(r.mode, 'file');
    const restored = openRepos({ path: join(dataDir, 'corral.db'), logger });
    assert.equal(restored.store.integrityCheck(), 'ok');
    assert.equal(restored.nodes.get('52:54:00:00:00:01')?.name, 'alpha');
    restored.store.close();
    if (r.mode === 'file') {
      const aside = join(dataDir, 'snapshots', r.safetyId, DB_FILE);
      assert.ok(existsSync(aside));
      assert.equal(readFileSync(aside)[0], 0x5a, 'the corrupt file is kept as it was');
    }

    // With a healthy database the offline restore is row-level, like the online one.
    const r2 = await restoreOffline({ dataDir, dir: join(dataDir, 'snapshots'), idOrName: 'good', logger });
    assert.equal(r2.mode, 'rows', r2.mode === 'file' ? r2.integrity : '');
  });
});

describe('damaged restore points', () => {
  let dir: string;
  let repos: Repos;
  let points: RestorePoints;

  const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
  /** Flips one bit of one byte, as bit rot would; calling it again undoes it. */
  const flipByte = (path: string, at: number): void => {
    const buf = readFileSync(path);
    buf[at] = (buf[at] ?? 0) ^ 0x10;
    writeFileSync(path, buf);
  };
  /** Everything a refused restore must leave as it was: the rows, the change journal, the list. */
  const live = (): { rows: Record<string, unknown[]>; seq: number; points: number } => ({
    rows: state(join(dir, 'data', 'corral.db')),
    seq: repos.store.lastChangeSeq(),
    points: points.list().length,
  });
  const corrupt =
    (file: string, pattern: RegExp) =>
    (e: unknown): boolean => {
      assert.ok(isCorralError(e), String(e));
      assert.equal(e.code, 'SNAPSHOT_CORRUPT', e.message);
      assert.equal(e.details?.['file'], file);
      assert.match(e.message, pattern);
      return true;
    };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-snapshot-corrupt-'));
    repos = openRepos({ path: join(dir, 'data', 'corral.db'), logger });
    mkdirSync(join(dir, 'templates', 'ipxe'), { recursive: true });
    writeFileSync(join(dir, 'templates', 'ipxe', 'boot.hbs'), '#!ipxe\n');
    points = new RestorePoints({
      repos,
      dir: join(dir, 'data', 'snapshots'),
      logger,
      config: { address: '10.0.0.1' },
      templatesDir: join(dir, 'templates'),
    });
    addNode(repos, '52:54:00:00:01:01', 'kept', 1);
  });
  after(() => {
    repos.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records the size and sha256 of every file, and a digest of the manifest itself', async () => {
    const m = await points.create({ name: 'sums' });
    const path = join(points.dir, m.id);
    assert.deepEqual(Object.keys(m.files ?? {}), [CONFIG_FILE, DB_FILE, 'templates/ipxe/boot.hbs']);
    for (const [file, sum] of Object.entries(m.files ?? {})) {
      assert.equal(sum.sha256, sha256(join(path, file)), file);
      assert.equal(sum.bytes, statSync(join(path, file)).size, file);
    }
    assert.equal(m.files?.[DB_FILE]?.bytes, m.dbBytes);
    assert.match(m.manifestSha256 ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(readManifest(path), m, 'the listed manifest is the one returned');
  });

  it('refuses a restore point whose database has one flipped byte; the live store is untouched', async () => {
    const m = await points.create({ name: 'db-rot' });
    addNode(repos, '52:54:00:00:01:02', 'after-2', 2); // a restore would remove this node
    const db = join(points.dir, m.id, DB_FILE);
    const at = statSync(db).size - 100;
    flipByte(db, at);
    const before = live();
    await assert.rejects(
      points.restore('db-rot'),
      corrupt(DB_FILE, /corral\.db has sha256 [0-9a-f]{64}, not/),
    );
    assert.deepEqual(live(), before, 'no row, journal entry or safety restore point');
    assert.ok(repos.nodes.get('52:54:00:00:01:02'));
    assert.deepEqual(
      readdirSync(points.dir).filter((f) => f.startsWith('.')),
      [],
      'no temporary copy left',
    );
    flipByte(db, at); // undone: the same restore point restores
    await points.restore('db-rot');
    assert.equal(repos.nodes.get('52:54:00:00:01:02'), undefined);
  });

  it('refuses one whose config, a template or the manifest changed, naming the file', async () => {
    const m = await points.create({ name: 'config-rot' });
    addNode(repos, '52:54:00:00:01:03', 'after-3', 3);
    const path = join(points.dir, m.id);
    const before = live();
    flipByte(join(path, CONFIG_FILE), 5);
    await assert.rejects(points.restore('config-rot'), corrupt(CONFIG_FILE, /config\.json has sha256/));
    flipByte(join(path, CONFIG_FILE), 5);
    writeFileSync(join(path, 'templates', 'ipxe', 'boot.hbs'), '#!ipxe\nchain evil\n');
    await assert.rejects(
      points.restore('config-rot'),
      corrupt('templates/ipxe/boot.hbs', /templates\/ipxe\/boot\.hbs has \d+ bytes, not 7/),
    );
    writeFileSync(join(path, 'templates', 'ipxe', 'boot.hbs'), '#!ipxe\n');
    // A manifest that still parses but was changed by hand (here: the applied migrations).
    const raw = readFileSync(join(path, MANIFEST_FILE), 'utf8');
    writeFileSync(
      join(path, MANIFEST_FILE),
      raw.replace('"migrations": [\n    1,', '"migrations": [\n    0,'),
    );
    assert.notEqual(readFileSync(join(path, MANIFEST_FILE), 'utf8'), raw, 'the edit applied');
    await assert.rejects(
      points.restore('config-rot'),
      corrupt(MANIFEST_FILE, /manifest\.json does not match/),
    );
    rmSync(join(path, CONFIG_FILE));
    writeFileSync(join(path, MANIFEST_FILE), raw);
    await assert.rejects(points.restore('config-rot'), corrupt(CONFIG_FILE, /config\.json is missing/));
    assert.deepEqual(live(), before);
  });

  it('runs PRAGMA integrity_check on the copy: a damaged page is refused even without checksums', async () => {
    const m = await points.create({ name: 'legacy' });
    addNode(repos, '52:54:00:00:01:04', 'after-4', 4);
    const path = join(points.dir, m.id);
    // As written before checksums existed.
    const { files: _files, manifestSha256: _digest, ...legacy } = m;
    void _files;
    void _digest;
    writeFileSync(join(path, MANIFEST_FILE), JSON.stringify(legacy));
    const copy = new Database(join(path, DB_FILE), { readonly: true });
    const root = (
      copy.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'nodes'").get() as {
        rootpage: number;
      }
    ).rootpage;
    const pageSize = Number(copy.pragma('page_size', { simple: true }));
    copy.close();
    const buf = readFileSync(join(path, DB_FILE));
    buf.fill(0xff, (root - 1) * pageSize, root * pageSize);
    writeFileSync(join(path, DB_FILE), buf);
    const before = live();
    await assert.rejects(points.restore('legacy'), corrupt(DB_FILE, /fails PRAGMA integrity_check/));
    assert.deepEqual(live(), before);
  });

  it('offline: a damaged restore point leaves a broken live database exactly as it was', async () => {
    const m = await points.create({ name: 'offline-rot' });
    const dataDir = join(dir, 'offline');
    const snapDir = join(dataDir, 'snapshots');
    cpSync(join(points.dir, m.id), join(snapDir, m.id), { recursive: true });
    const broken = Buffer.alloc(8192, 0x5a);
    writeFileSync(join(dataDir, 'corral.db'), broken);
    const db = join(snapDir, m.id, DB_FILE);
    flipByte(db, 200);
    await assert.rejects(
      restoreOffline({ dataDir, dir: snapDir, idOrName: 'offline-rot', logger }),
      corrupt(DB_FILE, /corral\.db has sha256/),
    );
    assert.deepEqual(readFileSync(join(dataDir, 'corral.db')), broken, 'the live file was not moved aside');
    assert.deepEqual(readdirSync(snapDir), [m.id], 'no safety restore point');
    assert.deepEqual(readdirSync(dataDir).sort(), ['corral.db', 'snapshots'], 'no temporary copy left');
    flipByte(db, 200);
    const r = await restoreOffline({ dataDir, dir: snapDir, idOrName: 'offline-rot', logger });
    assert.equal(r.mode, 'file');
    if (r.mode === 'file') {
      const safety = readManifest(join(snapDir, r.safetyId));
      assert.equal(safety?.files?.[DB_FILE]?.sha256, createHash('sha256').update(broken).digest('hex'));
    }
  });

  it('offline on a healthy database: a damaged config is refused and the rows stay', async () => {
    const m = await points.create({ name: 'offline-config' });
    const dataDir = join(dir, 'offline-rows');
    const snapDir = join(dataDir, 'snapshots');
    mkdirSync(dataDir);
    await repos.store.backup(join(dataDir, 'corral.db'));
    cpSync(join(points.dir, m.id), join(snapDir, m.id), { recursive: true });
    const other = openRepos({ path: join(dataDir, 'corral.db'), logger });
    addNode(other, '52:54:00:00:01:05', 'offline-after', 5);
    const rows = state(join(dataDir, 'corral.db'));
    other.store.close();
    flipByte(join(snapDir, m.id, CONFIG_FILE), 3);
    await assert.rejects(
      restoreOffline({ dataDir, dir: snapDir, idOrName: 'offline-config', logger }),
      corrupt(CONFIG_FILE, /config\.json/),
    );
    const after = openRepos({ path: join(dataDir, 'corral.db'), logger });
    assert.deepEqual(state(join(dataDir, 'corral.db')), rows);
    after.store.close();
  });
});
