/**
 * REST API v1 for cloud-init (mounted after auth, under /api/v1):
 *   GET    /cloud-init/layers                          every layer                         operator
 *   GET    /cloud-init/layers/:scope[/:target]         one layer                           operator
 *   PUT    /cloud-init/layers/:scope[/:target]         {content}: set (validated)          admin
 *   DELETE /cloud-init/layers/:scope[/:target]                                             admin
 *   GET    /cloud-init/nodes/:id                       the node's rendered datasource       operator
 * scope is global (no target), role, tag or node (target: MAC or name). User-data runs as root on every
 * node it reaches, so writing it is an admin's act; reading it (it may hold secrets) an operator's.
 */
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import { requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { findNode } from '../nodes/service.js';
import type { Repos } from '../store/repos.js';
import type { CloudInit } from './service.js';

const SetBody = z.object({ content: z.string() }).strict();

function param(req: Request, name: string): string {
  const v = req.params[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function createCloudInitApiRouter(cloudInit: CloudInit, repos: Pick<Repos, 'nodes'>): Router {
  const router = express.Router();
  const layerPath = '/cloud-init/layers/:scope{/:target}';

  router.get('/cloud-init/layers', requireRole('operator'), (_req, res) => {
    res.json({ layers: cloudInit.list() });
  });
  router.get(layerPath, requireRole('operator'), (req, res) => {
    res.json({ layer: cloudInit.get(param(req, 'scope'), param(req, 'target')) });
  });
  router.put(layerPath, requireRole('admin'), (req, res) => {
    const r = SetBody.safeParse(req.body ?? {});
    if (!r.success) throw zodToCorral(r.error);
    const layer = cloudInit.set(
      param(req, 'scope'),
      param(req, 'target'),
      r.data.content,
      req.user?.name ?? null,
    );
    res.json({ layer });
  });
  router.delete(layerPath, requireRole('admin'), (req, res) => {
    cloudInit.delete(param(req, 'scope'), param(req, 'target'));
    res.status(204).end();
  });
  router.get('/cloud-init/nodes/:id', requireRole('operator'), (req, res) => {
    res.json(cloudInit.render(findNode(repos.nodes, param(req, 'id'))));
  });
  return router;
}
