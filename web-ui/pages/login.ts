import express, { type Request, type Response, type Router } from 'express';
import { clientIp } from '../../master/util/client-ip.js';
import { parseCookies, serializeCookie } from '../cookies.js';
import { randomToken, submittedToken, tokensEqual } from '../csrf.js';
import { safeNextPath } from '../local-path.js';
import { sendPage, signedIn, type ConsoleContext } from '../page.js';
import { matchTotp, TotpReplayGuard } from '../../master/auth/totp.js';
import { clearSessionCookie, resolveSession, sessionCookie, setSessionCookie } from '../session-guard.js';

/**
 * Login CSRF: before there is a session, the form's token is paired with a short-lived cookie scoped to
 * /login (double submit). Another site can post to /login but can neither read nor set this cookie, so it
 * cannot sign a victim's browser into the attacker's account.
 */
const LOGIN_COOKIE = 'corral_login';
const LOGIN_COOKIE_SECONDS = 3600;

function field(req: Request, name: string, max: number): string {
  const body: unknown = req.body;
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value.slice(0, max) : '';
}

/** Reuses a valid pending login token so two open login tabs both work; otherwise issues a new one. */
function loginToken(ctx: ConsoleContext, req: Request, res: Response): string {
  const existing = parseCookies(req.headers.cookie).get(LOGIN_COOKIE);
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const token = randomToken();
  res.append(
    'Set-Cookie',
    serializeCookie(LOGIN_COOKIE, token, {
      path: '/login',
      secure: ctx.secureCookies,
      maxAge: LOGIN_COOKIE_SECONDS,
    }),
  );
  return token;
}

interface LoginForm {
  next: string;
  userName?: string;
  error?: string;
  notice?: string;
}

function sendLogin(ctx: ConsoleContext, req: Request, res: Response, form: LoginForm, status = 200): void {
  sendPage(ctx, res, 'login', { title: 'Sign in', csrfToken: loginToken(ctx, req, res), ...form }, status);
}

function minutes(ms: number): string {
  const m = Math.ceil(ms / 60_000);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

export function mountLogin(router: Router, ctx: ConsoleContext): void {
  const log = ctx.logger.child({ module: 'console' });
  const replay = new TotpReplayGuard();
  const audit = (req: Request, actor: string, outcome: 'ok' | 'denied' | 'failed', detail: string): void => {
    try {
      ctx.repos.audit.append({
        actor: actor || 'anonymous',
        via: 'console',
        action: 'login',
        outcome,
        ip: clientIp(req),
        detail,
      });
    } catch (err) {
      log.warn({ err }, 'could not write the audit log');
    }
  };

  router.get('/login', (req, res) => {
    const next = safeNextPath(req.query['next']);
    if (resolveSession(ctx, sessionCookie(req))) return res.redirect(302, next);
    const notice = req.query['expired'] ? 'Your session ended. Sign in again to continue.' : undefined;
    sendLogin(ctx, req, res, { next, ...(notice ? { notice } : {}) });
  });

  router.post('/login', express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    const next = safeNextPath(field(req, 'next', 2000));
    const userName = field(req, 'user', 128).trim();
    const password = field(req, 'password', 1024);
    const ip = clientIp(req) ?? 'unknown';

    const pending = parseCookies(req.headers.cookie).get(LOGIN_COOKIE);
    if (!pending || !tokensEqual(pending, submittedToken(req))) {
      log.warn({ ip }, 'console login refused: missing or wrong login form token');
      audit(req, userName, 'denied', 'missing or wrong login form token');
      return sendLogin(
        ctx,
        req,
        res,
        {
          next,
          userName,
          error: 'This sign-in form has expired or was sent from another site. Sign in again.',
        },
        403,
      );
    }

    if (!userName || !password) {
      return sendLogin(ctx, req, res, { next, userName, error: 'Enter your user name and password.' }, 400);
    }

    // The limiter is the authenticator's, shared with API Basic auth and the password change form; it
    // reserves this attempt before the password is checked, so concurrent guesses cannot overrun it.
    const from = { ip, name: userName };
    const check = await ctx.authenticator.signIn(from, password, { secondFactorFollows: true });
    if (check.outcome === 'limited') {
      log.warn({ ip, user: userName, busy: check.busy === true }, 'console login rate limited');
      audit(req, userName, 'denied', check.busy ? 'password checks busy' : 'rate limited');
      res.set('Retry-After', String(Math.ceil(check.retryAfterMs / 1000)));
      const error = check.busy
        ? 'The master is checking too many sign-ins at once. Try again in a moment.'
        : `Too many failed sign-in attempts. Wait ${minutes(check.retryAfterMs)} and try again.`;
      return sendLogin(ctx, req, res, { next, userName, error }, check.busy ? 503 : 429);
    }
    if (check.outcome === 'failed') {
      log.info({ ip, user: userName }, 'console login failed');
      audit(req, userName, 'denied', 'wrong user name or password');
      return sendLogin(ctx, req, res, { next, userName, error: 'Wrong user name or password.' }, 401);
    }
    const { user } = check;
    // Second factor (optional, per user): counted by the same limiter as a wrong password.
    const totp = ctx.repos.accounts.totp(user.name);
    if (totp?.enabledAt) {
      const step = matchTotp(totp.secret, field(req, 'code', 16).trim(), ctx.now());
      if (step === undefined || !replay.accept(user.name, step)) {
        ctx.authenticator.recordFailure(from);
        log.info({ ip, user: userName }, 'console login failed: authenticator code');
        audit(req, user.name, 'denied', 'wrong or reused authenticator code');
        const error =
          'Enter the current 6-digit code from your authenticator app (two-factor is on for this user).';
        return sendLogin(ctx, req, res, { next, userName, error }, 401);
      }
    }

    // A fresh id on every login: a session id planted before login (fixation) never becomes authenticated.
    const previous = sessionCookie(req);
    if (previous) ctx.sessions.destroy(previous);
    const session = ctx.sessions.create(user.name);
    ctx.authenticator.recordSuccess(from);
    setSessionCookie(ctx, res, session.id);
    res.append(
      'Set-Cookie',
      serializeCookie(LOGIN_COOKIE, '', { path: '/login', secure: ctx.secureCookies, maxAge: 0 }),
    );
    try {
      ctx.repos.events.append({
        kind: 'user.login',
        message: `${user.name} signed in to the console from ${ip}`,
        actor: user.name,
      });
    } catch (err) {
      // The audit line is worth having but not worth refusing a sign-in over (e.g. a store that refuses writes).
      log.warn({ err, user: user.name }, 'could not record the console login event');
    }
    log.info({ ip, user: user.name }, 'console login');
    audit(req, user.name, 'ok', totp?.enabledAt ? 'password and TOTP' : 'password');
    res.redirect(303, next);
  });
}

export function mountLogout(router: Router, ctx: ConsoleContext): void {
  router.post('/logout', (_req, res) => {
    const who = signedIn(res);
    if (who) ctx.sessions.destroy(who.session.id);
    clearSessionCookie(ctx, res);
    res.redirect(303, '/login');
  });
}
