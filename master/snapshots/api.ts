/**
 * REST API v1 for restore points, mounted by api/v1.ts at /snapshots after Basic auth. Reading is for
 * viewers; creating, restoring, deleting and applying retention are for admins. A restore needs the
 * restore point's name (or id) typed back in `confirm`, as the console asks for it.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import { requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { CorralError } from '../util/errors.js';
import type { Snapshots } from './index.js';
import { RETENTION_SETTING } from './index.js';
import type { Repos } from '../store/repos.js';
import { RetentionPolicySchema } from './retention.js';

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

const CreateBody = z
  .object({ name: z.string().max(64).optional(), note: z.string().max(1000).optional() })
  .strict();
const RestoreBody = z.object({ confirm: z.string().max(200).optional() }).strict();
const RetentionBody = z.object({ policy: RetentionPolicySchema.optional() }).strict();
const DiffQuery = z.object({ to: z.string().max(100).default('current') });

function param(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function createSnapshotRouter(snapshots: Snapshots, repos: Repos): Router {
  const { points } = snapshots;
  const router = express.Router();

  router.get('/', (_req, res) => {
    res.json({ snapshots: points.list(), retention: snapshots.retention() });
  });

  router.post('/', requireRole('admin'), async (req, res) => {
    const body = parse(CreateBody, req.body);
    const snapshot = await points.create({ ...body, kind: 'manual', actor: req.user?.name ?? null });
    res.status(201).json({ snapshot });
  });

  router.post('/retention/preview', requireRole('viewer'), (req, res) => {
    const body = parse(RetentionBody, req.body);
    const policy = body.policy ?? snapshots.retention();
    res.json({ policy, ...points.previewRetention(policy) });
  });

  router.post('/retention/apply', requireRole('admin'), async (req, res) => {
    const body = parse(RetentionBody, req.body);
    const policy = body.policy ?? snapshots.retention();
    if (body.policy) repos.settings.set(RETENTION_SETTING, policy);
    res.json({ policy, ...(await points.applyRetention(policy, req.user?.name ?? null)) });
  });

  router.get('/:id', (req, res) => {
    res.json({ snapshot: points.get(param(req.params['id'])) });
  });

  router.get('/:id/diff', (req, res) => {
    const q = parse(DiffQuery, req.query);
    res.json(points.diff(param(req.params['id']), q.to));
  });

  router.post('/:id/restore', requireRole('admin'), async (req, res) => {
    const body = parse(RestoreBody, req.body);
    const target = points.get(param(req.params['id']));
    if (body.confirm !== target.name && body.confirm !== target.id) {
      throw new CorralError(
        'SNAPSHOT_CONFIRMATION_REQUIRED',
        `to restore, send {"confirm": "${target.name}"} (the restore point's name)`,
      );
    }
    res.json(await points.restore(target.id, req.user?.name ?? null));
  });

  router.delete('/:id', requireRole('admin'), async (req, res) => {
    await points.delete(param(req.params['id']), req.user?.name ?? null);
    res.status(204).end();
  });

  return router;
}
