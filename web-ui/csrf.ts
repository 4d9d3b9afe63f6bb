import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/** Name of the hidden form field every console form carries. */
export const CSRF_FIELD = '_csrf';
/** Header accepted instead of the field, for fetch() calls from console scripts. */
export const CSRF_HEADER = 'x-csrf-token';

/** 32 random bytes, base64url: the size of session ids and CSRF tokens alike. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Constant-time comparison. Hashing first gives both sides the same length, so neither the length nor
 * the first differing byte of the expected token leaks through timing.
 */
export function tokensEqual(expected: string, given: string | undefined): boolean {
  if (!given || !expected) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

/** The token a POST carries: the form field, else the header. */
export function submittedToken(req: Request): string | undefined {
  const body: unknown = req.body;
  if (body && typeof body === 'object') {
    const field = (body as Record<string, unknown>)[CSRF_FIELD];
    if (typeof field === 'string' && field) return field;
  }
  const header = req.headers[CSRF_HEADER];
  return typeof header === 'string' && header ? header : undefined;
}
