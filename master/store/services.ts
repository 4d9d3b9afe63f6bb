import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

/** A stored service: the validated spec (master/lb/service-spec.ts) kept as JSON. */
export interface ServiceRow<Spec> {
  name: string;
  spec: Spec;
  createdAt: string;
  updatedAt: string;
}

export interface ServerAdminRecord {
  service: string;
  nodeMac: string;
  state: 'drain' | 'maint';
  updatedAt: string;
}

interface Row {
  name: string;
  spec: string;
  created_at: string;
  updated_at: string;
}

interface AdminRow {
  id: string;
  service: string;
  node_mac: string;
  state: 'drain' | 'maint';
  updated_at: string;
}

/**
 * Load-balanced services and the operator's per-node admin states (drain/maint). The store does not
 * know the spec's shape: the lb module validates before writing and after reading.
 */
export class ServiceStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): ServiceRow<unknown>[] {
    return (this.store.db.prepare('SELECT * FROM services ORDER BY name').all() as Row[]).map(fromRow);
  }

  get(name: string): ServiceRow<unknown> | undefined {
    const r = this.store.db.prepare('SELECT * FROM services WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Inserts or replaces; `created_at` is kept on replace. */
  putIn(journal: Journal, name: string, spec: unknown): ServiceRow<unknown> {
    const now = this.store.now().toISOString();
    this.store.db
      .prepare(
        `INSERT INTO services (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
      )
      .run(name, JSON.stringify(spec), now, now);
    const row = this.store.row('services', name);
    journal('services', name, 'upsert', row);
    return fromRow(row as unknown as Row);
  }

  deleteIn(journal: Journal, name: string): void {
    // Admin rows go with the service (ON DELETE CASCADE); journal their deletion for replicas too.
    for (const a of this.adminStates(name)) journal('lb_server_admin', `${name}/${a.nodeMac}`, 'delete');
    this.store.db.prepare('DELETE FROM services WHERE name = ?').run(name);
    journal('services', name, 'delete');
  }

  adminStates(service?: string): ServerAdminRecord[] {
    const rows = (
      service
        ? this.store.db.prepare('SELECT * FROM lb_server_admin WHERE service = ? ORDER BY id').all(service)
        : this.store.db.prepare('SELECT * FROM lb_server_admin ORDER BY id').all()
    ) as AdminRow[];
    return rows.map((r) => ({
      service: r.service,
      nodeMac: r.node_mac,
      state: r.state,
      updatedAt: r.updated_at,
    }));
  }

  /** `ready` removes the row: ready is what HAProxy does without being told. */
  setAdminIn(journal: Journal, service: string, nodeMac: string, state: 'ready' | 'drain' | 'maint'): void {
    const id = `${service}/${nodeMac}`;
    if (state === 'ready') {
      this.store.db.prepare('DELETE FROM lb_server_admin WHERE id = ?').run(id);
      journal('lb_server_admin', id, 'delete');
      return;
    }
    this.store.db
      .prepare(
        `INSERT INTO lb_server_admin (id, service, node_mac, state, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
      )
      .run(id, service, nodeMac, state, this.store.now().toISOString());
    journal('lb_server_admin', id, 'upsert', this.store.row('lb_server_admin', id));
  }
}

function fromRow(r: Row): ServiceRow<unknown> {
  return {
    name: r.name,
    spec: JSON.parse(r.spec) as unknown,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
