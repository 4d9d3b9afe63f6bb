/**
 * REST API v1 for images and deployment (mounted by one line in api/v1.ts, after Basic auth):
 *   GET    /images                 viewer    the catalogue
 *   GET    /images/:name           viewer    one image and the nodes using it
 *   DELETE /images/:name           admin     refused (IMAGE_IN_USE) while a node uses it; an automatic
 *                                            restore point first (snapshots.beforeRisky)
 *   POST   /nodes/:id/deploy       operator  {image, layout?} → node deploying (+ reboot attempt)
 *   GET    /nodes/:id/deployments  viewer    deploy attempts, newest first (progress, reason, log tail)
 * Import is CLI-only (`corral image import`): images are large files already on the master's disk.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { DeploymentRecord } from '../store/deployments.js';
import type { Logger } from '../util/logger.js';
import { requireRole } from '../api/auth.js';
import { zodToCorral } from '../api/errors.js';
import { findNode } from '../nodes/service.js';
import { deleteImage, findImage } from '../images/registry.js';
import type { Deployer } from './deployer.js';
import type { BeforeRisky } from '../util/before-risky.js';

export interface DeployApiDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  deployer: Deployer;
  /** Awaited before an image is deleted: an automatic restore point (snapshots.beforeRisky). */
  beforeRisky?: BeforeRisky;
}

const DeployBody = z
  .object({
    image: z.string().min(1).max(64),
    layout: z.string().min(1).max(32).optional(),
  })
  .strict();

function param(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** A deployment as the API shows it: the token and the rendered plan stay on the master. */
export function publicDeployment(d: DeploymentRecord): Record<string, unknown> {
  const view: Record<string, unknown> = { ...d };
  delete view['token'];
  delete view['plan'];
  const env = (d.plan as { env?: Record<string, string> }).env ?? {};
  return { ...view, disk: env['DISK'] ?? null, imageName: env['IMAGE_NAME'] ?? null };
}

export function createDeployApiRouter(deps: DeployApiDeps): Router {
  const { repos } = deps;
  const router = express.Router();

  router.get('/images', (_req, res) => {
    res.json({ images: repos.images.list().map((i) => ({ ...i, usedBy: repos.images.usedBy(i.sha256) })) });
  });

  router.get('/images/:name', (req, res) => {
    const image = findImage(repos, param(req.params['name']));
    res.json({ image: { ...image, usedBy: repos.images.usedBy(image.sha256) } });
  });

  router.delete('/images/:name', requireRole('admin'), async (req, res) => {
    await deleteImage(
      repos,
      deps.config.dataDir,
      param(req.params['name']),
      req.user?.name ?? null,
      deps.beforeRisky,
    );
    res.status(204).end();
  });

  router.post('/nodes/:id/deploy', requireRole('operator'), async (req, res) => {
    const r = DeployBody.safeParse(req.body);
    if (!r.success) throw zodToCorral(r.error);
    const node = findNode(repos.nodes, param(req.params['id']));
    const { deployment, reboot } = await deps.deployer.deploy(node, {
      image: r.data.image,
      layout: r.data.layout,
      actor: req.user?.name ?? null,
    });
    res
      .status(202)
      .json({ deployment: publicDeployment(deployment), reboot, node: repos.nodes.get(node.mac) });
  });

  router.get('/nodes/:id/deployments', (req, res) => {
    const node = findNode(repos.nodes, param(req.params['id']));
    res.json({ deployments: repos.deployments.listFor(node.mac).map(publicDeployment) });
  });
  return router;
}
