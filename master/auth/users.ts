import { createHash } from 'node:crypto';
import { writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Repos } from '../store/repos.js';
import type { UserRecord } from '../store/users.js';
import type { Logger } from '../util/logger.js';
import { FailureLimiter } from './failure-limiter.js';
import { generatePassword, hashPassword, verifyPassword } from './passwords.js';

export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

/**
 * On first start (no users), creates `admin`. Its password is CORRAL_ADMIN_PASSWORD when the CLI passes
 * one, else a generated one written to DATA_DIR/initial-admin-password with mode 0600.
 */
export async function ensureAdmin(
  repos: Repos,
  dataDir: string,
  initialPassword: string | undefined,
  logger: Logger,
): Promise<void> {
  if (repos.users.count() > 0) return;
  const password = initialPassword ?? generatePassword();
  const hash = await hashPassword(password);
  repos.store.write((journal) => {
    repos.users.upsertIn(journal, 'admin', hash, 'admin');
    repos.events.appendIn(journal, {
      kind: 'user.created',
      message: 'created the admin user',
      actor: 'system',
    });
  });
  if (initialPassword === undefined) {
    const file = join(dataDir, INITIAL_PASSWORD_FILE);
    writeFileSync(file, password + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    logger.info({ file }, 'generated the first admin password; read it from this file and change it');
  } else {
    logger.info('admin password taken from CORRAL_ADMIN_PASSWORD');
  }
  if (!existsSync(dataDir)) logger.warn({ dataDir }, 'data directory missing after admin creation');
}

/** Failed sign-ins allowed per client IP and per user name inside the window, before 429. */
export const SIGN_IN_MAX_FAILURES = 10;
export const SIGN_IN_WINDOW_MS = 5 * 60 * 1000;

/** Where a password check comes from, for the rate limit: the client address and the name tried. */
export interface SignInFrom {
  ip: string;
  name: string;
}

export type SignInResult =
  { outcome: 'ok'; user: UserRecord } | { outcome: 'failed' } | { outcome: 'limited'; retryAfterMs: number };

/**
 * Verifies credentials. Successful checks are cached for a minute by a digest of user+password+hash so
 * HTTP Basic on every API call does not cost a full scrypt each time; a password change (new hash)
 * invalidates the cache entry by construction.
 *
 * The failure limiter lives here, not in each door, so the console form, API Basic auth and the
 * current-password check of a password change share one budget per IP and per user name: ten guesses in
 * the console do not buy ten more through the API.
 */
export class Authenticator {
  private readonly cache = new Map<string, number>();
  private readonly limiter: FailureLimiter;
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly repos: Repos,
    private readonly now: () => number = Date.now,
  ) {
    this.limiter = new FailureLimiter({
      maxFailures: SIGN_IN_MAX_FAILURES,
      windowMs: SIGN_IN_WINDOW_MS,
      now,
    });
  }

  async verify(name: string, password: string): Promise<UserRecord | undefined> {
    const user = this.repos.users.get(name);
    if (!user) {
      // The same scrypt cost as a wrong password for a real user, so response times do not tell an
      // attacker which user names exist. The dummy hash is of a random password nobody knows.
      this.dummyHash ??= hashPassword(generatePassword());
      await verifyPassword(password, await this.dummyHash);
      return undefined;
    }
    const key = createHash('sha256').update(`${name}\0${password}\0${user.passwordHash}`).digest('hex');
    const cachedUntil = this.cache.get(key);
    if (cachedUntil !== undefined && cachedUntil > this.now()) return user;
    if (!(await verifyPassword(password, user.passwordHash))) return undefined;
    if (this.cache.size > 1000) this.cache.clear();
    this.cache.set(key, this.now() + 60_000);
    return user;
  }

  /** Milliseconds until this IP and name may try again; 0 when they may try now. */
  retryAfterMs(from: SignInFrom): number {
    const byIp = this.limiter.retryAfterMs(ipKey(from));
    return from.name ? Math.max(byIp, this.limiter.retryAfterMs(userKey(from))) : byIp;
  }

  /** Counts a failed check (wrong password, wrong second factor) against the IP and the name. */
  recordFailure(from: SignInFrom): void {
    this.limiter.fail(ipKey(from));
    if (from.name) this.limiter.fail(userKey(from));
  }

  /** A success clears the name's count; the IP's stays, so one valid account buys no guesses at others. */
  recordSuccess(from: SignInFrom): void {
    this.limiter.reset(userKey(from));
  }

  /** A rate-limited password check: a limited caller is refused before scrypt runs, and is not counted. */
  async signIn(from: SignInFrom, password: string): Promise<SignInResult> {
    const wait = this.retryAfterMs(from);
    if (wait > 0) return { outcome: 'limited', retryAfterMs: wait };
    const user = await this.verify(from.name, password);
    if (!user) {
      this.recordFailure(from);
      return { outcome: 'failed' };
    }
    this.recordSuccess(from);
    return { outcome: 'ok', user };
  }
}

const ipKey = (from: SignInFrom): string => `ip:${from.ip}`;
const userKey = (from: SignInFrom): string => `user:${from.name.toLowerCase()}`;
