/**
 * Time-based one-time passwords (RFC 6238, over HOTP of RFC 4226) with node:crypto: HMAC-SHA1, 30-second
 * steps, 6 digits — the parameters every authenticator app supports. Secrets are 20 random bytes
 * (RFC 4226 section 4 recommends 160 bits), shown to the user in base32 (RFC 4648 section 6).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const STEP_SECONDS = 30;
export const DIGITS = 6;

export function base32Encode(buf: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = ALPHABET.indexOf(ch);
    if (idx < 0) throw new Error(`not base32: '${ch}'`);
    value = ((value << 5) | idx) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

/** HOTP (RFC 4226 section 5.3): HMAC of the 8-byte big-endian counter, dynamic truncation, mod 10^digits. */
export function hotp(secret: Buffer, counter: number, digits = DIGITS): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', secret).update(msg).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(code).padStart(digits, '0');
}

export function totpAt(secret: Buffer, epochMs: number): string {
  return hotp(secret, Math.floor(epochMs / 1000 / STEP_SECONDS));
}

export function generateTotpSecret(): string {
  return base32Encode(randomBytes(20));
}

/**
 * The step a code matches, allowing one step of clock drift either way (RFC 6238 section 5.2), or
 * undefined. Callers refuse a step at or below the last one used, so a seen code cannot be replayed.
 */
export function matchTotp(secretBase32: string, code: string, epochMs: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const secret = base32Decode(secretBase32);
  const now = Math.floor(epochMs / 1000 / STEP_SECONDS);
  for (const step of [now, now - 1, now + 1]) {
    const want = Buffer.from(hotp(secret, step));
    if (timingSafeEqual(want, Buffer.from(code))) return step;
  }
  return undefined;
}

/** The key URI authenticator apps import (Google Authenticator "Key Uri Format"). */
export function otpauthUri(issuer: string, account: string, secretBase32: string): string {
  const label = encodeURIComponent(`${issuer}:${account}`);
  const q = new URLSearchParams({
    secret: secretBase32,
    issuer,
    algorithm: 'SHA1',
    digits: String(DIGITS),
    period: String(STEP_SECONDS),
  });
  return `otpauth://totp/${label}?${q.toString()}`;
}

/** Remembers the last step each user spent, in memory: a code works once. */
export class TotpReplayGuard {
  private readonly last = new Map<string, number>();

  accept(user: string, step: number): boolean {
    const prev = this.last.get(user);
    if (prev !== undefined && step <= prev) return false;
    this.last.set(user, step);
    return true;
  }
}
