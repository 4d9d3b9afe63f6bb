import { createHash } from 'node:crypto';
import { writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Repos } from '../store/repos.js';
import type { UserRecord } from '../store/users.js';
import type { Logger } from '../util/logger.js';
import { processRedactor } from '../util/redact.js';
import { FailureLimiter } from './failure-limiter.js';
import { HashSlots } from './hash-slots.js';
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
  // The given password is registered even when the admin exists: it is still in the environment, and a
  // log line or error quoting it must not show it.
  processRedactor.add(initialPassword);
  if (repos.users.count() > 0) return;
  const password = initialPassword ?? generatePassword();
  processRedactor.add(password);
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

/**
 * Password checks running at once across every door (console, API, password change). Four matches libuv's
 * default thread pool, where scrypt runs; more would only queue there. Up to 64 more wait for a slot.
 */
export const HASH_CONCURRENCY = 4;
export const HASH_QUEUE = 64;

/** `busy`: refused because every password-check slot and the queue were full, not for failures. */
export type SignInResult =
  | { outcome: 'ok'; user: UserRecord }
  | { outcome: 'failed' }
  | { outcome: 'limited'; retryAfterMs: number; busy?: boolean };

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
  private readonly slots = new HashSlots(HASH_CONCURRENCY, HASH_QUEUE);
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

  /** The user when `password` was checked right within the last minute (no scrypt); else undefined. */
  cached(name: string, password: string): UserRecord | undefined {
    const user = this.repos.users.get(name);
    if (!user) return undefined;
    const cachedUntil = this.cache.get(cacheKey(name, password, user.passwordHash));
    return cachedUntil !== undefined && cachedUntil > this.now() ? user : undefined;
  }

  /** Checks a password with scrypt, unlimited: callers go through `signIn`, which rate-limits it. */
  async verify(name: string, password: string): Promise<UserRecord | undefined> {
    const user = this.repos.users.get(name);
    if (!user) {
      // The same scrypt cost as a wrong password for a real user, so response times do not tell an
      // attacker which user names exist. The dummy hash is of a random password nobody knows.
      this.dummyHash ??= hashPassword(generatePassword());
      await verifyPassword(password, await this.dummyHash);
      return undefined;
    }
    if (!(await verifyPassword(password, user.passwordHash))) return undefined;
    if (this.cache.size > 1000) this.cache.clear();
    this.cache.set(cacheKey(name, password, user.passwordHash), this.now() + 60_000);
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

  /**
   * A rate-limited password check. The attempt is reserved against the IP and the name before scrypt
   * runs and counted as a failure until it proves right, so concurrent guesses cannot all pass the limit;
   * a limited caller is refused before scrypt runs and is not counted. `secondFactorFollows`: the caller
   * checks a TOTP code next and calls `recordSuccess` itself, so a right password alone does not clear
   * the name's count (else codes could be guessed without limit from many addresses).
   */
  async signIn(
    from: SignInFrom,
    password: string,
    opts: { secondFactorFollows?: boolean } = {},
  ): Promise<SignInResult> {
    const wait = this.retryAfterMs(from);
    if (wait > 0) return { outcome: 'limited', retryAfterMs: wait };
    // A repeat of a recently checked right password (HTTP Basic on every API call) costs no scrypt and
    // holds no reservation, so a client's parallel API calls do not use up its own budget.
    const known = this.cached(from.name, password);
    if (known) {
      if (!opts.secondFactorFollows) this.recordSuccess(from);
      return { outcome: 'ok', user: known };
    }
    const keys = from.name ? [ipKey(from), userKey(from)] : [ipKey(from)];
    for (const k of keys) this.limiter.reserve(k);
    let user: UserRecord | undefined;
    try {
      const checked = await this.slots.run(() => this.verify(from.name, password));
      if (!checked) return { outcome: 'limited', retryAfterMs: 1000, busy: true };
      user = checked.value;
    } finally {
      for (const k of keys) this.limiter.release(k);
    }
    if (!user) {
      this.recordFailure(from);
      return { outcome: 'failed' };
    }
    if (!opts.secondFactorFollows) this.recordSuccess(from);
    return { outcome: 'ok', user };
  }
}

const cacheKey = (name: string, password: string, hash: string): string =>
  createHash('sha256').update(`${name}\0${password}\0${hash}`).digest('hex');
const ipKey = (from: SignInFrom): string => `ip:${from.ip}`;
const userKey = (from: SignInFrom): string => `user:${from.name.toLowerCase()}`;
