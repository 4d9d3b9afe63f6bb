/**
 * Restore with the master stopped (`corral snapshot restore ID --data-dir DIR`): the way back from a
 * database the master can no longer open. A healthy database is restored row by row as online (after a
 * safety restore point); a corrupt one is moved aside into a safety restore point as it is and the
 * restore point's database (migrated to this schema) is put in its place. In that second case the change
 * journal restarts from the restore point's, so a backup master must be cloned again (docs/snapshots.md).
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../store/db.js';
import { openRepos, type Repos } from '../store/repos.js';
import { unknownMigrations } from '../store/snapshots.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import {
  checksumRestorePoint,
  DB_FILE,
  listManifests,
  newSnapshotId,
  verifyFile,
  verifyRestorePoint,
  writeManifest,
  type Manifest,
} from './manifest.js';
import { checkDatabase, RestorePoints, type RestoreResult } from './restore-points.js';

const PID_FILE = '.master.pid';

/** The master records its pid in the snapshot folder while it runs; offline restores refuse to run beside it. */
export function markMasterRunning(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, PID_FILE);
  writeFileSync(path, `${process.pid}\n`);
  return () => rmSync(path, { force: true });
}

export function runningMasterPid(dir: string): number | undefined {
  const path = join(dir, PID_FILE);
  if (!existsSync(path)) return undefined;
  const pid = Number(readFileSync(path, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

export type OfflineRestoreResult =
  | ({ mode: 'rows' } & RestoreResult)
  | { mode: 'file'; restored: Manifest; safetyId: string; integrity: string };

export async function restoreOffline(options: {
  dataDir: string;
  dir: string;
  idOrName: string;
  logger: Logger;
}): Promise<OfflineRestoreResult> {
  const pid = runningMasterPid(options.dir);
  if (pid !== undefined) {
    throw new CorralError(
      'SNAPSHOT_MASTER_RUNNING',
      `the master (pid ${pid}) is running on this data directory: restore through it (corral snapshot restore --url ...) or stop it first`,
    );
  }
  const dbPath = join(options.dataDir, 'corral.db');
  let integrity = 'missing';
  let repos: Repos | undefined;
  if (existsSync(dbPath)) {
    try {
      repos = openRepos({ path: dbPath, logger: options.logger });
      integrity = repos.store.integrityCheck();
    } catch (err) {
      // Only a database that cannot be opened or fails its check is swapped; errors of the restore are not.
      integrity = (err as Error).message;
    }
  }
  if (repos && integrity === 'ok') {
    try {
      const points = new RestorePoints({ repos, dir: options.dir, logger: options.logger });
      return { mode: 'rows', ...(await points.restore(options.idOrName, 'cli')) };
    } finally {
      repos.store.close();
    }
  }
  repos?.store.close();
  return swapFile(options, dbPath, integrity);
}

function swapFile(
  options: { dir: string; idOrName: string; logger: Logger },
  dbPath: string,
  integrity: string,
): OfflineRestoreResult {
  const all = listManifests(options.dir);
  const target = all.find((m) => m.id === options.idOrName) ?? all.find((m) => m.name === options.idOrName);
  if (!target)
    throw new CorralError('SNAPSHOT_NOT_FOUND', `no restore point with id or name '${options.idOrName}'`);
  // The restore point is checked before anything is moved: a damaged one leaves the data directory
  // exactly as it was. Its database is checked on the copy that will be used.
  const source = join(options.dir, target.id);
  verifyRestorePoint(source, target, [DB_FILE]);
  const unknown = unknownMigrations(target.migrations);
  if (unknown.length) {
    throw new CorralError(
      'SNAPSHOT_INCOMPATIBLE',
      `restore point ${target.name} has schema version ${target.schemaVersion} (migrations ${unknown.join(', ')} unknown to this Corral): upgrade Corral first`,
    );
  }
  const incoming = `${dbPath}.restore-${process.pid}`;
  copyFileSync(join(source, DB_FILE), incoming);
  try {
    verifyFile(target, incoming, DB_FILE, target.files?.[DB_FILE]);
    checkDatabase(target, incoming);
  } catch (err) {
    rmSync(incoming, { force: true });
    throw err;
  } finally {
    // The read-only check leaves SQLite's empty side files beside the copy.
    for (const suffix of ['-wal', '-shm']) rmSync(incoming + suffix, { force: true });
  }
  const now = new Date();
  const safetyId = newSnapshotId(now);
  const safetyDir = join(options.dir, safetyId);
  mkdirSync(safetyDir, { mode: 0o700 });
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(dbPath + suffix)) renameSync(dbPath + suffix, join(safetyDir, DB_FILE + suffix));
  }
  writeManifest(safetyDir, {
    format: 1,
    id: safetyId,
    name: safetyId,
    note: `database moved aside by an offline restore: ${integrity}`.slice(0, 500),
    kind: 'safety',
    reason: `before offline restore of ${target.name}`,
    createdAt: now.toISOString(),
    actor: 'cli',
    corralVersion: VERSION,
    schemaVersion: 0,
    migrations: [],
    dbBytes: 0,
    durationMs: 0,
    images: [],
    templates: {},
    hasConfig: false,
    corrupt: true,
    files: checksumRestorePoint(safetyDir),
  });
  renameSync(incoming, dbPath);
  // Opening the store migrates the copy to this Corral's schema.
  openStore({ path: dbPath, logger: options.logger }).close();
  options.logger.warn({ id: target.id, safetyId }, 'database file replaced by restore point');
  return { mode: 'file', restored: target, safetyId, integrity };
}
