import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export type Db = Database.Database;

export type ChangeOp = 'upsert' | 'delete';

/** Tables whose rows are journaled and replicated; the journal names the table and the key column. */
export const JOURNALED = {
  nodes: 'mac',
  events: 'id',
  leases: 'ip',
  reservations: 'mac',
  images: 'sha256',
  users: 'name',
  settings: 'key',
  deployments: 'id',
  services: 'name',
  lb_server_admin: 'id',
  user_totp: 'user_name',
  power_configs: 'node_mac',
  shared_roots: 'name',
  shared_root_versions: 'key',
  diskless_nodes: 'mac',
  node_credentials: 'mac',
  dhcp6_leases: 'address',
  enrolment_rules: 'id',
  data_sets: 'id',
  cloud_init_layers: 'key',
  apps: 'name',
} as const;
export type JournaledTable = keyof typeof JOURNALED;

export interface StoreOptions {
  path: string;
  logger: Logger;
  /** WAL `synchronous`: NORMAL survives a killed process; FULL also survives power loss, at an fsync per commit. */
  synchronous?: 'NORMAL' | 'FULL';
  now?: () => Date;
}

/**
 * The one SQLite database of a master. Every mutation goes through `write()`, which runs in a
 * transaction and appends to the `changes` journal in that same transaction, so the journal and the
 * tables can never disagree (the replication feed of the HA issue reads it).
 */
export class SqliteStore {
  readonly db: Db;
  readonly logger: Logger;
  readonly now: () => Date;
  private readonly insertChange: Database.Statement;
  private epochCache: number | undefined;

