/**
 * The store side of restore points (issue #9): an online consistent copy of the whole database, a diff
 * of two databases that knows nothing of any one aggregate (tables are discovered, keys read from their
 * primary keys), and a row-level restore that goes through `Store.write` so every row it puts back is
 * journaled like any other change (a backup master follows a restore through its change feed).
 */
import Database from 'better-sqlite3';
import { JOURNALED, type Db, type JournaledTable, type Store } from './db.js';
import { MIGRATIONS } from './migrations.js';

/**
 * Journaled tables a restore leaves alone, and why. Everything else in JOURNALED is restored, so a table
 * another feature adds to JOURNALED is covered without a change here.
 */
export const NOT_RESTORED: Readonly<Partial<Record<JournaledTable, string>>> = {
  events: 'the event log is an append-only audit trail; the restore itself is recorded in it',
  leases: 'live DHCP leases: rolling them back would hand addresses in use to other machines',
};

/** Whether a restore puts this table's rows back. */
export function isRestoredTable(table: string): boolean {
  return Object.hasOwn(JOURNALED, table) && !Object.hasOwn(NOT_RESTORED, table);
}

/** Settings that belong to this master's place in an HA pair, never to a restore point (an epoch must not go back). */
const LOCAL_SETTING_PREFIXES = ['ha.'];

/** Tables that are per-database machinery, not data: never diffed. */
const INTERNAL_TABLES = new Set(['changes', 'schema_migrations', 'sessions']);

export interface RowChange {
  key: string;
  change: 'added' | 'removed' | 'changed';
  /** For `changed`: the columns whose values differ. */
  fields?: string[];
}

export interface TableDiff {
  table: string;
  added: number;
  removed: number;
  changed: number;
  /** The first `rowLimit` changes, ordered by key. */
  rows: RowChange[];
  truncated: boolean;
}

export interface RestoreSummary {
  /** Rows put back or removed, per table (only tables with changes). */
  tables: Record<string, { upserted: number; deleted: number }>;
  skipped: Record<string, string>;
}

/** Opens a database file read-only (a restore point's copy, or the live file from another process). */
export function openReadOnly(path: string): Db {
  return new Database(path, { readonly: true, fileMustExist: true });
}

