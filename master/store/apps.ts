/**
 * Apps on the cluster engine (issue 21). The declaration is journaled (a backup master keeps it); the
 * rollout observations are per master, like exec_runs: what this master saw the engine do, over time.
 * The store does not know the spec's shape: master/apps validates before writing and after reading.
 */
import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export interface AppRow {
  name: string;
  spec: unknown;
  version: number;
  /** The declaration before the last change: where a failed rollout or a revert goes back to. */
  previousSpec: unknown;
  previousVersion: number | null;
  createdAt: string;
  updatedAt: string;
  /** The digest of the declaration last sent to the engine (master/apps/service.ts), null before any. */
  issued: string | null;
}

export interface AppObservation {
  app: string;
  at: string;
  slot: number;
  version: number | null;
  state: string;
  node: string | null;
}

interface Row {
  name: string;
  spec: string;
  version: number;
  previous_spec: string | null;
  previous_version: number | null;
  created_at: string;
  updated_at: string;
  issued: string | null;
}

export class AppStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): AppRow[] {
    return (this.store.db.prepare('SELECT * FROM apps ORDER BY name').all() as Row[]).map(fromRow);
  }

  get(name: string): AppRow | undefined {
    const r = this.store.db.prepare('SELECT * FROM apps WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  putIn(
    journal: Journal,
    a: {
      name: string;
      spec: unknown;
      version: number;
      previousSpec: unknown;
      previousVersion: number | null;
    },
  ): void {
    const now = this.store.now().toISOString();
    this.store.db
      .prepare(
        `INSERT INTO apps (name, spec, version, previous_spec, previous_version, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, version = excluded.version,
           previous_spec = excluded.previous_spec, previous_version = excluded.previous_version,
           updated_at = excluded.updated_at`,
      )
      .run(
        a.name,
        JSON.stringify(a.spec),
        a.version,
        a.previousSpec === null ? null : JSON.stringify(a.previousSpec),
        a.previousVersion,
        now,
        now,
      );
    journal('apps', a.name, 'upsert', this.store.row('apps', a.name));
  }

  /** What was last sent to the engine for the app (its declaration's digest), or null: forgotten. */
  setIssuedIn(journal: Journal, name: string, digest: string | null): void {
    this.store.db.prepare('UPDATE apps SET issued = ? WHERE name = ?').run(digest, name);
    journal('apps', name, 'upsert', this.store.row('apps', name));
  }

  deleteIn(journal: Journal, name: string): void {
    this.store.db.prepare('DELETE FROM apps WHERE name = ?').run(name);
    this.store.db.prepare('DELETE FROM app_observations WHERE app = ?').run(name);
    journal('apps', name, 'delete');
  }

  /** Appends observations and keeps the newest `keep` per app (bounded table). */
  observe(rows: readonly AppObservation[], keep: number): void {
    if (rows.length === 0) return;
    const insert = this.store.db.prepare(
      'INSERT INTO app_observations (app, at, slot, version, state, node) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const trim = this.store.db.prepare(
      `DELETE FROM app_observations WHERE app = ? AND id <= (
         SELECT id FROM app_observations WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.store.db.transaction(() => {
      for (const o of rows) insert.run(o.app, o.at, o.slot, o.version, o.state, o.node);
      for (const app of new Set(rows.map((r) => r.app))) trim.run(app, app, keep);
    })();
  }

  observations(app: string, limit: number): AppObservation[] {
    return (
      this.store.db
        .prepare(
          'SELECT app, at, slot, version, state, node FROM app_observations WHERE app = ? ORDER BY id DESC LIMIT ?',
        )
        .all(app, limit) as AppObservation[]
    ).reverse();
  }
}

function fromRow(r: Row): AppRow {
  return {
    name: r.name,
    spec: JSON.parse(r.spec) as unknown,
    version: r.version,
    previousSpec: r.previous_spec === null ? null : (JSON.parse(r.previous_spec) as unknown),
    previousVersion: r.previous_version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    issued: r.issued ?? null,
  };
}
