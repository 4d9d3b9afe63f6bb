import type { Router } from 'express';
import { clientIp } from '../../master/util/client-ip.js';
import { Password, resetPassword } from '../../master/auth/accounts.js';
import { generateTotpSecret, matchTotp, otpauthUri } from '../../master/auth/totp.js';
import { flash, formField, withFlash } from '../form.js';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';

/** The signed-in user's own account: password change and the optional TOTP second factor. */
export function mountAccount(router: Router, ctx: ConsoleContext): void {
  router.get('/account', (req, res) => {
    const who = requireConsoleRole(res, 'viewer');
    const totp = ctx.repos.accounts.totp(who.user.name);
    sendPage(ctx, res, 'account', {
      title: 'My account',
      nav: 'account',
      totpOn: Boolean(totp?.enabledAt),
      pending:
        totp && !totp.enabledAt
          ? { secret: totp.secret, uri: otpauthUri('Corral', who.user.name, totp.secret) }
          : null,
      ...flash(req),
    });
  });

  router.post('/account/password', async (req, res) => {
    const who = requireConsoleRole(res, 'viewer');
    const current = formField(req, 'current', 1024);
    // Counted like a sign-in: a stolen session must not become an unlimited password oracle.
    const check = await ctx.authenticator.signIn(
      { ip: clientIp(req) ?? 'unknown', name: who.user.name },
      current,
    );
    if (check.outcome === 'limited') {
      res.set('Retry-After', String(Math.ceil(check.retryAfterMs / 1000)));
      const minutes = Math.ceil(check.retryAfterMs / 60_000);
      return res.redirect(
        303,
        withFlash(
          '/account',
          'err',
          `Too many wrong passwords. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`,
        ),
      );
    }
    if (check.outcome === 'failed') {
      return res.redirect(303, withFlash('/account', 'err', 'Your current password is wrong.'));
    }
    const next = Password.safeParse(formField(req, 'password', 1024));
    if (!next.success) {
      return res.redirect(
        303,
        withFlash('/account', 'err', `The new password ${next.error.issues[0]?.message ?? 'is invalid'}.`),
      );
    }
    await resetPassword(ctx.repos, who.user.name, next.data, who.user.name);
    // resetPassword ended every session of the user, this one included: sign in again with the new password.
    res.redirect(303, '/login?expired=1');
  });

  router.post('/account/totp/start', (_req, res) => {
    const who = requireConsoleRole(res, 'viewer');
    const existing = ctx.repos.accounts.totp(who.user.name);
    if (existing?.enabledAt)
      return res.redirect(303, withFlash('/account', 'err', 'Two-factor is already on.'));
    ctx.repos.store.write((journal) =>
      ctx.repos.accounts.setTotpIn(journal, who.user.name, generateTotpSecret(), null),
    );
    res.redirect(303, '/account#totp');
  });

  router.post('/account/totp/confirm', (req, res) => {
    const who = requireConsoleRole(res, 'viewer');
    const pending = ctx.repos.accounts.totp(who.user.name);
    if (!pending || pending.enabledAt) return res.redirect(303, '/account');
    if (matchTotp(pending.secret, formField(req, 'code', 16).trim(), ctx.now()) === undefined) {
      return res.redirect(
        303,
        withFlash(
          '/account',
          'err',
          "That code does not match; check the app's clock and try the current code.",
        ),
      );
    }
    ctx.repos.store.write((journal) => {
      ctx.repos.accounts.setTotpIn(journal, who.user.name, pending.secret, new Date(ctx.now()).toISOString());
      ctx.repos.events.appendIn(journal, {
        kind: 'user.totp',
        message: `${who.user.name} turned on two-factor sign-in`,
        actor: who.user.name,
      });
    });
    res.redirect(
      303,
      withFlash('/account', 'ok', 'Two-factor sign-in is on: the next sign-in asks for a code.'),
    );
  });

  router.post('/account/totp/disable', (req, res) => {
    const who = requireConsoleRole(res, 'viewer');
    const totp = ctx.repos.accounts.totp(who.user.name);
    if (
      totp?.enabledAt &&
      matchTotp(totp.secret, formField(req, 'code', 16).trim(), ctx.now()) === undefined
    ) {
      return res.redirect(303, withFlash('/account', 'err', 'Enter a current code to turn two-factor off.'));
    }
    ctx.repos.store.write((journal) => {
      ctx.repos.accounts.clearTotpIn(journal, who.user.name);
      if (totp?.enabledAt)
        ctx.repos.events.appendIn(journal, {
          kind: 'user.totp',
          message: `${who.user.name} turned off two-factor sign-in`,
          actor: who.user.name,
        });
    });
    res.redirect(
      303,
      withFlash('/account', 'ok', totp?.enabledAt ? 'Two-factor sign-in is off.' : 'Enrolment cancelled.'),
    );
  });
}
