/**
 * REST API v1 for services and HAProxy (mounted by api/v1.ts after Basic auth). Reads for viewers,
 * drain/maint/ready for operators, declaring services and reloads for admins.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import { zodToCorral } from '../api/errors.js';
import { requireRole } from '../api/auth.js';
import { findNode } from '../nodes/service.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { LoadBalancer } from './load-balancer.js';
import { ADMIN_STATES } from './service-spec.js';

const StateBody = z.object({ state: z.enum(ADMIN_STATES) }).strict();

function param(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

export function createLbRouter(lb: LoadBalancer, repos: Pick<Repos, 'nodes'>): Router {
  const router = express.Router();

  router.get('/services', (_req, res) => {
    res.json({ services: lb.views() });
  });

  router.post('/services', requireRole('admin'), async (req, res) => {
    const spec = await lb.putService(req.body, req.user?.name ?? null, 'create');
    res.status(201).json({ service: lb.view(spec) });
  });

  router.get('/services/:name', (req, res) => {
    res.json({ service: lb.view(lb.service(param(req.params['name']))) });
  });

  router.put('/services/:name', requireRole('admin'), async (req, res) => {
    const name = param(req.params['name']);
    const body: unknown = req.body;
    if (body && typeof body === 'object' && 'name' in body && (body as { name: unknown }).name !== name) {
      throw new CorralError(
        'BODY_INVALID',
        `name: must match the URL ('${name}'); a service cannot be renamed`,
      );
    }
    const spec = await lb.putService({ ...(body as object), name }, req.user?.name ?? null, 'replace');
    res.json({ service: lb.view(spec) });
  });

  router.delete('/services/:name', requireRole('admin'), async (req, res) => {
    await lb.deleteService(param(req.params['name']), req.user?.name ?? null);
    res.status(204).end();
  });

  router.post('/services/:name/servers/:node/state', requireRole('operator'), async (req, res) => {
    const parsed = StateBody.safeParse(req.body);
    if (!parsed.success) throw zodToCorral(parsed.error);
    const server = await lb.setServerState(
      param(req.params['name']),
      param(req.params['node']),
      parsed.data.state,
      req.user?.name ?? null,
    );
    res.json({ server });
  });

  router.get('/lb', (_req, res) => {
    res.json(lb.status());
  });

  router.post('/lb/reload', requireRole('admin'), async (_req, res) => {
    res.json({ haproxy: await lb.reload() });
  });

  router.get('/lb/nodes/:id', (req, res) => {
    const id = param(req.params['id']);
    const node = findNode(repos.nodes, id);
    res.json({
      node: { mac: node.mac, name: node.name, state: node.state },
      services: lb.nodeHealth(node.mac),
    });
  });

  return router;
}
