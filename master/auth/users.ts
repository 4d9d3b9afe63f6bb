import { createHash } from 'node:crypto';
import { writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Repos } from '../store/repos.js';
import type { UserRecord } from '../store/users.js';
import type { Logger } from '../util/logger.js';
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

/**
 * Verifies credentials. Successful checks are cached for a minute by a digest of user+password+hash so
 * HTTP Basic on every API call does not cost a full scrypt each time; a password change (new hash)
 * invalidates the cache entry by construction.
 */
export class Authenticator {
  private readonly cache = new Map<string, number>();

  constructor(
    private readonly repos: Repos,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(name: string, password: string): Promise<UserRecord | undefined> {
    const user = this.repos.users.get(name);
    if (!user) return undefined;
    const key = createHash('sha256').update(`${name}\0${password}\0${user.passwordHash}`).digest('hex');
    const cachedUntil = this.cache.get(key);
    if (cachedUntil !== undefined && cachedUntil > this.now()) return user;
    if (!(await verifyPassword(password, user.passwordHash))) return undefined;
    if (this.cache.size > 1000) this.cache.clear();
    this.cache.set(key, this.now() + 60_000);
    return user;
  }
}
