/**
 * REST API v1 for apps (mounted under /api/v1 after Basic auth): reads for viewers, declaring, changing,
 * pausing and resuming a rollout, reverting and removing apps for admins.
 */
import express, { type Router } from 'express';
import { requireRole } from '../api/auth.js';
import { CorralError } from '../util/errors.js';
import type { Apps } from './service.js';

function param(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

export function createAppsRouter(apps: Apps): Router {
  const router = express.Router();
  router.get('/apps', (_req, res) => {
    res.json({ apps: apps.list(), engine: apps.swarmStatus() });
  });
  router.get('/apps/engine', (_req, res) => {
    res.json({ engine: apps.swarmStatus() });
  });
  router.post('/apps', requireRole('admin'), async (req, res) => {
    res.status(201).json({ app: await apps.put(req.body, req.user?.name ?? null, 'create') });
  });
  router.get('/apps/:name', (req, res) => {
    res.json({ app: apps.get(param(req.params['name'])) });
  });
  router.put('/apps/:name', requireRole('admin'), async (req, res) => {
    const name = param(req.params['name']);
    const body: unknown = req.body;
    if (body && typeof body === 'object' && 'name' in body && (body as { name: unknown }).name !== name) {
      throw new CorralError('APP_INVALID', `name: must match the URL ('${name}'); an app cannot be renamed`);
    }
    res.json({ app: await apps.put({ ...(body as object), name }, req.user?.name ?? null, 'replace') });
  });
  router.delete('/apps/:name', requireRole('admin'), async (req, res) => {
    await apps.remove(param(req.params['name']), req.user?.name ?? null);
    res.status(204).end();
  });
  router.post('/apps/:name/revert', requireRole('admin'), async (req, res) => {
    res.json({ app: await apps.revert(param(req.params['name']), req.user?.name ?? null) });
  });
  router.post('/apps/:name/pause', requireRole('admin'), async (req, res) => {
    res.json({ app: await apps.pause(param(req.params['name']), req.user?.name ?? null) });
  });
  router.post('/apps/:name/resume', requireRole('admin'), async (req, res) => {
    res.json({ app: await apps.resume(param(req.params['name']), req.user?.name ?? null) });
  });
  router.get('/apps/:name/rollout', (req, res) => {
    res.json({ observations: apps.observations(param(req.params['name'])) });
  });
  router.get('/apps/:name/logs', async (req, res) => {
    const tail = Number(param(req.query['tail'] as string | undefined) || 100);
    if (!Number.isInteger(tail) || tail < 1 || tail > 1000) {
      throw new CorralError('APP_INVALID', 'tail: must be a whole number from 1 to 1000');
    }
    res.json({ lines: await apps.logs(param(req.params['name']), tail) });
  });
  return router;
}
