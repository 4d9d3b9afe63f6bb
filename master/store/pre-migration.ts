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
import { MIGRATIONS } from './migrations.js';
import { appliedMigrations } from './snapshots.js';

/** Name of the staged copy in the data directory. */
export const PRE_MIGRATION_FILE = 'pre-migration.db';

export interface PreMigration {
  /** Migrations applied to the copy. */
  applied: number[];
  /** This Corral's migrations it lacks, ascending (not always above `applied`: branches fill gaps). */
  pending: number[];
}

function compare(applied: number[]): PreMigration {
  const pending = MIGRATIONS.map((m) => m.version)
    .filter((v) => !applied.includes(v))
    .sort((a, b) => a - b);
  return { applied, pending };
}

/**
 * Copies `dbPath` to `copyPath` when migrations of this Corral are not yet applied to it; returns the
 * migrations, or undefined (no database yet: a first start has nothing to keep; or nothing to migrate).
 */
export function stagePreMigrationCopy(dbPath: string, copyPath: string): PreMigration | undefined {
  if (!existsSync(dbPath)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { fileMustExist: true });
    const state = compare(appliedMigrations(db));
    if (!state.applied.length || !state.pending.length) return undefined;
    rmSync(copyPath, { force: true });
    // VACUUM INTO writes one consistent file with the WAL folded in, and leaves the source untouched.
    db.prepare('VACUUM INTO ?').run(copyPath);
    return state;
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

/** What a staged copy lacks (one left by a crash is read back this way). */
export function stagedCopyMigrations(copyPath: string): PreMigration {
  const db = new Database(copyPath, { readonly: true, fileMustExist: true });
  try {
    return compare(appliedMigrations(db));
  } finally {
    db.close();
  }
}
