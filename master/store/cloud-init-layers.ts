import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export const LAYER_SCOPES = ['global', 'role', 'tag', 'node'] as const;
export type LayerScope = (typeof LAYER_SCOPES)[number];

/** One #cloud-config fragment as the operator wrote it (master/cloudinit/ validates and renders it). */
export interface CloudInitLayerRecord {
  scope: LayerScope;
  /** '' for the global layer; a role, a tag, or a node's MAC. */
  target: string;
  content: string;
  updatedAt: string;
  updatedBy: string | null;
}

interface Row {
  key: string;
  scope: LayerScope;
  target: string;
  content: string;
  updated_at: string;
  updated_by: string | null;
}

function fromRow(r: Row): CloudInitLayerRecord {
  return {
    scope: r.scope,
    target: r.target,
    content: r.content,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  };
}

export function layerKey(scope: LayerScope, target: string): string {
  return `${scope}:${target}`;
}

/** cloud-init user-data layers, one per (scope, target). Journaled, so a backup master serves the same. */
export class CloudInitLayerStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  list(): CloudInitLayerRecord[] {
    return (
      this.store.db.prepare('SELECT * FROM cloud_init_layers ORDER BY scope, target').all() as Row[]
    ).map(fromRow);
  }

  get(scope: LayerScope, target: string): CloudInitLayerRecord | undefined {
    const r = this.store.db
      .prepare('SELECT * FROM cloud_init_layers WHERE key = ?')
      .get(layerKey(scope, target)) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  putIn(
    journal: Journal,
    l: { scope: LayerScope; target: string; content: string; updatedBy: string | null },
  ): CloudInitLayerRecord {
    const key = layerKey(l.scope, l.target);
    this.store.db
      .prepare(
        `INSERT INTO cloud_init_layers (key, scope, target, content, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at,
           updated_by = excluded.updated_by`,
      )
      .run(key, l.scope, l.target, l.content, this.store.now().toISOString(), l.updatedBy);
    const row = this.store.row('cloud_init_layers', key) as Row | undefined;
    if (!row) throw new Error(`cloud-init layer ${key} vanished inside its own transaction`);
    journal('cloud_init_layers', key, 'upsert', row as unknown as Record<string, unknown>);
    return fromRow(row);
  }

  /** Whether a layer was there to delete. */
  deleteIn(journal: Journal, scope: LayerScope, target: string): boolean {
    const key = layerKey(scope, target);
    const info = this.store.db.prepare('DELETE FROM cloud_init_layers WHERE key = ?').run(key);
    if (info.changes > 0) journal('cloud_init_layers', key, 'delete');
    return info.changes > 0;
  }
}
