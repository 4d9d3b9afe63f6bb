/**
 * Online snapshots of a PostgreSQL data directory, without stopping the server or blocking its writers.
 *
 * Method `backup-api` (PostgreSQL manual, "Making a Base Backup Using the Low Level API", §26.3.3):
 * in one session, `pg_backup_start(label, fast)` (a checkpoint, after which full-page writes make any torn
 * page in the copy repairable from WAL), copy the data directory while the server runs, then
 * `pg_backup_stop(false)`, which returns the backup_label contents and switches WAL so the last segment
 * the backup needs is complete. The WAL from the start checkpoint to the stop location is copied after
 * stop, so the snapshot restores on its own (no WAL archive needed). Writers are never locked; the only
 * disturbance is the checkpoint's I/O, which the integration test measures as a write stall.
 * Versions before 15 use pg_start_backup/pg_stop_backup (same semantics, non-exclusive mode).
 *
 * Method `basebackup`: `pg_basebackup -X stream -c fast`, over a replication connection (needs a role
 * with REPLICATION and a pg_hba entry); the server streams a consistent copy with its WAL.
 *
 * Restore: copy the snapshot to an empty directory and start PostgreSQL on it: with backup_label present
 * it replays WAL from the backup's checkpoint to (at least) the backup's end, reaching a consistent
 * state holding every transaction committed before pg_backup_stop returned.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../../util/errors.js';
import { copyLiveTree, type CopyStats } from './copy-tree.js';
import { PsqlSession, type PgConnection } from './psql-session.js';

const exec = promisify(execFile);

/** Contents PostgreSQL rebuilds at start and the backup documentation says to leave out (§26.3.3). */
export const PG_SKIP = [
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'tablespace_map',
  'backup_label.old',
];
export const PG_SKIP_CONTENTS = [
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
];

export interface PgSnapshotResult {
  method: 'backup-api' | 'basebackup';
  startLsn?: string;
  stopLsn?: string;
  /** Wall-clock marks (epoch ms): backup started (checkpoint done), stopped, snapshot complete. */
  startedAt: number;
  backupStartedAt: number;
  backupStoppedAt: number;
  finishedAt: number;
  copy?: CopyStats;
  walSegments?: number;
}

export interface PgSnapshotOptions {
  /** The live data directory (PGDATA). */
  dataDir: string;
  /** Where the snapshot goes; must not exist. */
  target: string;
  conn: PgConnection;
  label?: string;
  /** Immediate checkpoint at start (fast, but an I/O burst) instead of a spread one. */
  fastCheckpoint?: boolean;
}

/** The pair of backup functions by server version (renamed in PostgreSQL 15). */
export function backupFunctions(serverVersionNum: number): {
  start: (label: string, fast: boolean) => string;
  stop: string;
} {
  // Before 15 the third argument chooses non-exclusive mode (exclusive backups were removed in 15).
  return serverVersionNum >= 150000
    ? {
        start: (label, fast) => `pg_backup_start(${sqlString(label)}, ${fast})`,
        stop: 'pg_backup_stop(false)',
      }
    : {
        start: (label, fast) => `pg_start_backup(${sqlString(label)}, ${fast}, false)`,
        stop: 'pg_stop_backup(false, false)',
      };
}

