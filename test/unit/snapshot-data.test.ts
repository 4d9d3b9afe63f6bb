/**
 * The snapshot engines' decisions (btrfs vs copy, PostgreSQL function names, MySQL lock ordering) and
 * the real fallbacks this machine can run: tree copies on ext4 and SQLite's online backup.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { snapshotMysql, type SqlSession } from '../../master/snapshots/data/mysql.js';
import { backupFunctions, startWalFile } from '../../master/snapshots/data/postgres.js';
import { snapshotSqlite } from '../../master/snapshots/data/sqlite.js';
import {
  planTreeRollback,
  planTreeSnapshot,
  rollbackTree,
  snapshotTree,
  treeFacts,
  treeSumsPath,
} from '../../master/snapshots/tree-snapshot.js';
import { isCorralError } from '../../master/util/errors.js';
import { diffConfig, diffTemplates } from '../../master/snapshots/restore-points.js';

describe('tree snapshots', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-snapshot-tree-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('chooses btrfs snapshots for subvolumes, hard links for immutable trees, reflink-or-copy otherwise', () => {
    const btrfs = { fsType: 'btrfs', subvolume: true };
    assert.deepEqual(planTreeSnapshot(btrfs, '/d/root', '/d/.s/1', false).argv, [
      'btrfs',
      'subvolume',
      'snapshot',
      '-r',
      '/d/root',
      '/d/.s/1',
    ]);
    assert.deepEqual(planTreeRollback(btrfs, '/d/.s/1', '/d/new').argv, [
      'btrfs',
      'subvolume',
      'snapshot',
      '/d/.s/1',
      '/d/new',
    ]);
    // A plain directory on btrfs is not a subvolume: no btrfs snapshot of it.
    assert.equal(
      planTreeSnapshot({ fsType: 'btrfs', subvolume: false }, 'a', 'b', false).method,
      'reflink-or-copy',
    );
    assert.deepEqual(planTreeSnapshot({ fsType: 'ext2/ext3', subvolume: false }, 'a', 'b', true).argv, [
      'cp',
      '-al',
      '--',
      'a',
      'b',
    ]);
    assert.deepEqual(planTreeSnapshot({ fsType: 'xfs', subvolume: false }, 'a', 'b', false).argv, [
      'cp',
      '-a',
      '--reflink=auto',
      '--',
      'a',
      'b',
    ]);
    // Rollback never hard-links: the live tree is written to.
    assert.equal(
      planTreeRollback({ fsType: 'ext2/ext3', subvolume: false }, 'a', 'b').method,
      'reflink-or-copy',
    );
  });

  it(`on this disk (not btrfs) copies a shared root, and rolls it back in one swap`, async () => {
    const facts = await treeFacts(dir);
    console.log(
      `# ${dir} is on ${facts.fsType}: testing the copy fallback${facts.fsType === 'btrfs' ? ' (btrfs present, but the temp dir is not a subvolume)' : '; btrfs snapshots are not exercised here'}`,
    );
    const live = join(dir, 'sharedroot');
    mkdirSync(join(live, 'etc'), { recursive: true });
    writeFileSync(join(live, 'etc', 'hostname'), 'v1\n');
    const snap = join(dir, 'snap-1');
    const plan = await snapshotTree(live, snap, { immutable: false });
    assert.equal(plan.method, facts.subvolume ? 'btrfs-snapshot' : 'reflink-or-copy');
    writeFileSync(join(live, 'etc', 'hostname'), 'v2 broken\n');
    assert.equal(
      readFileSync(join(snap, 'etc', 'hostname'), 'utf8'),
      'v1\n',
      'the snapshot is independent of the live tree',
    );
    const { previous } = await rollbackTree(snap, live, 'test');
    assert.equal(readFileSync(join(live, 'etc', 'hostname'), 'utf8'), 'v1\n');
    assert.equal(readFileSync(join(previous, 'etc', 'hostname'), 'utf8'), 'v2 broken\n');
    writeFileSync(join(live, 'etc', 'hostname'), 'v3\n');
    assert.equal(
      readFileSync(join(snap, 'etc', 'hostname'), 'utf8'),
      'v1\n',
      'writing the rolled-back tree leaves the snapshot alone',
    );
  });

  it('writes checksums beside a tree snapshot; a rollback of a damaged snapshot is refused', async () => {
    const live = join(dir, 'root-sums');
    mkdirSync(join(live, 'etc'), { recursive: true });
    writeFileSync(join(live, 'etc', 'hostname'), 'good\n');
    symlinkSync('hostname', join(live, 'etc', 'name'));
    const snap = join(dir, 'root-sums-snap');
    await snapshotTree(live, snap, { immutable: false });
    const sums = JSON.parse(readFileSync(treeSumsPath(snap), 'utf8')) as {
      files: Record<string, { sha256?: string; link?: string }>;
    };
    assert.deepEqual(sums.files['etc/name'], { link: 'hostname' });
    assert.equal(sums.files['etc/hostname']?.sha256, createHash('sha256').update('good\n').digest('hex'));
    writeFileSync(join(live, 'etc', 'hostname'), 'changed\n');

    const rotten = (file: string, pattern: RegExp) => (e: unknown) =>
      isCorralError(e) &&
      e.code === 'SNAPSHOT_CORRUPT' &&
      e.details?.['file'] === file &&
      pattern.test(e.message);
    writeFileSync(join(snap, 'etc', 'hostname'), 'goad\n'); // same size, one byte changed
    await assert.rejects(
      rollbackTree(snap, live, 't1'),
      rotten('etc/hostname', /has sha256 [0-9a-f]{64}, not/),
    );
    writeFileSync(join(snap, 'etc', 'hostname'), 'good\n');
    writeFileSync(join(snap, 'etc', 'extra'), 'x');
    await assert.rejects(rollbackTree(snap, live, 't2'), rotten('etc/extra', /was added/));
    rmSync(join(snap, 'etc', 'extra'));
    assert.equal(readFileSync(join(live, 'etc', 'hostname'), 'utf8'), 'changed\n', 'live tree untouched');
    assert.deepEqual(
      readdirSync(dir).filter((f) => /(rollback|prev)-t[12]$/.test(f)),
      [],
      'no staging or previous tree left',
    );
    await rollbackTree(snap, live, 't3');
    assert.equal(readFileSync(join(live, 'etc', 'hostname'), 'utf8'), 'good\n');
  });

  it('hard-links immutable image trees (same inode, no data copied)', async () => {
    const images = join(dir, 'images');
    mkdirSync(images);
    writeFileSync(join(images, 'sha-abc'), Buffer.alloc(4096, 1));
    await snapshotTree(images, join(dir, 'images-snap'), { immutable: true });
    assert.equal(statSync(join(dir, 'images-snap', 'sha-abc')).ino, statSync(join(images, 'sha-abc')).ino);
    await assert.rejects(snapshotTree(images, join(dir, 'images-snap'), { immutable: true }), /exists/);
  });
});

describe('database-aware hooks', () => {
  it('PostgreSQL: backup functions by version, and the start WAL file from backup_label', () => {
    assert.equal(backupFunctions(150004).start("it's", true), "pg_backup_start('it''s', true)");
    assert.equal(backupFunctions(150004).stop, 'pg_backup_stop(false)');
    assert.equal(backupFunctions(140010).start('x', false), "pg_start_backup('x', false, false)");
    const label =
      'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nCHECKPOINT LOCATION: 0/6000060\n';
    assert.equal(startWalFile(label), '000000010000000000000006');
    assert.equal(startWalFile('garbage'), undefined);
  });

  class Recorder implements SqlSession {
    readonly log: string[] = [];
    closed = false;
    constructor(private readonly failOn?: string) {}
    async query(sql: string): Promise<string[][]> {
      this.log.push(sql);
      if (sql === this.failOn) throw new Error(`refused: ${sql}`);
      return sql === 'SHOW MASTER STATUS' ? [['binlog.000003', '157']] : [];
    }
    close(): void {
      this.closed = true;
    }
  }

  it('MySQL: read lock only around the file-system snapshot, released even when the snapshot fails', async () => {
    const ok = new Recorder();
    const steps: string[] = [];
    const r = await snapshotMysql(ok, async () => void steps.push(`fs while ${ok.log.at(-1)}`), {
      instant: true,
    });
    assert.deepEqual(ok.log, ['FLUSH TABLES WITH READ LOCK', 'SHOW MASTER STATUS', 'UNLOCK TABLES']);
    assert.deepEqual(steps, ['fs while SHOW MASTER STATUS']);
    assert.deepEqual(r.binlog, { file: 'binlog.000003', position: '157' });
    assert.ok(ok.closed);

    const failing = new Recorder();
    await assert.rejects(
      snapshotMysql(failing, () => Promise.reject(new Error('btrfs: no space')), { instant: true }),
      /no space/,
    );
    assert.equal(failing.log.at(-1), 'UNLOCK TABLES');
    assert.ok(failing.closed);

    const slow = new Recorder();
    await assert.rejects(
      snapshotMysql(slow, async () => undefined, { instant: false }),
      /block writers for the whole copy/,
    );
    assert.deepEqual(slow.log, [], 'no lock taken without an instant snapshot');
  });

  it('SQLite: an online backup while another connection keeps writing is consistent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-snapshot-sqlite-'));
    try {
      const path = join(dir, 'app.db');
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL)');
      const insert = db.prepare('INSERT INTO t (a, b) VALUES (?, ?)');
      for (let i = 0; i < 5000; i++) insert.run(i, -i);
      // Another process writes pairs whose sum is 0 in one transaction each while the backup runs.
      const writer = startWriter(path);
      let r;
      try {
        const count = db.prepare('SELECT count(*) AS n FROM t');
        const deadline = Date.now() + 15_000;
        while ((count.get() as { n: number }).n < 5200) {
          assert.ok(Date.now() < deadline, 'the writer process started writing');
          await new Promise((res) => setTimeout(res, 20));
        }
        r = await snapshotSqlite(path, join(dir, 'copy.db'));
      } finally {
        writer.kill('SIGKILL');
      }
      db.close();
      const copy = new Database(join(dir, 'copy.db'), { readonly: true });
      assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
      const { s, n } = copy.prepare('SELECT sum(a + b) AS s, count(*) AS n FROM t').get() as {
        s: number;
        n: number;
      };
      assert.equal(s, 0, 'no half-written transaction in the copy');
      assert.ok(n >= 5000);
      copy.close();
      assert.ok(r.pages > 0);
      assert.ok(existsSync(join(dir, 'copy.db')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('diffs configs by dotted key and templates by hash', () => {
    assert.deepEqual(diffConfig({ a: { b: 1, c: [1] }, d: 'x' }, { a: { b: 2, c: [1] }, e: true }), [
      { key: 'a.b', from: 1, to: 2 },
      { key: 'd', from: 'x', to: undefined },
      { key: 'e', from: undefined, to: true },
    ]);
    assert.deepEqual(diffTemplates({ x: '1', y: '2' }, { y: '3', z: '4' }), [
      { file: 'x', change: 'removed' },
      { file: 'y', change: 'changed' },
      { file: 'z', change: 'added' },
    ]);
  });
});

function startWriter(path: string): ChildProcess {
  const script = `
    const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
    const db = new Database(${JSON.stringify(path)}); db.pragma('busy_timeout = 5000');
    const ins = db.prepare('INSERT INTO t (a, b) VALUES (?, ?)');
    const tx = db.transaction((i) => { ins.run(i, 0); ins.run(0, -i); });
    let i = 1; for (;;) tx(i++);`;
  return spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
}
