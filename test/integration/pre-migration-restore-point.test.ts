/**
 * An upgrade's first start (a database one migration behind this Corral) takes a restore point of the
 * database as it was before migrating it, on a real `corral master` process (loopback, port 0).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION } from '../../master/store/migrations.js';
import { PRE_MIGRATION_FILE } from '../../master/store/pre-migration.js';
import { listManifests } from '../../master/snapshots/manifest.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

const dirs: string[] = [];
const running: MasterProcess[] = [];
after(async () => {
  for (const m of running) await m.stop('SIGKILL').catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-premig-'));
  dirs.push(d);
  return join(d, 'data');
}

/** Runs a master on `dataDir` until it has started, then stops it (SIGTERM) and returns its exit code. */
async function startAndStop(dataDir: string): Promise<number | string> {
  // No node environment build: it is not what this file tests, and stopped right after its start a master
  // waits for the build's apt-cache runs (over 10 s on a loaded machine, past stop()'s 10 s bound).
  const config = join(dataDir, '..', 'corral.json');
  writeFileSync(config, JSON.stringify({ nodeImage: { autoBuild: false } }));
  const m = await startMasterProcess({
    args: [
      ...['--config', config, '--data-dir', dataDir, '--address', '127.0.0.1'],
      ...['--http-port', '0', '--tftp-port', '0'],
    ],
    env: { CORRAL_ADMIN_PASSWORD: 'pre-migration test password' },
    timeoutMs: 30_000,
  });
  running.push(m);
  return m.stop();
}

/** A database as the previous Corral left it: every migration but the newest, and one settings row. */
function olderDatabase(dataDir: string): number {
  mkdirSync(dataDir, { recursive: true });
  const older = [...MIGRATIONS].sort((a, b) => a.version - b.version).slice(0, -1);
  const db = new Database(join(dataDir, 'corral.db'));
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  for (const m of older) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(
      m.version,
      m.name,
      '2026-01-01T00:00:00Z',
    );
  }
  db.prepare("INSERT INTO settings (key, value) VALUES ('test.marker', '\"kept\"')").run();
  db.close();
  return Math.max(...older.map((m) => m.version));
}

function schemaOf(path: string): { version: number; marker: string | undefined } {
  const db = new Database(path, { readonly: true });
  try {
    const v = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number };
    const row = db.prepare("SELECT value FROM settings WHERE key = 'test.marker'").get() as
      { value: string } | undefined;
    return { version: v.v, marker: row?.value };
  } finally {
    db.close();
  }
}

test(
  'the first start on an older database keeps it as a restore point, then migrates',
  { timeout: 90_000 },
  async () => {
    const dataDir = tempDataDir();
    const from = olderDatabase(dataDir);
    assert.ok(from < SCHEMA_VERSION);

    assert.equal(await startAndStop(dataDir), 0);
    const points = listManifests(join(dataDir, 'snapshots'));
    assert.equal(points.length, 1, `one restore point, got ${points.map((p) => p.name).join(', ')}`);
    const point = points[0]!;
    const lacking = MIGRATIONS.map((m) => m.version).filter((v) => v > from);
    assert.equal(point.name, `before-migration-${lacking.join('-')}`);
    assert.equal(point.kind, 'auto');
    assert.equal(point.schemaVersion, from);
    assert.match(point.reason, new RegExp(`before database migrations ${lacking.join(', ')} `));
    // The restore point holds the database as it was; the live one is migrated; both keep the data.
    assert.deepEqual(schemaOf(join(dataDir, 'snapshots', point.id, 'corral.db')), {
      version: from,
      marker: '"kept"',
    });
    assert.deepEqual(schemaOf(join(dataDir, 'corral.db')), { version: SCHEMA_VERSION, marker: '"kept"' });
    assert.equal(existsSync(join(dataDir, PRE_MIGRATION_FILE)), false, 'the staged copy is removed');

    // Nothing left to migrate: the next start takes no other restore point.
    assert.equal(await startAndStop(dataDir), 0);
    assert.deepEqual(
      listManifests(join(dataDir, 'snapshots')).map((p) => p.id),
      [point.id],
    );
  },
);

test('a first start on a new data directory takes no restore point', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  assert.equal(await startAndStop(dataDir), 0);
  const snapshots = join(dataDir, 'snapshots');
  assert.deepEqual(existsSync(snapshots) ? listManifests(snapshots) : [], []);
  assert.equal(readdirSync(dataDir).includes(PRE_MIGRATION_FILE), false);
});

test(
  'a staged copy left by a crash becomes the restore point at the next start',
  { timeout: 60_000 },
  async () => {
    const dataDir = tempDataDir();
    assert.equal(await startAndStop(dataDir), 0);
    // As if the master died after copying and migrating, before the restore point: the copy is older.
    const older = tempDataDir();
    const from = olderDatabase(older);
    const db = new Database(join(older, 'corral.db'));
    db.prepare('VACUUM INTO ?').run(join(dataDir, PRE_MIGRATION_FILE));
    db.close();

    assert.equal(await startAndStop(dataDir), 0);
    const points = listManifests(join(dataDir, 'snapshots'));
    assert.deepEqual(
      points.map((p) => [p.name, p.schemaVersion]),
      [
        [
          `before-migration-${MIGRATIONS.map((m) => m.version)
            .filter((v) => v > from)
            .join('-')}`,
          from,
        ],
      ],
    );
    assert.equal(existsSync(join(dataDir, PRE_MIGRATION_FILE)), false);
  },
);
