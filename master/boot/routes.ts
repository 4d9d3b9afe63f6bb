import express, { type Router } from 'express';
import { existsSync } from 'node:fs';
import type { FrozenConfig } from '../config.js';
import { publicUrl } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { renderTemplate } from '../util/templates.js';
import { normaliseMac } from '../nodes/inventory.js';
import { chooseBootScript } from './scripts.js';
import type { BootActivitySink } from './activity.js';
import { sendFile } from './send-file.js';
import { nodeImageSummary, type NodeImageStatus } from './node-image-builder.js';
import type { NodeImageFiles } from './node-image.js';

export type { NodeImageFiles } from './node-image.js';

export interface BootDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  /** The built node environment, or undefined while it is not built. */
  nodeImage: () => NodeImageFiles | undefined;
  /** The boot timeline (issue 22): scripts served, kernel and initrd fetches. */
  activity?: BootActivitySink;
  /** Where its build stands, told to a waiting node (node-image-builder.ts). */
  nodeImageStatus?: () => NodeImageStatus;
}

/**
 * HTTP boot: iPXE scripts by node state, and the node environment's kernel and initrd. Unauthenticated
 * (firmware cannot log in); only boot material is served here, by fixed names, never a path from the URL.
 */
export function createBootRouter(deps: BootDeps): Router {
  const router = express.Router();
  const log = deps.logger.child({ module: 'boot' });
  const baseUrl = publicUrl(deps.config);
  /** Where the build stands, while there is no image to serve (a `ready` status then has nothing to add). */
  const notReady = (): string | undefined => {
    const s = deps.nodeImageStatus?.();
    return s && s.state !== 'ready' ? nodeImageSummary(s, Date.now()) : undefined;
  };

  router.get('/ipxe', (req, res) => {
    res.type('text/plain; charset=utf-8').setHeader('Cache-Control', 'no-store');
    const raw = typeof req.query['mac'] === 'string' ? req.query['mac'] : '';
    const mac = normaliseMac(raw);
    if (!mac) {
      res.send(renderTemplate('ipxe/ask-mac.hbs', { baseUrl }));
      return;
    }
    const image = deps.nodeImage();
    const script = chooseBootScript({
      mac,
      node: deps.repos.nodes.get(mac),
      baseUrl,
      kernelArgs: deps.config.boot.kernelArgs,
      nodeImageReady: image !== undefined,
      ...(image ? {} : { nodeImageStatus: notReady() }),
      deployment: deps.repos.deployments.latestFor(mac),
    });
    log.info({ mac, template: script.template, ip: req.socket.remoteAddress }, 'boot script');
    deps.activity?.record(mac, {
      kind: 'script',
      template: script.template,
      ip: req.socket.remoteAddress ?? '',
    });
    res.send(renderTemplate(script.template, script.vars));
  });

  const sendNodeFile =
    (pick: (f: NodeImageFiles) => string) => (req: express.Request, res: express.Response) => {
      deps.activity?.watchFetch(req, res);
      const image = deps.nodeImage();
      const file = image ? pick(image) : undefined;
      if (!file || !existsSync(file)) {
        res
          .status(404)
          .type('text/plain')
          .send(`${notReady() ?? 'the node environment is not built: run `corral node-image build`'}\n`);
        return;
      }
      log.debug({ file, range: req.headers.range, ip: req.socket.remoteAddress }, 'serving node file');
      sendFile(res, file, log);
    };
  router.get(
    '/node/vmlinuz',
    sendNodeFile((f) => f.kernelPath),
  );
  router.get(
    '/node/initrd.img',
    sendNodeFile((f) => f.initrdPath),
  );
  return router;
}
