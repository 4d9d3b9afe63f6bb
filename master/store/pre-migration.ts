/**
 * The database as it was before a newer Corral migrates it (an upgrade's first start). The Store
 * migrates as it opens, and a restore point needs an open store, so the copy is taken first, by
 * `stagePreMigrationCopy`, into a file the master then turns into a restore point and deletes
 * (master.ts). Left behind by a crash in between, the file is still turned into one at the next start:
 * it is a complete database and says its own schema version.
 */
import Database from 'better-sqlite3';
import { existsSync, rmSync } from 'node:fs';
import { CorralError } from '../util/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { appliedMigrations } from './snapshots.js';

/** Name of the staged copy in the data directory. */
export const PRE_MIGRATION_FILE = 'pre-migration.db';

export interface PreMigration {
  /** Highest migration applied to the copy. */
  from: number;
  /** This Corral's schema version, the one the database is being brought to. */
  to: number;
}

/**
 * Copies `dbPath` to `copyPath` when migrations of this Corral are not yet applied to it; returns the
 * versions, or undefined (no database yet: a first start has nothing to keep; or nothing to migrate).
 */
export function stagePreMigrationCopy(dbPath: string, copyPath: string): PreMigration | undefined {
  if (!existsSync(dbPath)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { fileMustExist: true });
    const applied = appliedMigrations(db);
    const pending = MIGRATIONS.filter((m) => !applied.includes(m.version));
    if (!applied.length || !pending.length) return undefined;
    rmSync(copyPath, { force: true });
    // VACUUM INTO writes one consistent file with the WAL folded in, and leaves the source untouched.
    db.prepare('VACUUM INTO ?').run(copyPath);
    return { from: Math.max(...applied), to: SCHEMA_VERSION };
  } catch (err) {
    rmSync(copyPath, { force: true });
    throw new CorralError(
      'STORE_FAILED',
      `cannot copy database ${dbPath} before migrating it: ${(err as Error).message}`,
    );
  } finally {
    db?.close();
  }
}

/** The schema version of a staged copy (one left by a crash is read back this way). */
export function stagedCopyVersion(copyPath: string): number {
  const db = new Database(copyPath, { readonly: true, fileMustExist: true });
  try {
    return Math.max(0, ...appliedMigrations(db));
  } finally {
    db.close();
  }
}
