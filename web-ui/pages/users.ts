import type { Router } from 'express';
import {
  createUser,
  deleteUser,
  Password,
  resetPassword,
  ROLES,
  setRole,
  UserName,
} from '../../master/auth/accounts.js';
import type { Role } from '../../master/store/users.js';
import { CorralError, isCorralError } from '../../master/util/errors.js';
import { flash, formField, withFlash } from '../form.js';
import { requireConsoleRole, sendPage, type ConsoleContext } from '../page.js';

function role(value: string): Role {
  if (!(ROLES as readonly string[]).includes(value))
    throw new CorralError('BODY_INVALID', `Unknown role '${value}'.`);
  return value as Role;
}

function checked<T>(
  parse: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } };
  },
  value: unknown,
  label: string,
): T {
  const r = parse.safeParse(value);
  if (!r.success)
    throw new CorralError('BODY_INVALID', `${label} ${r.error.issues[0]?.message ?? 'is invalid'}.`);
  return r.data;
}

/** Users: admin only, in the console as in the API (the same functions enforce the same rules). */
export function mountUsers(router: Router, ctx: ConsoleContext): void {
  router.get('/users', (req, res) => {
    const who = requireConsoleRole(res, 'admin');
    const users = ctx.repos.users.list().map((u) => ({
      ...u,
      self: u.name === who.user.name,
      totp: Boolean(ctx.repos.accounts.totp(u.name)?.enabledAt),
      roles: ROLES.map((r) => ({ role: r, selected: r === u.role })),
    }));
    sendPage(ctx, res, 'users', { title: 'Users', nav: 'users', users, roles: ROLES, ...flash(req) });
  });

  // Each action redirects back with a one-line result (POST-redirect-GET), so a reload never repeats it.
  const act = (
    path: string,
    fn: (req: import('express').Request, actor: string) => Promise<string> | string,
  ): void => {
    router.post(path, async (req, res) => {
      const who = requireConsoleRole(res, 'admin');
      try {
        res.redirect(303, withFlash('/users', 'ok', await fn(req, who.user.name)));
      } catch (err) {
        if (!isCorralError(err) || err.status >= 500) throw err;
        res.redirect(303, withFlash('/users', 'err', err.message));
      }
    });
  };

  act('/users', async (req, actor) => {
    const name = checked(UserName, formField(req, 'name', 64), 'The user name');
    const password = checked(Password, formField(req, 'password', 1024), 'The password');
    await createUser(ctx.repos, { name, role: role(formField(req, 'role')), password }, actor);
    return `Created user ${name}.`;
  });
  act('/users/:name/role', (req, actor) => {
    const name = String(req.params['name']);
    const r = role(formField(req, 'role'));
    setRole(ctx.repos, name, r, actor);
    return `${name} is now ${r}.`;
  });
  act('/users/:name/password', async (req, actor) => {
    const name = String(req.params['name']);
    await resetPassword(
      ctx.repos,
      name,
      checked(Password, formField(req, 'password', 1024), 'The password'),
      actor,
    );
    return `Password of ${name} reset; their sessions were ended.`;
  });
  act('/users/:name/delete', (req, actor) => {
    const name = String(req.params['name']);
    if (formField(req, 'confirm') !== name)
      throw new CorralError('BODY_INVALID', `Type ${name} to confirm deleting it.`);
    deleteUser(ctx.repos, name, actor);
    return `Deleted user ${name}.`;
  });
}
