import { createHash } from 'node:crypto';
import type { Db } from '../master/store/db.js';
import { randomToken } from './csrf.js';

/** Idle timeout: a session unused this long is gone (the issue asks for 30 minutes). */
export const IDLE_TIMEOUT_MS = 30 * 60 * 1000;
/** Absolute lifetime: even a session kept busy must log in again after a working day. */
export const MAX_SESSION_AGE_MS = 12 * 60 * 60 * 1000;

export interface ConsoleSession {
  /** The raw id, as the browser holds it in the cookie; never stored. */
  id: string;
  userName: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

interface SessionRow {
  id: string;
  user_name: string;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
}

/**
 * The table keeps SHA-256 of the id, not the id: a copied database file (a snapshot, a backup, a clone)
 * holds no session a reader could replay. The id itself has 256 random bits, so no salt is needed.
 */
function storedId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/**
 * Console sessions in the `sessions` table. They are per master and deliberately not journaled (see
 * migrations.ts): after a fail-over users log in again, and replication carries no live credentials.
 * Times are epoch milliseconds from the injected clock.
 */
export class SessionStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly idleMs = IDLE_TIMEOUT_MS,
    private readonly maxAgeMs = MAX_SESSION_AGE_MS,
  ) {}

  create(userName: string): ConsoleSession {
    const now = this.now();
    this.purgeExpired(now);
    const session: ConsoleSession = {
      id: randomToken(),
      userName,
      csrfToken: randomToken(),
      createdAt: now,
      lastSeenAt: now,
    };
    this.db
      .prepare(
        'INSERT INTO sessions (id, user_name, csrf_token, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(storedId(session.id), userName, session.csrfToken, now, now);
    return session;
  }

  /** The live session for a cookie value, its idle clock restarted; an expired one is deleted. */
  touch(id: string): ConsoleSession | undefined {
    const key = storedId(id);
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(key) as SessionRow | undefined;
    if (!row) return undefined;
    const now = this.now();
    if (this.expired(row, now)) {
      this.db.prepare('DELETE FROM sessions WHERE id = ?').run(key);
      return undefined;
    }
    this.db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id = ?').run(now, key);
    return {
      id,
      userName: row.user_name,
      csrfToken: row.csrf_token,
      createdAt: row.created_at,
      lastSeenAt: now,
    };
  }

  /**
   * The live session for a cookie value without restarting its idle clock: for checks that are not the
   * user's doing (a live stream re-validating itself), which must not keep an idle session alive.
   */
  peek(id: string): ConsoleSession | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(storedId(id)) as
      SessionRow | undefined;
    if (!row || this.expired(row, this.now())) return undefined;
    return {
      id,
      userName: row.user_name,
      csrfToken: row.csrf_token,
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
    };
  }

  destroy(id: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id = ?').run(storedId(id));
  }

  private expired(row: SessionRow, now: number): boolean {
    return now - row.last_seen_at > this.idleMs || now - row.created_at > this.maxAgeMs;
  }

  private purgeExpired(now: number): void {
    this.db
      .prepare('DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?')
      .run(now - this.idleMs, now - this.maxAgeMs);
  }
}
