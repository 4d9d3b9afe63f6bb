import { sqliteOf, type Journal, type SqliteStore, type Store } from './db.js';

export interface TotpRecord {
  userName: string;
  /** Base32 secret (RFC 4648), as authenticator apps take it. */
  secret: string;
  /** Set once the user proved a code; until then the secret is only pending enrolment. */
  enabledAt: string | null;
}

interface TotpRow {
  user_name: string;
  secret: string;
  enabled_at: string | null;
}

/** Per-user security facts beside the users table: the TOTP second factor and ending a user's sessions. */
export class AccountStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  totp(userName: string): TotpRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM user_totp WHERE user_name = ?').get(userName) as
      TotpRow | undefined;
    return r ? { userName: r.user_name, secret: r.secret, enabledAt: r.enabled_at } : undefined;
  }

  setTotpIn(journal: Journal, userName: string, secret: string, enabledAt: string | null): void {
    this.store.db
      .prepare(
        `INSERT INTO user_totp (user_name, secret, enabled_at) VALUES (?, ?, ?)
         ON CONFLICT(user_name) DO UPDATE SET secret = excluded.secret, enabled_at = excluded.enabled_at`,
      )
      .run(userName, secret, enabledAt);
    journal('user_totp', userName, 'upsert', this.store.row('user_totp', userName));
  }

  clearTotpIn(journal: Journal, userName: string): void {
    const info = this.store.db.prepare('DELETE FROM user_totp WHERE user_name = ?').run(userName);
    if (info.changes) journal('user_totp', userName, 'delete');
  }

  /** Ends every console session of a user (password reset, deletion); sessions are not journaled. */
  endSessions(userName: string): number {
    return this.store.db.prepare('DELETE FROM sessions WHERE user_name = ?').run(userName).changes;
  }
}
