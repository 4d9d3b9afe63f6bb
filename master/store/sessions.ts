import { sqliteOf, type SqliteStore, type Store } from './db.js';

/** A console session as stored: `id` is already the SHA-256 of the cookie value (web-ui/sessions.ts). */
export interface SessionRow {
  id: string;
  userName: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

interface Row {
  id: string;
  user_name: string;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
}

/**
 * Console sessions in the `sessions` table. They are per master and deliberately not journaled (see
 * migrations.ts): after a fail-over users log in again, and replication carries no live credentials, so
 * these statements run outside `Store.write`. Times are epoch milliseconds.
 */
export class SessionStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  insert(row: SessionRow): void {
    this.store.db
      .prepare(
        'INSERT INTO sessions (id, user_name, csrf_token, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(row.id, row.userName, row.csrfToken, row.createdAt, row.lastSeenAt);
  }

  get(id: string): SessionRow | undefined {
    const r = this.store.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
    return r
      ? {
          id: r.id,
          userName: r.user_name,
          csrfToken: r.csrf_token,
          createdAt: r.created_at,
          lastSeenAt: r.last_seen_at,
        }
      : undefined;
  }

  touch(id: string, lastSeenAt: number): void {
    this.store.db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id = ?').run(lastSeenAt, id);
  }

  delete(id: string): void {
    this.store.db.prepare('DELETE FROM sessions WHERE id = ?').run(id);
  }

  /** Removes every session last seen before `idleBefore` or created before `createdBefore`. */
  purge(idleBefore: number, createdBefore: number): void {
    this.store.db
      .prepare('DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?')
      .run(idleBefore, createdBefore);
  }
}
