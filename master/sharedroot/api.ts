/**
 * REST API v1 for shared roots (mounted after auth):
 *   GET    /sharedroots                      roots with versions and nodes, and the NFS server's status
 *   POST   /sharedroots                      {name, fromDir | fromImage}            admin
 *   GET    /sharedroots/:name
 *   POST   /sharedroots/:name/edit           → {version, path}: a draft copy          admin
 *   POST   /sharedroots/:name/publish        {version?}: make the draft current       admin
 *   POST   /sharedroots/:name/rollback       {to?}                                    admin
 *   DELETE /sharedroots/:name[?version=N]                                             admin
 *   POST   /nodes/:id/diskless               {root, persistent?}                      operator
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { findNode } from '../nodes/service.js';
import type { Repos } from '../store/repos.js';
import type { SharedRootSubsystem } from './index.js';

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw zodToCorral(r.error);
  return r.data;
}

const CreateBody = z
  .object({
    name: z.string().min(1).max(32),
    fromDir: z.string().min(1).max(4096).optional(),
    fromImage: z.string().min(1).max(200).optional(),
  })
  .strict();
const PublishBody = z.object({ version: z.number().int().min(1).optional() }).strict();
const RollbackBody = z.object({ to: z.number().int().min(1).optional() }).strict();
const DisklessBody = z
  .object({ root: z.string().min(1).max(32), persistent: z.boolean().optional() })
  .strict();

type Handler = (req: Request, res: Response) => Promise<void> | void;
const wrap =
  (h: Handler) =>
  (req: Request, res: Response, next: NextFunction): void => {
    Promise.resolve()
      .then(() => h(req, res))
      .catch(next);
  };

function param(req: Request, name: string): string {
  const v = req.params[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function createSharedRootApiRouter(sub: SharedRootSubsystem, repos: Repos): Router {
  const router = express.Router();
  const roots = sub.roots;

  router.get(
    '/sharedroots',
    wrap((_req, res) => {
      res.json({ sharedRoots: roots.list(), nfs: sub.status() });
    }),
  );
  router.post(
    '/sharedroots',
    requireRole('admin'),
    wrap(async (req, res) => {
      const body = parse(CreateBody, req.body);
      const created = await roots.create(body.name, {
        ...(body.fromDir !== undefined ? { dir: body.fromDir } : {}),
        ...(body.fromImage !== undefined ? { image: body.fromImage } : {}),
      });
      await sub.reconcile();
      res.status(201).json({ sharedRoot: created, nfs: sub.status() });
    }),
  );
  router.get(
    '/sharedroots/:name',
    wrap((req, res) => {
      res.json({ sharedRoot: roots.get(param(req, 'name')) });
    }),
  );
  router.post(
    '/sharedroots/:name/edit',
    requireRole('admin'),
    wrap(async (req, res) => {
      res.json(await roots.edit(param(req, 'name')));
    }),
  );
  router.post(
    '/sharedroots/:name/publish',
    requireRole('admin'),
    wrap(async (req, res) => {
      const body = parse(PublishBody, req.body);
      const r = roots.publish(param(req, 'name'), body.version);
      await sub.reconcile();
      res.json({ sharedRoot: r, nfs: sub.status() });
    }),
  );
  router.post(
    '/sharedroots/:name/rollback',
    requireRole('admin'),
    wrap(async (req, res) => {
      const body = parse(RollbackBody, req.body);
      const r = roots.rollback(param(req, 'name'), body.to);
      await sub.reconcile();
      res.json({ sharedRoot: r, nfs: sub.status() });
    }),
  );
  router.delete(
    '/sharedroots/:name',
    requireRole('admin'),
    wrap(async (req, res) => {
      const v = typeof req.query['version'] === 'string' ? Number(req.query['version']) : undefined;
      await roots.remove(param(req, 'name'), Number.isInteger(v) ? v : undefined);
      await sub.reconcile();
      res.status(204).end();
    }),
  );
  router.post(
    '/nodes/:id/diskless',
    requireRole('operator'),
    wrap(async (req, res) => {
      const body = parse(DisklessBody, req.body);
      const node = findNode(repos.nodes, param(req, 'id'));
      const assignment = roots.assign(node, body.root, {
        ...(body.persistent !== undefined ? { persistent: body.persistent } : {}),
        actor: req.user?.name ?? null,
      });
      await sub.reconcile();
      res.json({ node: repos.nodes.get(node.mac), assignment });
    }),
  );
  return router;
}