/** The WAL file the backup starts in, from backup_label's "START WAL LOCATION: 0/2000028 (file 00000001...)". */
export function startWalFile(label: string): string | undefined {
  return /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(label)?.[1];
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

const b64 = (expr: string): string =>
  `translate(encode(convert_to(coalesce(${expr}, ''), 'UTF8'), 'base64'), E'\\n', '')`;

export async function snapshotPostgres(options: PgSnapshotOptions): Promise<PgSnapshotResult> {
  const startedAt = Date.now();
  if (existsSync(options.target))
    throw new CorralError('CONFLICT', `snapshot target ${options.target} exists`);
  const tablespaces = join(options.dataDir, 'pg_tblspc');
  if (existsSync(tablespaces) && readdirSync(tablespaces).length) {
    throw new CorralError(
      'DATA_SNAPSHOT_FAILED',
      'tablespaces outside the data directory are not supported; use method basebackup',
    );
  }
  const session = new PsqlSession(options.conn);
  try {
    const [[version = '0'] = []] = await session.query('SHOW server_version_num');
    const fn = backupFunctions(Number(version));
    const label = options.label ?? `corral ${new Date(startedAt).toISOString()}`;
    const [[startLsn = ''] = []] = await session.query(
      `SELECT ${fn.start(label, options.fastCheckpoint !== false)}`,
    );
    const backupStartedAt = Date.now();
    const copy = await copyLiveTree(options.dataDir, options.target, {
      skip: PG_SKIP,
      skipContents: PG_SKIP_CONTENTS,
      followLinks: ['pg_wal'],
    });
    const [[stopLsn = '', labelB64 = '', mapB64 = ''] = []] = await session.query(
      `SELECT lsn, ${b64('labelfile')}, ${b64('spcmapfile')} FROM ${fn.stop}`,
    );
    const backupStoppedAt = Date.now();
    const labelFile = Buffer.from(labelB64, 'base64').toString('utf8');
    const mapFile = Buffer.from(mapB64, 'base64').toString('utf8');
    if (!labelFile.startsWith('START WAL LOCATION')) {
      throw new CorralError('DATA_SNAPSHOT_FAILED', `unexpected backup label from ${fn.stop}`);
    }
    // The WAL the backup needs, copied after stop: stop switched segments, so the last one is complete.
    const wal = await copyLiveTree(join(options.dataDir, 'pg_wal'), join(options.target, 'pg_wal'), {
      skipContents: ['archive_status'],
    });
    const first = startWalFile(labelFile);
    if (!first || !existsSync(join(options.target, 'pg_wal', first))) {
      throw new CorralError(
        'DATA_SNAPSHOT_FAILED',
        `WAL segment ${first ?? '?'} where the backup starts was recycled during the copy; raise wal_keep_size or use method basebackup`,
      );
    }
    // Owned like the data directory: the server reads backup_label as its own user at first start.
    const owner = statSync(options.dataDir);
    for (const [name, text] of [
      ['backup_label', labelFile],
      ['tablespace_map', mapFile],
    ] as const) {
      if (!text) continue;
      writeFileSync(join(options.target, name), text, { mode: 0o600 });
      if (process.getuid?.() === 0) chownSync(join(options.target, name), owner.uid, owner.gid);
    }
    return {
      method: 'backup-api',
      startLsn,
      stopLsn,
      startedAt,
      backupStartedAt,
      backupStoppedAt,
      finishedAt: Date.now(),
      copy,
      walSegments: wal.files,
    };
  } catch (err) {
    await rm(options.target, { recursive: true, force: true });
    if (err instanceof CorralError) throw err;
    throw new CorralError('DATA_SNAPSHOT_FAILED', `PostgreSQL snapshot failed: ${(err as Error).message}`);
  } finally {
    // Ending the session aborts a backup still in progress (after a failure); after stop it is a no-op.
    session.close();
  }
}

/** `pg_basebackup` into `target` (plain format, WAL streamed alongside, fast checkpoint). */
export async function basebackupPostgres(
  options: Omit<PgSnapshotOptions, 'dataDir'> & { pgBasebackup?: string },
): Promise<PgSnapshotResult> {
  const startedAt = Date.now();
  const { conn } = options;
  try {
    await exec(
      options.pgBasebackup ?? 'pg_basebackup',
      [
        '-D',
        options.target,
        '-X',
        'stream',
        '-c',
        options.fastCheckpoint === false ? 'spread' : 'fast',
        '-h',
        conn.host,
        '-p',
        String(conn.port),
        '-U',
        conn.user,
        '--no-password',
        '-l',
        options.label ?? 'corral',
      ],
      { maxBuffer: 1 << 20, timeout: 3_600_000 },
    );
  } catch (err) {
    await rm(options.target, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new CorralError('DATA_SNAPSHOT_FAILED', `pg_basebackup failed: ${(e.stderr || e.message).trim()}`);
  }
  const finishedAt = Date.now();
  return {
    method: 'basebackup',
    startedAt,
    backupStartedAt: startedAt,
    backupStoppedAt: finishedAt,
    finishedAt,
  };
}

/**
 * Puts a snapshot into `dataDir` (which must not exist or be empty), ready for `pg_ctl start`: the server
 * recovers from backup_label on its first start. Ownership is kept (run as root, the files stay the
 * database user's) or set to `owner` (a pg_basebackup run as root); the directory is made 0700 as
 * PostgreSQL requires.
 */
export async function restorePostgres(
  snapshot: string,
  dataDir: string,
  options: { owner?: { uid: number; gid: number } } = {},
): Promise<CopyStats> {
  if (existsSync(dataDir) && readdirSync(dataDir).length) {
    throw new CorralError('CONFLICT', `restore target ${dataDir} is not empty`);
  }
  const stats = await copyLiveTree(snapshot, dataDir, options.owner ? { owner: options.owner } : {});
  await chmod(dataDir, 0o700);
  return stats;
}
