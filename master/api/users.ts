/**
 * Users and the audit log over the API: admin only, enforced here (not only hidden in the console).
 * Mounted by v1.ts after Basic auth.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import {
  createUser,
  deleteUser,
  Password,
  resetPassword,
  ROLES,
  setRole,
  UserName,
} from '../auth/accounts.js';
import type { Repos } from '../store/repos.js';
import { requireRole } from './auth.js';
import { zodToCorral } from './errors.js';

const CreateUser = z.object({ name: UserName, role: z.enum(ROLES), password: Password }).strict();
const PatchUser = z.object({ role: z.enum(ROLES).optional(), password: Password.optional() }).strict();
const AuditQuery = z.object({
  before: z.coerce.number().int().min(1).optional(),
  actor: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

function nameParam(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function createUsersRouter(repos: Repos): Router {
  const router = express.Router();
  router.use(['/users', '/audit'], requireRole('admin'));

  router.get('/users', (_req, res) => {
    res.json({
      users: repos.users.list().map((u) => ({ ...u, totp: Boolean(repos.accounts.totp(u.name)?.enabledAt) })),
    });
  });

  router.post('/users', async (req, res) => {
    const body = parse(CreateUser, req.body);
    await createUser(repos, body, req.user?.name ?? 'unknown');
    const user = repos.users.list().find((u) => u.name === body.name);
    res.status(201).json({ user });
  });

  router.patch('/users/:name', async (req, res) => {
    const name = nameParam(req.params['name']);
    const body = parse(PatchUser, req.body);
    const actor = req.user?.name ?? 'unknown';
    if (body.role) setRole(repos, name, body.role, actor);
    if (body.password) await resetPassword(repos, name, body.password, actor);
    const user = repos.users.list().find((u) => u.name === name);
    res.json({ user });
  });

  router.delete('/users/:name', (req, res) => {
    deleteUser(repos, nameParam(req.params['name']), req.user?.name ?? 'unknown');
    res.status(204).end();
  });

  router.get('/audit', (req, res) => {
    const q = parse(AuditQuery, req.query);
    res.json({
      audit: repos.audit.list({
        ...(q.before !== undefined ? { before: q.before } : {}),
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
      }),
    });
  });
  return router;
}
