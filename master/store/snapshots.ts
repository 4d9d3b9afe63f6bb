/**
 * The store side of restore points (issue #9): an online consistent copy of the whole database, a diff
 * of two databases that knows nothing of any one aggregate (tables are discovered, keys read from their
 * primary keys), and a row-level restore that goes through `Store.write` so every row it puts back is
 * journaled like any other change (a backup master follows a restore through its change feed).
 */
import Database from 'better-sqlite3';
import { sqliteOf, JOURNALED, type Db, type JournaledTable, type SqliteStore, type Store } from './db.js';
import { MIGRATIONS } from './migrations.js';

/**
 * Journaled tables a restore leaves alone, and why. Everything else in JOURNALED is restored, so a table
 * another feature adds to JOURNALED is covered without a change here.
 */
export const NOT_RESTORED: Readonly<Partial<Record<JournaledTable, string>>> = {
  events: 'the event log is an append-only audit trail; the restore itself is recorded in it',
  leases: 'live DHCP leases: rolling them back would hand addresses in use to other machines',
  dhcp6_leases: 'live DHCPv6 leases, for the same reason as the DHCP leases',
  deployments: 'deployment history is a log, like events (the nodes and their image references are restored)',
};

/** Whether a restore puts this table's rows back. */
export function isRestoredTable(table: string): boolean {
  return Object.hasOwn(JOURNALED, table) && !Object.hasOwn(NOT_RESTORED, table);
}

/** Settings that belong to this master's place in an HA pair, never to a restore point (an epoch must not go back). */
const LOCAL_SETTING_PREFIXES = ['ha.'];

/** Tables that are per-database machinery, not data: never diffed. */
const INTERNAL_TABLES = new Set(['changes', 'schema_migrations', 'sessions']);
/** Derived tables kept by triggers (migration 23: a search index and counters): not data either. */
const DERIVED = /^(node_search|node_list_generation$|event_count$)/;

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
function openReadOnly(path: string): Db {
  return new Database(path, { readonly: true, fileMustExist: true });
}