  constructor(options: StoreOptions) {
    this.logger = options.logger.child({ module: 'store' });
    this.now = options.now ?? (() => new Date());
    mkdirSync(dirname(options.path), { recursive: true });
    try {
      this.db = new Database(options.path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new CorralError(
        'STORE_FAILED',
        `cannot open database ${options.path}: ${(err as Error).message}`,
      );
    }
    this.migrate();
    this.insertChange = this.db.prepare(
      'INSERT INTO changes (at, epoch, entity, entity_key, op, data) VALUES (?, ?, ?, ?, ?, ?)',
    );
  }

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
        (r) => r.version,
      ),
    );
    const newest = Math.max(0, ...applied);
    if (newest > SCHEMA_VERSION) {
      throw new CorralError(
        'STORE_FAILED',
        `database schema version ${newest} is newer than this Corral (${SCHEMA_VERSION}); upgrade Corral`,
      );
    }
    // Applied in version order whatever the order of the array (features append their own entries).
    for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db
          .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, new Date().toISOString());
      })();
      this.logger.info({ version: m.version, name: m.name }, 'applied migration');
    }
  }

  schemaVersion(): number {
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as {
      v: number | null;
    };
    return row.v ?? 0;
  }

  /** The replication epoch: bumped by each promotion (HA issue); recorded with every change. */
  epoch(): number {
    // Re-read after a rolled-back write or a replicated batch: the cache must follow the settings row.
    if (this.epochCache === undefined) {
      const row = this.db.prepare("SELECT value FROM settings WHERE key = 'ha.epoch'").get() as
        { value: string } | undefined;
      this.epochCache = row ? Number(JSON.parse(row.value)) : 0;
    }
    return this.epochCache;
  }

  /** Runs `fn` in one transaction; `journal` records a change that commits or rolls back with it. */
  write<T>(fn: (journal: Journal) => T): T {
    this.writeGuard?.();
    const journal: Journal = (table, key, op, row) => {
      this.insertChange.run(
        this.now().toISOString(),
        this.epoch(),
        table,
        String(key),
        op,
        op === 'delete' ? null : JSON.stringify(row ?? null),
      );
    };
    try {
      const result = this.db.transaction(() => fn(journal)).immediate();
      this.notifyCommit();
      return result;
    } catch (err) {
      this.epochCache = undefined;
      if (err instanceof CorralError) throw err;
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
        throw new CorralError('CONFLICT', `conflicting change: ${(err as Error).message}`);
      }
      if (typeof code === 'string' && code.startsWith('SQLITE_')) {
        throw new CorralError('STORE_FAILED', `database write failed: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  /** Reads a row back by key so the journal carries the row exactly as stored. */
  row(table: JournaledTable, key: string | number): Record<string, unknown> | undefined {
    return this.db.prepare(`SELECT * FROM ${table} WHERE ${JOURNALED[table]} = ?`).get(key) as
      Record<string, unknown> | undefined;
  }

  lastChangeSeq(): number {
    const row = this.db.prepare('SELECT MAX(seq) AS s FROM changes').get() as { s: number | null };
    return row.s ?? 0;
  }

  /** An online, consistent copy of the whole database (SQLite's backup API; writers are not blocked). */
  async backup(path: string): Promise<void> {
    await this.db.backup(path);
  }

  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // --- High availability (master/ha): write gating, commit notification, replicated apply ---

  private writeGuard: (() => void) | undefined;
  private readonly commitListeners = new Set<(lastSeq: number) => void>();

  /** `guard` throws (NOT_PRIMARY) to refuse every local write, e.g. on a backup master. */
  setWriteGuard(guard: (() => void) | undefined): void {
    this.writeGuard = guard;
  }

  /** Called after each committed write or replicated batch with the journal's last sequence. */
  onCommit(listener: (lastSeq: number) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  private notifyCommit(): void {
    if (!this.commitListeners.size) return;
    const seq = this.lastChangeSeq();
    for (const l of this.commitListeners) l(seq);
  }

  /** Sets 'ha.epoch' inside a write; every later journal row of the transaction carries the new epoch. */
  setEpochIn(journal: Journal, epoch: number): void {
    this.db
      .prepare(
        "INSERT INTO settings (key, value) VALUES ('ha.epoch', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(JSON.stringify(epoch));
    this.epochCache = epoch;
    journal('settings', 'ha.epoch', 'upsert', this.row('settings', 'ha.epoch'));
  }

  private columnCache = new Map<string, Set<string>>();

  private columnsOf(table: JournaledTable): Set<string> {
    let cols = this.columnCache.get(table);
    if (!cols) {
      const info = this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
      cols = new Set(info.map((c) => c.name));
      this.columnCache.set(table, cols);
    }
    return cols;
  }

  /** Puts a journaled row as stored (upsert by key) or removes it; no journal row (the caller writes it). */
  private putRow(table: JournaledTable, key: string, row: Record<string, unknown> | null): void {
    const keyCol = JOURNALED[table];
    if (!row) {
      this.db.prepare(`DELETE FROM ${table} WHERE ${keyCol} = ?`).run(key);
      return;
    }
    const allowed = this.columnsOf(table);
    const cols = Object.keys(row).filter((c) => allowed.has(c));
    const values = cols.map((c) => {
      const v = row[c];
      return typeof v === 'boolean' ? Number(v) : (v as string | number | null);
    });
    const updates = cols.filter((c) => c !== keyCol).map((c) => `${c} = excluded.${c}`);
    this.db
      .prepare(
        `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ` +
          (updates.length
            ? `ON CONFLICT(${keyCol}) DO UPDATE SET ${updates.join(', ')}`
            : 'ON CONFLICT DO NOTHING'),
      )
      .run(...values);
  }

  /**
   * Applies a primary's changes in order in one transaction, keeping their sequence numbers, so the
   * follower's journal is a prefix of the primary's. Bypasses the write guard (this is how a backup writes).
   */
  applyReplicated(changes: readonly ReplicatedChange[]): number {
    if (!changes.length) return this.lastChangeSeq();
    const insert = this.db.prepare(
      'INSERT INTO changes (seq, at, epoch, entity, entity_key, op, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.db
      .transaction(() => {
        this.db.pragma('defer_foreign_keys = ON');
        for (const c of changes) {
          if (!Object.hasOwn(JOURNALED, c.entity)) {
            throw new CorralError(
              'STORE_FAILED',
              `replicated change ${c.seq} names unknown table ${c.entity}`,
            );
          }
          this.putRow(c.entity as JournaledTable, c.key, c.op === 'delete' ? null : c.data);
          insert.run(c.seq, c.at, c.epoch, c.entity, c.key, c.op, c.data ? JSON.stringify(c.data) : null);
        }
      })
      .immediate();
    this.epochCache = undefined;
    this.notifyCommit();
    return this.lastChangeSeq();
  }

  /**
   * Discards the journal after `seq` and rolls every row it touched back to its state at `seq` (the
   * newest earlier change of that row, or no row). Returns the discarded changes, oldest first.
   */
  discardAfter(seq: number): ReplicatedChange[] {
    const rows = this.db.prepare('SELECT * FROM changes WHERE seq > ? ORDER BY seq').all(seq) as {
      seq: number;
      at: string;
      epoch: number;
      entity: string;
      entity_key: string;
      op: 'upsert' | 'delete';
      data: string | null;
    }[];
    const tail: ReplicatedChange[] = rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      epoch: r.epoch,
      entity: r.entity,
      key: r.entity_key,
      op: r.op,
      data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null,
    }));
    if (!tail.length) return tail;
    const before = this.db.prepare(
      'SELECT op, data FROM changes WHERE entity = ? AND entity_key = ? AND seq <= ? ORDER BY seq DESC LIMIT 1',
    );
    this.db
      .transaction(() => {
        this.db.pragma('defer_foreign_keys = ON');
        const seen = new Set<string>();
        for (const c of tail) {
          const id = `${c.entity}\u0000${c.key}`;
          if (seen.has(id) || !Object.hasOwn(JOURNALED, c.entity)) continue;
          seen.add(id);
          const prev = before.get(c.entity, c.key, seq) as { op: string; data: string | null } | undefined;
          const row =
            prev && prev.op === 'upsert' && prev.data
              ? (JSON.parse(prev.data) as Record<string, unknown>)
              : null;
          this.putRow(c.entity as JournaledTable, c.key, row);
        }
        const archive = this.db.prepare(
          'INSERT INTO ha_discarded (discarded_at, seq, epoch, entity, entity_key, op, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
        );
        const at = this.now().toISOString();
        for (const r of rows) archive.run(at, r.seq, r.epoch, r.entity, r.entity_key, r.op, r.data);
        this.db.prepare('DELETE FROM changes WHERE seq > ?').run(seq);
        this.db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'changes'").run(seq);
      })
      .immediate();
    this.epochCache = undefined;
    return tail;
  }
}

/**
 * The store as code outside store/ holds it: journaled transactions, the replication hooks, backup and
 * close, but never the SQLite handle. SQL stays in the store modules (one per aggregate, reached through
 * Repos); eslint.config.js refuses `SqliteStore`, `Db` and better-sqlite3 outside master/store/.
 */
export type Store = Omit<SqliteStore, 'db'>;

/**
 * Inside store/ only: the SQLite store behind a `Store` (every Store is one; the type just hides the
 * handle). The aggregate stores take a `Store`, so tests and openRepos build them alike.
 */
export function sqliteOf(store: Store): SqliteStore {
  if (!(store instanceof SqliteStore)) throw new TypeError('not a store opened by openStore or openRepos');
  return store;
}

/** Opens (and migrates) a database file outside Repos: a clone's or a restore point's copy. */
export function openStore(options: StoreOptions): Store {
  return new SqliteStore(options);
}

/** One journal row as the replication feed carries it. */
export interface ReplicatedChange {
  seq: number;
  at: string;
  epoch: number;
  entity: string;
  key: string;
  op: ChangeOp;
  data: Record<string, unknown> | null;
}

export type Journal = (
  table: JournaledTable,
  key: string | number,
  op: ChangeOp,
  row?: Record<string, unknown>,
) => void;
