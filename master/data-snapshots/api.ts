/**
 * REST API v1 for data sets and data snapshots, mounted under /api/v1 after Basic auth. Reading is for
 * viewers; declaring, snapshotting, restoring and deleting are for admins. A restore needs the snapshot's
 * name typed back in `confirm`, as the console asks for it.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import { requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { CorralError } from '../util/errors.js';
import { RetentionPolicySchema, ScheduleSchema } from '../snapshots/retention.js';
import { publicDataSet, type DataSnapshots } from './service.js';

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

function param(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

const SnapshotBody = z
  .object({ node: z.string().max(64).optional(), reason: z.string().max(500).optional() })
  .strict();
const PolicyBody = z
  .object({ schedule: ScheduleSchema.optional(), retention: RetentionPolicySchema.optional() })
  .strict();
const PreviewBody = z
  .object({ node: z.string().max(64).optional(), retention: RetentionPolicySchema.optional() })
  .strict();
const RestoreBody = z
  .object({
    confirm: z.string().max(200).optional(),
    node: z.string().max(64).optional(),
    dataSet: z.string().max(64).optional(),
    safety: z.boolean().optional(),
  })
  .strict();
const ListQuery = z.object({ node: z.string().max(64).optional(), dataSet: z.string().max(64).optional() });
const DiffQuery = z.object({ to: z.string().max(200).optional() });

export function createDataSnapshotApi(service: DataSnapshots): Router {
  const router = express.Router();
  const actor = (req: express.Request): string | null => req.user?.name ?? null;

  router.get('/data-sets', (_req, res) => {
    res.json({
      dataSets: service
        .sets()
        .map((d) => ({ ...publicDataSet(d), nodes: service.nodesOf(d).map((n) => n.name) })),
    });
  });
  router.post('/data-sets', requireRole('admin'), (req, res) => {
    res.status(201).json({ dataSet: publicDataSet(service.declare(req.body)) });
  });
  router.get('/data-sets/:id', (req, res) => {
    const d = service.set(param(req.params['id']));
    res.json({ dataSet: { ...publicDataSet(d), nodes: service.nodesOf(d).map((n) => n.name) } });
  });
  router.patch('/data-sets/:id', requireRole('admin'), (req, res) => {
    const b = parse(PolicyBody, req.body);
    res.json({ dataSet: publicDataSet(service.setPolicy(param(req.params['id']), b.schedule, b.retention)) });
  });
  router.delete('/data-sets/:id', requireRole('admin'), (req, res) => {
    service.deleteSet(param(req.params['id']));
    res.status(204).end();
  });
  router.post('/data-sets/:id/snapshots', requireRole('admin'), async (req, res) => {
    const b = parse(SnapshotBody, req.body);
    const snapshot = await service.snapshot(param(req.params['id']), {
      ...(b.node ? { node: b.node } : {}),
      ...(b.reason ? { reason: b.reason } : {}),
      actor: actor(req),
    });
    res.status(201).json({ snapshot });
  });
  router.post('/data-sets/:id/retention/preview', requireRole('viewer'), (req, res) => {
    const b = parse(PreviewBody, req.body);
    res.json(service.retentionPlan(param(req.params['id']), b.node, b.retention));
  });
  router.post('/data-sets/:id/retention/apply', requireRole('admin'), (req, res) => {
    const b = parse(PreviewBody, req.body);
    if (b.retention) service.setPolicy(param(req.params['id']), undefined, b.retention);
    res.json(service.applyRetention(param(req.params['id']), b.node));
  });

  router.get('/data-snapshots', (req, res) => {
    const q = parse(ListQuery, req.query);
    res.json({ snapshots: service.list(q) });
  });
  router.get('/data-snapshots/:id', (req, res) => {
    const id = param(req.params['id']);
    res.json({ snapshot: service.get(id), files: service.files(id) });
  });
  router.get('/data-snapshots/:id/diff', (req, res) => {
    const q = parse(DiffQuery, req.query);
    res.json(service.diff(param(req.params['id']), q.to));
  });
  router.post('/data-snapshots/:id/restore', requireRole('admin'), async (req, res) => {
    const b = parse(RestoreBody, req.body);
    const s = service.get(param(req.params['id']));
    if (b.confirm !== s.name) {
      throw new CorralError(
        'SNAPSHOT_CONFIRMATION_REQUIRED',
        `to restore, send {"confirm": "${s.name}"} (the data snapshot's name)`,
      );
    }
    res.json(
      await service.restore(s.id, {
        ...(b.node ? { node: b.node } : {}),
        ...(b.dataSet ? { dataSet: b.dataSet } : {}),
        ...(b.safety !== undefined ? { safety: b.safety } : {}),
        actor: actor(req),
      }),
    );
  });
  router.delete('/data-snapshots/:id', requireRole('admin'), (req, res) => {
    service.delete(param(req.params['id']));
    res.status(204).end();
  });
  return router;
}
