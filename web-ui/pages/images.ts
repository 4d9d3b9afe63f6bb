/**
 * Console pages for OS images and deployment (issue 5): the image catalogue with a typed-confirmation
 * delete, and a node's deploy page (choose image and layout; the node's deployments with progress, rate,
 * failure reason and log tail). Both call the same domain functions as the REST API (deleteImage,
 * Deployer.deploy), so refusals (IMAGE_IN_USE, DISK_TOO_SMALL, LAYOUT_UNKNOWN...) read the same.
 * Roles are checked here on the server: deploy needs operator, delete needs admin, as in the API.
 */
import type { Request, Response, Router } from 'express';
import { roleAllows } from '../../master/api/auth.js';
import { findNode } from '../../master/nodes/service.js';
import { describeReboot, type Deployer } from '../../master/deploy/deployer.js';
import { deleteImage } from '../../master/images/registry.js';
import type { DeploymentRecord } from '../../master/store/deployments.js';
import type { Role } from '../../master/store/users.js';
import type { BeforeRisky } from '../../master/util/before-risky.js';
import { CorralError, isCorralError } from '../../master/util/errors.js';
import { flash, formField, requireConfirmed, withFlash } from '../form.js';
import { requireConsoleRole, sendPage, signedIn, type ConsoleContext } from '../page.js';

/** Deployment status → node-state badge colour (the text always names the status). */
const BADGE: Record<DeploymentRecord['status'], string> = {
  pending: 'discovered',
  installing: 'deploying',
  installed: 'deploying',
  booted: 'deployed',
  failed: 'failed',
};

function role(res: Response): Role {
  return signedIn(res)?.user.role ?? 'viewer';
}

/** One deployment as the page shows it: no token, no plan beyond the target disk. */
export function deploymentRow(d: DeploymentRecord, imageName: string | null): Record<string, unknown> {
  const env = (d.plan as { env?: Record<string, string> }).env ?? {};
  return {
    id: d.id,
    status: d.status,
    badge: BADGE[d.status],
    image: imageName ?? env['IMAGE_NAME'] ?? d.imageSha256.slice(0, 12),
    layout: d.layout,
    disk: env['DISK'] ?? null,
    phase: d.phase,
    percent: d.percent,
    bytes: d.bytes,
    rate: d.bytesPerSec ? `${(d.bytesPerSec / 2 ** 20).toFixed(1)} MiB/s` : null,
    message: d.message,
    logTail: d.logTail,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
  };
}

export function mountImages(
  router: Router,
  ctx: ConsoleContext,
  deployer: Deployer,
  beforeRisky?: BeforeRisky,
): void {
  const { repos } = ctx;

  router.get('/images', (req, res) => {
    const images = repos.images.list().map((i) => {
      const usedBy = repos.images.usedBy(i.sha256);
      return {
        ...i,
        shortSha: i.sha256.slice(0, 12),
        os: [i.osName, i.osVersion].filter(Boolean).join(' ') || null,
        usedBy: usedBy.map((name) => ({ name, href: `/nodes/${encodeURIComponent(name)}` })),
        deleteAction: `/images/${encodeURIComponent(i.name)}/delete`,
      };
    });
    sendPage(ctx, res, 'images', {
      title: 'Images',
      nav: 'images',
      images,
      canDelete: roleAllows(role(res), 'admin'),
      ...flash(req),
    });
  });

  router.post('/images/:name/delete', async (req, res) => {
    const actor = requireConsoleRole(res, 'admin').user.name;
    const name = String(req.params['name'] ?? '');
    try {
      if (formField(req, 'confirm', 80) !== name)
        throw new CorralError('BODY_INVALID', `Type ${name} to confirm deleting the image.`);
      await deleteImage(repos, ctx.config.dataDir, name, actor, beforeRisky);
      res.redirect(303, withFlash('/images', 'ok', `Deleted image ${name}.`));
    } catch (err) {
      if (!isCorralError(err) || err.status >= 500) throw err;
      res.redirect(303, withFlash('/images', 'err', err.message));
    }
  });

  const deployHref = (req: Request): string =>
    `/nodes/${encodeURIComponent(String(req.params['id'] ?? ''))}/deploy`;

  router.get('/nodes/:id/deploy', (req, res) => {
    const node = findNode(repos.nodes, String(req.params['id'] ?? ''));
    const names = new Map(repos.images.list().map((i) => [i.sha256, i.name]));
    const layouts = ['default', ...Object.keys(ctx.config.deploy.layouts).filter((l) => l !== 'default')];
    sendPage(ctx, res, 'image-deploy', {
      title: `Deploy ${node.name}`,
      nav: 'nodes',
      node,
      nodeHref: `/nodes/${encodeURIComponent(node.mac)}`,
      images: repos.images.list().map((i) => ({ name: i.name, selected: i.sha256 === node.image })),
      layouts: layouts.map((l) => ({ name: l, selected: l === ctx.config.deploy.defaultLayout })),
      deployments: repos.deployments
        .listFor(node.mac)
        .map((d) => deploymentRow(d, names.get(d.imageSha256) ?? null)),
      canOperate: roleAllows(role(res), 'operator'),
      ...flash(req),
    });
  });

  router.post('/nodes/:id/deploy', async (req, res) => {
    const actor = requireConsoleRole(res, 'operator').user.name;
    const back = deployHref(req);
    try {
      const node = findNode(repos.nodes, String(req.params['id'] ?? ''));
      const image = formField(req, 'image', 64).trim();
      const layout = formField(req, 'layout', 32).trim();
      if (!image) throw new CorralError('BODY_INVALID', 'Choose an image to deploy.');
      requireConfirmed(req);
      const { deployment, reboot } = await deployer.deploy(node, {
        image,
        layout: layout || undefined,
        actor,
      });
      const next = describeReboot(reboot);
      res.redirect(
        303,
        withFlash(back, 'ok', `${node.name}: deploying ${image} (deployment ${deployment.id}); ${next}.`),
      );
    } catch (err) {
      if (!isCorralError(err) || err.status >= 500) throw err;
      res.redirect(303, withFlash(back, 'err', err.message));
    }
  });
}
