import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export type Role = 'admin' | 'operator' | 'viewer';

export interface UserRecord {
  name: string;
  passwordHash: string;
  role: Role;
  createdAt: string;
  updatedAt: string;
}

interface UserRow {
  name: string;
  password_hash: string;
  role: Role;
  created_at: string;
  updated_at: string;
}

export class UserStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  get(name: string): UserRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    return r
      ? {
          name: r.name,
          passwordHash: r.password_hash,
          role: r.role,
          createdAt: r.created_at,
          updatedAt: r.updated_at,
        }
      : undefined;
  }

  list(): Omit<UserRecord, 'passwordHash'>[] {
    const rows = this.store.db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[];
    return rows.map((r) => ({
      name: r.name,
      role: r.role,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  count(): number {
    return (this.store.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  upsertIn(journal: Journal, name: string, passwordHash: string, role: Role): void {
    const now = this.store.now().toISOString();
    this.store.db
      .prepare(
        `INSERT INTO users (name, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
         updated_at = excluded.updated_at`,
      )
      .run(name, passwordHash, role, now, now);
    journal('users', name, 'upsert', this.store.row('users', name));
  }

  deleteIn(journal: Journal, name: string): void {
    this.store.db.prepare('DELETE FROM users WHERE name = ?').run(name);
    journal('users', name, 'delete');
  }
}
