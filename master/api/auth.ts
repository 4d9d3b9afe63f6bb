import type { RequestHandler } from 'express';
import type { Authenticator } from '../auth/users.js';
import type { Role, UserRecord } from '../store/users.js';
import { CorralError } from '../util/errors.js';

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

/** HTTP Basic auth for the API; `minRole` is enforced here, in the API, not only hidden in the UI. */
export function requireBasicAuth(authenticator: Authenticator, minRole: Role = 'viewer'): RequestHandler {
  return async (req, _res, next) => {
    const creds = parseBasic(req.headers.authorization);
    if (!creds) return next(new CorralError('AUTH_REQUIRED', 'authentication required'));
    const user = await authenticator.verify(creds.name, creds.password);
    if (!user) return next(new CorralError('AUTH_FAILED', 'wrong user name or password'));
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
