import type { RequestHandler } from 'express';
import type { Authenticator } from '../auth/users.js';
import type { Role, UserRecord } from '../store/users.js';
import { CorralError } from '../util/errors.js';
import { clientIp } from '../util/client-ip.js';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function roleAllows(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: Omit<UserRecord, 'passwordHash'>;
  }
}

/** Decodes an `Authorization: Basic` header (RFC 7617); undefined when absent or malformed. */
export function parseBasic(header: string | undefined): { name: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * HTTP Basic auth for the API; `minRole` is enforced here, in the API, not only hidden in the UI. Failures
 * count against the same per-IP and per-name limit as console sign-ins; once it is reached the answer is
 * 429 AUTH_RATE_LIMITED with Retry-After, and the password is not checked (no scrypt for a flood); when
 * every password-check slot is taken the answer is 503 AUTH_BUSY.
 */
export function requireBasicAuth(authenticator: Authenticator, minRole: Role = 'viewer'): RequestHandler {
  return async (req, res, next) => {
    const creds = parseBasic(req.headers.authorization);
    if (!creds) return next(new CorralError('AUTH_REQUIRED', 'authentication required'));
    const result = await authenticator.signIn(
      { ip: clientIp(req) ?? 'unknown', name: creds.name },
      creds.password,
    );
    if (result.outcome === 'limited') {
      if (result.busy) {
        res.setHeader('Retry-After', '1');
        return next(new CorralError('AUTH_BUSY', 'too many sign-ins being checked at once; retry in 1 s'));
      }
      const seconds = Math.ceil(result.retryAfterMs / 1000);
      res.setHeader('Retry-After', String(seconds));
      return next(
        new CorralError('AUTH_RATE_LIMITED', `too many failed sign-ins; retry in ${seconds} s`, {
          retryAfterSeconds: seconds,
        }),
      );
    }
    if (result.outcome === 'failed')
      return next(new CorralError('AUTH_FAILED', 'wrong user name or password'));
    const { user } = result;
    if (!roleAllows(user.role, minRole)) {
      return next(new CorralError('FORBIDDEN', `role ${user.role} may not do this (needs ${minRole})`));
    }
    req.user = { name: user.name, role: user.role, createdAt: user.createdAt, updatedAt: user.updatedAt };
    next();
  };
}

/** For routes mounted after requireBasicAuth that need a higher role. */
export function requireRole(minRole: Role): RequestHandler {
  return (req, _res, next) => {
    if (!req.user) return next(new CorralError('AUTH_REQUIRED', 'authentication required'));
    if (!roleAllows(req.user.role, minRole)) {
      return next(new CorralError('FORBIDDEN', `role ${req.user.role} may not do this (needs ${minRole})`));
    }
    next();
  };
}
