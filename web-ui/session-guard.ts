import type { Request, RequestHandler, Response } from 'express';
import { CorralError } from '../master/util/errors.js';
import { parseCookies, serializeCookie } from './cookies.js';
import { submittedToken, tokensEqual } from './csrf.js';
import { setSignedIn, signedIn, type ConsoleContext, type SignedIn } from './page.js';

export const SESSION_COOKIE = 'corral_session';

export function setSessionCookie(ctx: ConsoleContext, res: Response, id: string): void {
  res.append('Set-Cookie', serializeCookie(SESSION_COOKIE, id, { path: '/', secure: ctx.secureCookies }));
}

export function clearSessionCookie(ctx: ConsoleContext, res: Response): void {
  res.append(
    'Set-Cookie',
    serializeCookie(SESSION_COOKIE, '', { path: '/', secure: ctx.secureCookies, maxAge: 0 }),
  );
}

export function sessionCookie(req: Request): string | undefined {
  return parseCookies(req.headers.cookie).get(SESSION_COOKIE) || undefined;
}

/**
 * The live session behind the request's cookie, with its user as stored now: a user deleted or demoted
 * since login is seen at once, and a deleted user's sessions end.
 */
export function resolveSession(
  ctx: ConsoleContext,
  id: string | undefined,
  how: 'touch' | 'peek' = 'touch',
): SignedIn | undefined {
  const session = !id ? undefined : how === 'touch' ? ctx.sessions.touch(id) : ctx.sessions.peek(id);
  if (!session) return undefined;
  const user = ctx.repos.users.get(session.userName);
  if (!user) {
    ctx.sessions.destroy(session.id);
    return undefined;
  }
  return { session, user: { name: user.name, role: user.role } };
}

/**
 * Everything mounted after this needs a live session. Without one, a page request goes to the login page
 * with `next` set so the admin lands where they were going; a form post (whose body cannot be replayed)
 * goes to the login page alone. A stale cookie is cleared and the login page says the session ended.
 */
export function sessionGuard(ctx: ConsoleContext): RequestHandler {
  return (req, res, next) => {
    const id = sessionCookie(req);
    const who = resolveSession(ctx, id);
    if (who) {
      setSignedIn(res, who);
      return next();
    }
    const params = new URLSearchParams();
    if (req.method === 'GET' || req.method === 'HEAD') params.set('next', req.originalUrl);
    if (id) {
      clearSessionCookie(ctx, res);
      params.set('expired', '1');
    }
    const qs = params.toString();
    res.redirect(req.method === 'GET' || req.method === 'HEAD' ? 302 : 303, qs ? `/login?${qs}` : '/login');
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Every state-changing request of a signed-in user must carry the session's CSRF token (form field or header). */
export const requireCsrf: RequestHandler = (req, res, next) => {
  if (SAFE_METHODS.has(req.method)) return next();
  const who = signedIn(res);
  if (!who || !tokensEqual(who.session.csrfToken, submittedToken(req))) {
    return next(new CorralError('CSRF_INVALID', 'This form has expired or was sent from another site.'));
  }
  next();
};
