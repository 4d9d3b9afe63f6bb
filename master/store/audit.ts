import { sqliteOf, type SqliteStore, type Store } from './db.js';

export type AuditVia = 'api' | 'console' | 'system';
export type AuditOutcome = 'ok' | 'denied' | 'failed';

export interface AuditRecord {
  id: number;
  at: string;
  actor: string;
  via: AuditVia;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  status: number | null;
  ip: string | null;
  detail: string | null;
}

export type NewAudit = Omit<AuditRecord, 'id' | 'at' | 'target' | 'status' | 'ip' | 'detail'> &
  Partial<Pick<AuditRecord, 'target' | 'status' | 'ip' | 'detail'>>;

/**
 * The append-only audit log. There is deliberately no update or delete here, and triggers in the schema
 * refuse both, so not even a bug elsewhere in store/ can rewrite history. Not journaled: per master
 * (docs/decisions.md), so it is written outside `Store.write` and never refused on a read-only backup.
 */
export class AuditStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  append(a: NewAudit): number {
    const info = this.store.db
      .prepare(
        'INSERT INTO audit (at, actor, via, action, target, outcome, status, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        this.store.now().toISOString(),
        a.actor.slice(0, 128),
        a.via,
        a.action.slice(0, 200),
        a.target?.slice(0, 200) ?? null,
        a.outcome,
        a.status ?? null,
        a.ip ?? null,
        a.detail?.slice(0, 1000) ?? null,
      );
    return Number(info.lastInsertRowid);
  }

  /** Newest first; `before` pages to older rows. */
  list(q: { before?: number; actor?: string; limit?: number } = {}): AuditRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.before !== undefined) {
      where.push('id < ?');
      args.push(q.before);
    }
    if (q.actor) {
      where.push('actor = ?');
      args.push(q.actor);
    }
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 1000);
    return this.store.db
      .prepare(
        `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${limit}`,
      )
      .all(...args) as AuditRecord[];
  }

  count(): number {
    return (this.store.db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
  }
}
