import { sqliteOf, type SqliteStore, type Store } from './db.js';

export interface ChangeRecord {
  seq: number;
  at: string;
  epoch: number;
  entity: string;
  key: string;
  op: 'upsert' | 'delete';
  data: Record<string, unknown> | null;
}

interface ChangeRow {
  seq: number;
  at: string;
  epoch: number;
  entity: string;
  entity_key: string;
  op: 'upsert' | 'delete';
  data: string | null;
}

/** Reads the change journal (append-only; written only by Store.write). */
export class ChangeStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  since(seq: number, limit = 1000): ChangeRecord[] {
    const rows = this.store.db
      .prepare('SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(seq, Math.min(Math.max(limit, 1), 10000)) as ChangeRow[];
    return rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      epoch: r.epoch,
      entity: r.entity,
      key: r.entity_key,
      op: r.op,
      data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null,
    }));
  }

  lastSeq(): number {
    return this.store.lastChangeSeq();
  }
}