/** Versions recorded in a database's schema_migrations (empty for a database that has none). */
export function appliedMigrations(db: Db): number[] {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (!exists) return [];
  return (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map(
    (r) => r.version,
  );
}

/** Migrations a database has that this Corral does not know: such a database cannot be restored here. */
export function unknownMigrations(versions: readonly number[]): number[] {
  const known = new Set(MIGRATIONS.map((m) => m.version));
  return versions.filter((v) => !known.has(v));
}

function userTables(db: Db): string[] {
  return (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as { name: string }[]
  )
    .map((r) => r.name)
    .filter((n) => !INTERNAL_TABLES.has(n));
}

interface Column {
  name: string;
  pk: number;
}

function columnsOf(db: Db, table: string): Column[] {
  return db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Column[];
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Rows of a table keyed by its primary key (columns joined by '/'), or by rowid when it has none. */
function keyedRows(db: Db, table: string): Map<string, Record<string, unknown>> {
  const cols = columnsOf(db, table);
  const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  const select = pk.length
    ? `SELECT * FROM ${quoteIdent(table)}`
    : `SELECT rowid AS "__rowid", * FROM ${quoteIdent(table)}`;
  const out = new Map<string, Record<string, unknown>>();
  for (const row of db.prepare(select).all() as Record<string, unknown>[]) {
    const key = pk.length ? pk.map((c) => String(row[c.name])).join('/') : String(row['__rowid']);
    delete row['__rowid'];
    out.set(key, row);
  }
  return out;
}

function differingFields(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((n) => !sameValue(a[n], b[n])).sort();
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

/**
 * What changed from database `from` to database `to`, table by table, over every table either holds
 * (nodes, services, settings, images, and whatever later features add). Counts are exact; `rows` lists
 * at most `rowLimit` changes per table.
 */
export function diffDatabases(from: Db, to: Db, rowLimit = 100): TableDiff[] {
  const tables = [...new Set([...userTables(from), ...userTables(to)])].sort();
  const fromTables = new Set(userTables(from));
  const toTables = new Set(userTables(to));
  const out: TableDiff[] = [];
  for (const table of tables) {
    const a = fromTables.has(table) ? keyedRows(from, table) : new Map<string, Record<string, unknown>>();
    const b = toTables.has(table) ? keyedRows(to, table) : new Map<string, Record<string, unknown>>();
    const changes: RowChange[] = [];
    for (const [key, row] of a) {
      const other = b.get(key);
      if (!other) changes.push({ key, change: 'removed' });
      else {
        const fields = differingFields(row, other);
        if (fields.length) changes.push({ key, change: 'changed', fields });
      }
    }
    for (const key of b.keys()) if (!a.has(key)) changes.push({ key, change: 'added' });
    if (!changes.length) continue;
    changes.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    out.push({
      table,
      added: changes.filter((c) => c.change === 'added').length,
      removed: changes.filter((c) => c.change === 'removed').length,
      changed: changes.filter((c) => c.change === 'changed').length,
      rows: changes.slice(0, rowLimit),
      truncated: changes.length > rowLimit,
    });
  }
  return out;
}

function isLocalSetting(table: string, key: string): boolean {
  return table === 'settings' && LOCAL_SETTING_PREFIXES.some((p) => key.startsWith(p));
}

/** The store's side of restore points. */
export class SnapshotStore {
  constructor(private readonly store: Store) {}

  /** An online, consistent copy of the whole database (SQLite's backup API; writers are not blocked). */
  async backupTo(path: string): Promise<void> {
    await this.store.db.backup(path);
  }

  appliedMigrations(): number[] {
    return appliedMigrations(this.store.db);
  }

  /** Diff from a restore point's database to the live one. */
  diffFrom(snapshot: Db, rowLimit?: number): TableDiff[] {
    return diffDatabases(snapshot, this.store.db, rowLimit);
  }

  /**
   * Makes every restorable journaled table hold exactly the rows of `source` (a database already at this
   * schema), in one transaction through `Store.write`, journaling each row it puts back or removes.
   * Rows that already match are not touched, so a restore to the current state journals nothing.
   *
   * Two passes: first every row that goes or changes is deleted, then rows are (re)inserted against a
   * fresh read. Deleting first lets unique columns move between rows (two nodes swapping names), and the
   * second pass repairs rows an ON DELETE CASCADE took along. Foreign keys are checked at commit.
   */
  restoreFrom(source: Db): RestoreSummary {
    const tables = (Object.keys(JOURNALED) as JournaledTable[]).filter((t) => !NOT_RESTORED[t]);
    const live = new Set(userTables(this.store.db));
    const present = new Set(userTables(source).filter((t) => live.has(t)));
    const wanted = new Map<JournaledTable, Map<string, Record<string, unknown>>>();
    for (const t of tables) {
      if (!present.has(t)) continue;
      wanted.set(t, keyedByJournalKey(source, t));
    }
    const summary: RestoreSummary = {
      tables: {},
      skipped: Object.fromEntries(Object.entries(NOT_RESTORED)) as Record<string, string>,
    };
    const count = (t: string, what: 'upserted' | 'deleted'): void => {
      const entry = (summary.tables[t] ??= { upserted: 0, deleted: 0 });
      entry[what] += 1;
    };
    const db = this.store.db;
    this.store.write((journal) => {
      db.pragma('defer_foreign_keys = ON');
      // Pass 1: remove rows that are gone in the restore point, and rows about to change.
      for (const [t, rows] of wanted) {
        const keyCol = JOURNALED[t];
        const del = db.prepare(`DELETE FROM ${quoteIdent(t)} WHERE ${quoteIdent(keyCol)} = ?`);
        for (const [key, row] of keyedByJournalKey(db, t)) {
          if (isLocalSetting(t, key)) continue;
          const want = rows.get(key);
          if (want && !differingFields(row, want).length) continue;
          del.run(row[keyCol] as string | number);
          // Journaled even for a row that comes back in pass 2: a follower must delete it too, or
          // re-inserting a row whose unique column moved would collide there.
          journal(t, key, 'delete');
          if (!want) count(t, 'deleted');
        }
      }
      // Pass 2: insert what is missing now (changed rows, rows the restore point adds, cascaded rows).
      for (const [t, rows] of wanted) {
        const keyCol = JOURNALED[t];
        const current = keyedByJournalKey(db, t);
        const liveCols = new Set(columnsOf(db, t).map((c) => c.name));
        for (const [key, row] of rows) {
          if (isLocalSetting(t, key) || current.has(key)) continue;
          const cols = Object.keys(row).filter((c) => liveCols.has(c));
          db.prepare(
            `INSERT INTO ${quoteIdent(t)} (${cols.map(quoteIdent).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
          ).run(...cols.map((c) => row[c] as string | number | null | Buffer));
          journal(t, key, 'upsert', this.store.row(t, row[keyCol] as string | number));
          count(t, 'upserted');
        }
      }
    });
    return summary;
  }
}

function keyedByJournalKey(db: Db, table: JournaledTable): Map<string, Record<string, unknown>> {
  const keyCol = JOURNALED[table];
  const out = new Map<string, Record<string, unknown>>();
  for (const row of db.prepare(`SELECT * FROM ${quoteIdent(table)}`).all() as Record<string, unknown>[]) {
    out.set(String(row[keyCol]), row);
  }
  return out;
}

/** The image catalogue a database references (images are content-addressed files, referenced not copied). */
export function imageCatalogue(db: Db): { sha256: string; name: string }[] {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'images'").get();
  if (!exists) return [];
  return db.prepare('SELECT sha256, name FROM images ORDER BY name').all() as { sha256: string; name: string }[];
}

/** SQLite's own check of a database file: 'ok' or the first problems it found. */
export function integrityOf(db: Db): string {
  return String(db.pragma('integrity_check', { simple: true }));
}
