/**
 * Credentials at rest (BMC passwords): AES-256-GCM with a 32-byte key generated into
 * DATA_DIR/keys/power.key (mode 0600) on first use. `keys/` is one of the folders `corral clone` copies,
 * so a backup master can open what the primary sealed. A sealed value is `v1:IV:TAG:CIPHERTEXT` (base64);
 * the additional authenticated data binds it to its owner (e.g. the node's MAC), so a ciphertext copied
 * onto another node's row fails to open instead of lending that node its credentials.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError } from '../util/errors.js';
import { processRedactor } from '../util/redact.js';

const KEY_BYTES = 32;
/** 96-bit nonces: the size GCM is defined for (NIST SP 800-38D, 8.2); random per seal. */
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function secretKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'power.key');
}

/** Reads the key file, creating it (0600, exclusive create) on first use; refuses a key file others can read. */
export function loadOrCreateKey(dataDir: string): Buffer {
  const path = secretKeyPath(dataDir);
  mkdirSync(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new CorralError('SECRET_KEY_INVALID', `cannot create ${path}: ${(err as Error).message}`);
    }
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) chmodSync(path, 0o600);
  const key = readFileSync(path);
  if (key.length !== KEY_BYTES) {
    throw new CorralError('SECRET_KEY_INVALID', `${path} holds ${key.length} bytes, not ${KEY_BYTES}`);
  }
  return key;
}

export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`SecretBox needs a ${KEY_BYTES}-byte key`);
  }

  static forDataDir(dataDir: string): SecretBox {
    return new SecretBox(loadOrCreateKey(dataDir));
  }

  seal(plaintext: string, aad: string): string {
    processRedactor.add(plaintext); // hidden from logs, errors and responses from now on
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return ['v1', iv.toString('base64'), tag.toString('base64'), ct.toString('base64')].join(':');
  }

  open(sealed: string, aad: string): string {
    const [v, iv, tag, ct, ...rest] = sealed.split(':');
    if (v !== 'v1' || iv === undefined || tag === undefined || ct === undefined || rest.length) {
      throw new CorralError('SECRET_KEY_INVALID', 'a stored credential is not in the v1 sealed format');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      const plain = Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString(
        'utf8',
      );
      processRedactor.add(plain); // e.g. an ipmitool error quoting its command line
      return plain;
    } catch {
      // Wrong key file (a master restored without keys/), or a tampered or moved row.
      throw new CorralError(
        'SECRET_KEY_INVALID',
        "a stored credential does not decrypt with this master's key (keys/power.key)",
      );
    }
  }
}
