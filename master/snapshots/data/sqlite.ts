/**
 * Online snapshot of an SQLite database in a node's data path: SQLite's backup API (through
 * better-sqlite3) copies a consistent image page by page while writers carry on; a write from another
 * connection restarts the copy, which SQLite handles itself.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { CorralError } from '../../util/errors.js';

export interface SqliteSnapshotResult {
  method: 'sqlite-backup';
  startedAt: number;
  finishedAt: number;
  pages: number;
}

export async function snapshotSqlite(dbPath: string, target: string): Promise<SqliteSnapshotResult> {
  if (existsSync(target)) throw new CorralError('CONFLICT', `snapshot target ${target} exists`);
  const startedAt = Date.now();
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    const r = await db.backup(target);
    return { method: 'sqlite-backup', startedAt, finishedAt: Date.now(), pages: r.totalPages };
  } catch (err) {
    throw new CorralError(
      'DATA_SNAPSHOT_FAILED',
      `SQLite backup of ${dbPath} failed: ${(err as Error).message}`,
    );
  } finally {
    db?.close();
  }
}
