import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

/** Small key/value settings (JSON values), journaled like every other aggregate. */
export class SettingsStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  get<T>(key: string): T | undefined {
    const r = this.store.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
      { value: string } | undefined;
    return r ? (JSON.parse(r.value) as T) : undefined;
  }

  setIn(journal: Journal, key: string, value: unknown): void {
    this.store.db
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      )
      .run(key, JSON.stringify(value));
    journal('settings', key, 'upsert', this.store.row('settings', key));
  }

  set(key: string, value: unknown): void {
    this.store.write((journal) => this.setIn(journal, key, value));
  }

  all(): Record<string, unknown> {
    const rows = this.store.db.prepare('SELECT key, value FROM settings ORDER BY key').all() as {
      key: string;
      value: string;
    }[];
    return Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
  }
}
