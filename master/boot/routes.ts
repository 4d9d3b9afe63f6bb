import express, { type Router } from 'express';
import { existsSync, statSync } from 'node:fs';
import type { FrozenConfig } from '../config.js';
import { publicUrl } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { renderTemplate } from '../util/templates.js';
import { normaliseMac } from '../nodes/inventory.js';
import { chooseBootScript } from './scripts.js';
import type { BootActivitySink } from './activity.js';

export interface NodeImageFiles {
  kernelPath: string;
  initrdPath: string;
}

export interface BootDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  /** The built node environment, or undefined while it is not built. */
  nodeImage: () => NodeImageFiles | undefined;
  /** The boot timeline (issue 22): scripts served, kernel and initrd fetches. */
  activity?: BootActivitySink;
}

/**
 * HTTP boot: iPXE scripts by node state, and the node environment's kernel and initrd. Unauthenticated
 * (firmware cannot log in); only boot material is served here, by fixed names, never a path from the URL.
 */
export function createBootRouter(deps: BootDeps): Router {
  const router = express.Router();
  const log = deps.logger.child({ module: 'boot' });
  const baseUrl = publicUrl(deps.config);

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
          .send('node environment not built: run `corral node-image build`\n');
        return;
      }
      log.debug({ file, range: req.headers.range, ip: req.socket.remoteAddress }, 'serving node file');
      // res.sendFile (the `send` module) answers Range requests with 206 and Content-Range, 416 when
      // unsatisfiable, and always sets Content-Length; iPXE and the agent rely on that.
      res.sendFile(
        file,
        { acceptRanges: true, cacheControl: false, lastModified: true, etag: true },
        (err) => {
          if (!err || res.headersSent) return;
          const status = (err as { status?: number }).status ?? 500;
          if (status === 416) {
            // RFC 9110 section 15.5.17: say the current length so the client can ask again.
            res
              .status(416)
              .setHeader('Content-Range', `bytes */${statSync(file).size}`)
              .end();
          } else if (status >= 500) {
            log.warn({ file, err: err.message }, 'serving node file failed');
            res.status(500).end();
          } else {
            res.status(status).end();
          }
        },
      );
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