/** Runs `fn` on a database file opened read-only, and closes it. */
function withReadOnly<T>(path: string, fn: (db: Db) => T): T {
  const db = openReadOnly(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Versions recorded in a database's schema_migrations (empty for a database that has none). */
export function appliedMigrations(db: Db): number[] {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (!exists) return [];
  return (
    db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]
  ).map((r) => r.version);
}

/** Migrations a database has that this Corral does not know: such a database cannot be restored here. */
export function unknownMigrations(versions: readonly number[]): number[] {
  const known = new Set(MIGRATIONS.map((m) => m.version));
  return versions.filter((v) => !known.has(v));
}

function userTables(db: Db): string[] {
  return (
    db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .all() as { name: string }[]
  )
    .map((r) => r.name)
    .filter((n) => !INTERNAL_TABLES.has(n) && !DERIVED.test(n));
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

type KeyValue = string | number | bigint | Buffer | null;
type Key = KeyValue[];

interface TableComparison {
  /** Keys only in `a`, only in `b`, and in both with different values (all, or the first `limit`). */
  onlyA: Key[];
  onlyB: Key[];
  changed: Key[];
  counts: { onlyA: number; onlyB: number; changed: number };
  keyCols: string[];
}

/**
 * One scratch connection with both databases attached (`a`, `b`), so the comparison runs inside SQLite
 * (joins on the key) rather than row by row in JavaScript: 50k nodes compare in well under a second.
 * Both files are only read; a live database in WAL mode is read at its last committed state.
 */
function openPair(aPath: string, bPath: string): Db {
  const pair = new Database(':memory:');
  pair.prepare('ATTACH DATABASE ? AS a').run(aPath);
  pair.prepare('ATTACH DATABASE ? AS b').run(bPath);
  return pair;
}

function hasTable(pair: Db, schema: 'a' | 'b', table: string): boolean {
  return !!pair.prepare(`SELECT 1 FROM ${schema}.sqlite_master WHERE type = 'table' AND name = ?`).get(table);
}

function schemaColumns(pair: Db, schema: 'a' | 'b', table: string): Column[] {
  return pair.prepare(`PRAGMA ${schema}.table_info(${quoteIdent(table)})`).all() as Column[];
}

function primaryKey(cols: Column[]): string[] {
  const pk = cols
    .filter((c) => c.pk > 0)
    .sort((x, y) => x.pk - y.pk)
    .map((c) => c.name);
  return pk.length ? pk : ['rowid'];
}

function compareTable(pair: Db, table: string, keyCols?: string[], limit?: number): TableComparison {
  const inA = hasTable(pair, 'a', table);
  const inB = hasTable(pair, 'b', table);
  const colsA = inA ? schemaColumns(pair, 'a', table) : [];
  const colsB = inB ? schemaColumns(pair, 'b', table) : [];
  const keys = keyCols ?? primaryKey(colsA.length ? colsA : colsB);
  const t = quoteIdent(table);
  const sel = (alias: string): string => keys.map((k) => `${alias}.${quoteIdent(k)}`).join(', ');
  const order = ` ORDER BY ${keys.map((_, i) => i + 1).join(', ')}`;
  const lim = limit !== undefined ? ` LIMIT ${limit}` : '';
  const rows = (sql: string): Key[] =>
    pair
      .prepare(sql + order + lim)
      .raw()
      .all() as Key[];
  const count = (sql: string): number => Number(pair.prepare(`SELECT count(*) FROM (${sql})`).pluck().get());
  const on = keys.map((k) => `x.${quoteIdent(k)} = y.${quoteIdent(k)}`).join(' AND ');
  const onlyASql = !inA
    ? ''
    : inB
      ? `SELECT ${sel('x')} FROM a.${t} x WHERE NOT EXISTS (SELECT 1 FROM b.${t} y WHERE ${on})`
      : `SELECT ${sel('x')} FROM a.${t} x`;
  const onlyBSql = !inB
    ? ''
    : inA
      ? `SELECT ${sel('y')} FROM b.${t} y WHERE NOT EXISTS (SELECT 1 FROM a.${t} x WHERE ${on})`
      : `SELECT ${sel('y')} FROM b.${t} y`;
  const namesB = new Set(colsB.map((c) => c.name));
  const compared = colsA.map((c) => c.name).filter((c) => namesB.has(c) && !keys.includes(c));
  const changedSql =
    inA && inB && compared.length
      ? `SELECT ${sel('x')} FROM a.${t} x JOIN b.${t} y ON ${on} WHERE ` +
        compared.map((c) => `x.${quoteIdent(c)} IS NOT y.${quoteIdent(c)}`).join(' OR ')
      : '';
  return {
    onlyA: onlyASql ? rows(onlyASql) : [],
    onlyB: onlyBSql ? rows(onlyBSql) : [],
    changed: changedSql ? rows(changedSql) : [],
    counts: {
      onlyA: onlyASql ? count(onlyASql) : 0,
      onlyB: onlyBSql ? count(onlyBSql) : 0,
      changed: changedSql ? count(changedSql) : 0,
    },
    keyCols: keys,
  };
}

function keyString(key: Key): string {
  return key.map((v) => String(v)).join('/');
}

function rowByKey(
  db: Db,
  schema: string,
  table: string,
  keyCols: string[],
  key: Key,
): Record<string, unknown> {
  const where = keyCols.map((k) => `${quoteIdent(k)} = ?`).join(' AND ');
  return (db.prepare(`SELECT * FROM ${schema}.${quoteIdent(table)} WHERE ${where}`).get(...key) ??
    {}) as Record<string, unknown>;
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
 * at most `rowLimit` changes per kind and table, ordered by key.
 */
export function diffDatabaseFiles(fromPath: string, toPath: string, rowLimit?: number): TableDiff[] {
  return withReadOnly(fromPath, (from) => withReadOnly(toPath, (to) => diffDatabases(from, to, rowLimit)));
}

function diffDatabases(from: Db, to: Db, rowLimit = 100): TableDiff[] {
  const tables = [...new Set([...userTables(from), ...userTables(to)])].sort();
  const pair = openPair(from.name, to.name);
  try {
    const out: TableDiff[] = [];
    for (const table of tables) {
      const c = compareTable(pair, table, undefined, rowLimit);
      const total = c.counts.onlyA + c.counts.onlyB + c.counts.changed;
      if (!total) continue;
      const changes: RowChange[] = [
        ...c.onlyA.map((k): RowChange => ({ key: keyString(k), change: 'removed' })),
        ...c.onlyB.map((k): RowChange => ({ key: keyString(k), change: 'added' })),
        ...c.changed.map((k): RowChange => ({
          key: keyString(k),
          change: 'changed',
          fields: differingFields(
            rowByKey(pair, 'a', table, c.keyCols, k),
            rowByKey(pair, 'b', table, c.keyCols, k),
          ),
        })),
      ].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
      out.push({
        table,
        added: c.counts.onlyB,
        removed: c.counts.onlyA,
        changed: c.counts.changed,
        rows: changes.slice(0, rowLimit),
        truncated: total > rowLimit,
      });
    }
    return out;
  } finally {
    pair.close();
  }
}

function isLocalSetting(table: string, key: string): boolean {
  return table === 'settings' && LOCAL_SETTING_PREFIXES.some((p) => key.startsWith(p));
}

/** The store's side of restore points. */
export class SnapshotStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  /** Diff from a restore point's database file to the live one. */
  diffFrom(snapshotPath: string, rowLimit?: number): TableDiff[] {
    return withReadOnly(snapshotPath, (snapshot) => diffDatabases(snapshot, this.store.db, rowLimit));
  }

  /**
   * Makes every restorable journaled table hold exactly the rows of the database file `sourcePath`
   * (already at this schema), in one transaction through `Store.write`, journaling each row it puts back or removes.
   * Rows that already match are not touched, so a restore to the current state journals nothing.
   *
   * Two passes: first every row that goes or changes is deleted, then rows are (re)inserted against a
   * fresh read. Deleting first lets unique columns move between rows (two nodes swapping names), and the
   * second pass repairs rows an ON DELETE CASCADE took along. Foreign keys are checked at commit.
   */
  restoreFrom(sourcePath: string): RestoreSummary {
    return withReadOnly(sourcePath, (source) => this.restoreRows(source));
  }

  private restoreRows(source: Db): RestoreSummary {
    const db = this.store.db;
    const live = new Set(userTables(db));
    const tables = (Object.keys(JOURNALED) as JournaledTable[]).filter(
      (t) => !NOT_RESTORED[t] && live.has(t) && userTables(source).includes(t),
    );
    // Which rows differ, computed by SQLite on a scratch connection. Synchronous, and before the write
    // below with nothing in between, so no other write of this process can slip in.
    const pair = openPair(source.name, db.name);
    const plans = new Map<JournaledTable, { remove: Key[]; insert: Key[] }>();
    try {
      for (const t of tables) {
        const c = compareTable(pair, t, [JOURNALED[t]]);
        plans.set(t, { remove: [...c.onlyB, ...c.changed], insert: [...c.onlyA, ...c.changed] });
      }
    } finally {
      pair.close();
    }
    const summary: RestoreSummary = {
      tables: {},
      skipped: Object.fromEntries(Object.entries(NOT_RESTORED)) as Record<string, string>,
    };
    const count = (t: string, what: 'upserted' | 'deleted', n: number): void => {
      if (!n) return;
      const entry = (summary.tables[t] ??= { upserted: 0, deleted: 0 });
      entry[what] += n;
    };
    this.store.write((journal) => {
      db.pragma('defer_foreign_keys = ON');
      // Pass 1: rows gone in the restore point, and rows about to change, are deleted (and journaled:
      // a follower must delete them too, or re-inserting a row whose unique column moved collides there).
      const deletedFrom = new Set<string>();
      for (const [t, plan] of plans) {
        const keyCol = JOURNALED[t];
        const del = db.prepare(`DELETE FROM ${quoteIdent(t)} WHERE ${quoteIdent(keyCol)} = ?`);
        let gone = 0;
        const inserting = new Set(plan.insert.map(keyString));
        for (const key of plan.remove) {
          const k = keyString(key);
          if (isLocalSetting(t, k)) continue;
          del.run(key[0] ?? null);
          journal(t, k, 'delete');
          deletedFrom.add(t);
          if (!inserting.has(k)) gone++;
        }
        count(t, 'deleted', gone);
      }
      // Pass 2: the restore point's rows are inserted; in tables whose rows an ON DELETE CASCADE may
      // have taken along with a deleted parent, every missing row of the restore point is put back.
      for (const [t, plan] of plans) {
        const keyCol = JOURNALED[t];
        const keys = new Map(plan.insert.map((k) => [keyString(k), k]));
        const cascades = (
          db.prepare(`PRAGMA foreign_key_list(${quoteIdent(t)})`).all() as {
            table: string;
            on_delete: string;
          }[]
        ).some((fk) => fk.on_delete === 'CASCADE' && deletedFrom.has(fk.table));
        if (cascades) {
          const exists = db.prepare(`SELECT 1 FROM ${quoteIdent(t)} WHERE ${quoteIdent(keyCol)} = ?`);
          for (const key of source
            .prepare(`SELECT ${quoteIdent(keyCol)} FROM ${quoteIdent(t)}`)
            .raw()
            .all() as Key[]) {
            if (!exists.get(key[0] ?? null)) keys.set(keyString(key), key);
          }
        }
        const liveCols = new Set(columnsOf(db, t).map((c) => c.name));
        let put = 0;
        for (const [k, key] of keys) {
          if (isLocalSetting(t, k)) continue;
          const row = rowByKey(source, 'main', t, [keyCol], key);
          const cols = Object.keys(row).filter((c) => liveCols.has(c));
          db.prepare(
            `INSERT INTO ${quoteIdent(t)} (${cols.map(quoteIdent).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
          ).run(...cols.map((c) => row[c] as KeyValue));
          journal(t, k, 'upsert', this.store.row(t, key[0] as string | number));
          put++;
        }
        count(t, 'upserted', put);
      }
    });
    return summary;
  }
}

/**
 * What a restore point's database file holds that its manifest records: the image catalogue it references
 * (images are content-addressed files, referenced not copied) and its applied migrations.
 */
export function databaseContents(path: string): {
  images: { sha256: string; name: string }[];
  migrations: number[];
} {
  return withReadOnly(path, (db) => ({ images: imageCatalogue(db), migrations: appliedMigrations(db) }));
}

function imageCatalogue(db: Db): { sha256: string; name: string }[] {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'images'").get();
  if (!exists) return [];
  return db.prepare('SELECT sha256, name FROM images ORDER BY name').all() as {
    sha256: string;
    name: string;
  }[];
}

/** SQLite's own check of a database file, opened read-only: 'ok' or the first problems it found. */
export function integrityOfFile(path: string): string {
  return withReadOnly(path, (db) => String(db.pragma('integrity_check', { simple: true })));
}
