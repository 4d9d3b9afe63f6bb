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
export class Store {
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
    for (const m of MIGRATIONS) {
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
    if (this.epochCache === undefined) {
      const row = this.db.prepare("SELECT value FROM settings WHERE key = 'ha.epoch'").get() as
        { value: string } | undefined;
      this.epochCache = row ? Number(JSON.parse(row.value)) : 0;
    }
    return this.epochCache;
  }

  /** Runs `fn` in one transaction; `journal` records a change that commits or rolls back with it. */
  write<T>(fn: (journal: Journal) => T): T {
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
      return this.db.transaction(() => fn(journal)).immediate();
    } catch (err) {
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

  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export type Journal = (
  table: JournaledTable,
  key: string | number,
  op: ChangeOp,
  row?: Record<string, unknown>,
) => void;
