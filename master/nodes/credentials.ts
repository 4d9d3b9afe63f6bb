/**
 * Per-node credentials (issue 14). The master issues a node a 256-bit secret at its first enlistment and
 * keeps only its SHA-256; the agent keeps the secret in the node environment's tmpfs (and the installer
 * writes it, mode 0600, into a deployed system) and sends it as `Authorization: Bearer` on every later
 * call: enlist refreshes, deploy plan, progress and reports, and a diskless node's identity. See
 * docs/security.md for the threat model and how a rebooted node (which lost its tmpfs) gets a new one.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';

/** 64 hex digits: safe in a shell variable, a header and a JSON string without escaping. */
const CREDENTIAL_RE = /^[0-9a-f]{64}$/;

export function newCredential(): { secret: string; hash: string } {
  const secret = randomBytes(32).toString('hex');
  return { secret, hash: hashCredential(secret) };
}

export function hashCredential(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The credential in `Authorization: Bearer <64 hex>`, or undefined (absent or malformed). */
export function bearerCredential(headers: IncomingHttpHeaders): string | undefined {
  const m = /^Bearer ([0-9a-f]{64})$/.exec((headers.authorization ?? '').trim());
  return m?.[1];
}

/** Whether `secret` is the node's current credential (constant-time compare of the hashes). */
export function credentialMatches(repos: Repos, mac: string, secret: string | undefined): boolean {
  if (!secret || !CREDENTIAL_RE.test(secret)) return false;
  const stored = repos.nodeCredentials.get(mac);
  if (!stored) return false;
  const want = Buffer.from(stored.hash, 'hex');
  const given = Buffer.from(hashCredential(secret), 'hex');
  return want.length === given.length && timingSafeEqual(want, given);
}

/** Throws NODE_CREDENTIAL_REQUIRED (none sent) or NODE_CREDENTIAL_INVALID (not this node's). */
export function requireNodeCredential(repos: Repos, mac: string, headers: IncomingHttpHeaders): void {
  const secret = bearerCredential(headers);
  if (!secret) {
    throw new CorralError(
      'NODE_CREDENTIAL_REQUIRED',
      `requests for node ${mac} need its credential (Authorization: Bearer)`,
    );
  }
  if (!credentialMatches(repos, mac, secret)) {
    throw new CorralError('NODE_CREDENTIAL_INVALID', `that is not the current credential of node ${mac}`);
  }
}
