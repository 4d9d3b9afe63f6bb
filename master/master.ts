/**
 * The appliance daemon: opens the store, makes sure an admin exists, and starts the HTTP (API, boot,
 * console), DHCP and TFTP servers from one frozen config. `close()` stops them in reverse order.
 */
import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FrozenConfig } from './config.js';
import { publicUrl } from './config.js';
import { openRepos, type Repos } from './store/repos.js';
import { Authenticator, ensureAdmin } from './auth/users.js';
import { createApiRouter } from './api/v1.js';
import { createBootRouter, type NodeImageFiles } from './boot/routes.js';
import { prepareTftpRoot } from './boot/files.js';
import { locateNodeImage } from './boot/node-image.js';
import { createHttpApp } from './http.js';
import type { Logger } from './util/logger.js';
import { VERSION } from './util/version.js';

export interface MasterOptions {
  logger: Logger;
  /** First admin password (CORRAL_ADMIN_PASSWORD), read by the CLI. */
  initialAdminPassword?: string;
}

export interface Master {
  config: FrozenConfig;
  repos: Repos;
  httpPort: number;
  close(): Promise<void>;
}

interface Closable {
  name: string;
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startMaster(config: FrozenConfig, options: MasterOptions): Promise<Master> {
  const logger = options.logger;
  const startedAt = Date.now();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  const repos = openRepos({ path: join(config.dataDir, 'corral.db'), logger });
  const closers: Closable[] = [{ name: 'store', close: async () => repos.store.close() }];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch (err) {
        logger.warn({ err, part: c.name }, 'error while stopping');
      }
    }
  };

  try {
    await ensureAdmin(repos, config.dataDir, options.initialAdminPassword, logger);
    const authenticator = new Authenticator(repos);
    const tftp = prepareTftpRoot(config, logger);
    let nodeImage: NodeImageFiles | undefined = locateNodeImage(config.dataDir);
    const nodeImageNow = (): NodeImageFiles | undefined => {
      // Picked up without a restart once `corral node-image build` has written it.
      nodeImage ??= locateNodeImage(config.dataDir);
      return nodeImage;
    };
    if (!nodeImage)
      logger.warn('node environment not built yet: run `corral node-image build --data-dir ...`');

    const api = createApiRouter({
      repos,
      config,
      logger,
      authenticator,
      startedAt,
      health: () => ({
        address: config.address,
        dhcp: config.dhcp.mode,
        tftp: config.tftp.enabled,
        nodeImage: nodeImageNow() !== undefined,
        bootLoadersMissing: tftp.missing.length > 0,
      }),
    });
    const boot = createBootRouter({ repos, config, logger, nodeImage: nodeImageNow });
    const app = createHttpApp({ api, boot, logger });
    const server = createServer(app);
    server.keepAliveTimeout = 5000;
    const httpPort = await listen(server, config.http.port, config.http.bind);
    closers.push({
      name: 'http',
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Bounded: in-flight downloads (kernels, images) get 5 s, then are cut.
          setTimeout(() => server.closeAllConnections(), 5000).unref();
        }),
    });
    logger.info(
      {
        version: VERSION,
        http: `${config.http.bind}:${httpPort}`,
        url: publicUrl(config),
        dataDir: config.dataDir,
      },
      'corral master started',
    );
    return { config, repos, httpPort, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
