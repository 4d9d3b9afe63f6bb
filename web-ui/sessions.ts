import { createHash } from 'node:crypto';
import type { SessionRow, SessionStore } from '../master/store/sessions.js';
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

/**
 * The table keeps SHA-256 of the id, not the id: a copied database file (a snapshot, a backup, a clone)
 * holds no session a reader could replay. The id itself has 256 random bits, so no salt is needed.
 */
function storedId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/**
 * Console sessions: random ids in the cookie, SHA-256 of them in the store, an idle timeout and an
 * absolute lifetime. Times are epoch milliseconds from the injected clock.
 */
export class ConsoleSessions {
  constructor(
    private readonly rows: SessionStore,
    private readonly now: () => number,
    private readonly idleMs = IDLE_TIMEOUT_MS,
    private readonly maxAgeMs = MAX_SESSION_AGE_MS,
  ) {}

  create(userName: string): ConsoleSession {
    const now = this.now();
    this.rows.purge(now - this.idleMs, now - this.maxAgeMs);
    const session: ConsoleSession = {
      id: randomToken(),
      userName,
      csrfToken: randomToken(),
      createdAt: now,
      lastSeenAt: now,
    };
    this.rows.insert({ ...session, id: storedId(session.id) });
    return session;
  }

  /** The live session for a cookie value, its idle clock restarted; an expired one is deleted. */
  touch(id: string): ConsoleSession | undefined {
    const key = storedId(id);
    const row = this.rows.get(key);
    if (!row) return undefined;
    const now = this.now();
    if (this.expired(row, now)) {
      this.rows.delete(key);
      return undefined;
    }
    this.rows.touch(key, now);
    return { ...row, id, lastSeenAt: now };
  }

  /**
   * The live session for a cookie value without restarting its idle clock: for checks that are not the
   * user's doing (a live stream re-validating itself), which must not keep an idle session alive.
   */
  peek(id: string): ConsoleSession | undefined {
    const row = this.rows.get(storedId(id));
    if (!row || this.expired(row, this.now())) return undefined;
    return { ...row, id };
  }

  destroy(id: string): void {
    this.rows.delete(storedId(id));
  }

  private expired(row: SessionRow, now: number): boolean {
    return now - row.lastSeenAt > this.idleMs || now - row.createdAt > this.maxAgeMs;
  }
}
