/**
 * The registry as a feature (issue 21, "artefacts without the internet"): docker-registry supervised on
 * the provisioning address, storage in DATA_DIR/registry/storage, and, once it serves, the base image
 * pushed in the background from the registered OS image `registry.baseImage` when there is one (a re-push
 * of an unchanged image uploads nothing). A registry that cannot start does not stop the master: health
 * and the log say why (REGISTRY_FAILED).
 */
import { join } from 'node:path';
import express from 'express';
import { mountRegistry, type RegistryView } from '../../web-ui/pages/registry.js';
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { pushBaseImage } from './base-image.js';
import { BASE_REPOSITORY } from './config.js';
import { RegistryDaemon } from './daemon.js';

const CLOSE_WAIT_MS = 5000;

export interface RegistryFeatureDeps {
  config: Pick<FrozenConfig, 'registry' | 'dataDir' | 'address' | 'nodeImage'>;
  repos: Pick<Repos, 'images'>;
  logger: Logger;
}

type BaseState =
  | { state: 'off' | 'no-image' | 'pushing' }
  | { state: 'pushed'; digest: string; uploaded: number }
  | { state: 'failed'; reason: string };

export interface RegistryHandle {
  /** `HOST:PORT` as engine nodes name it (`HOST:PORT/corral/base:TAG`). */
  address: string;
  baseReference: string;
}

export async function startRegistry(
  deps: RegistryFeatureDeps,
): Promise<Started<{ registry: RegistryHandle }>> {
  const { config } = deps;
  const logger = deps.logger.child({ feature: 'registry' });
  const bind = config.registry.bind ?? config.address;
  const daemon = new RegistryDaemon(
    { bind, port: config.registry.port, dir: join(config.dataDir, 'registry') },
    config.registry.bin,
    logger,
  );
  let startError: string | null = null;
  try {
    await daemon.start();
  } catch (err) {
    startError = (err as Error).message;
    logger.error({ err: startError }, 'the registry could not start; apps cannot pull from it');
  }
  let base: BaseState = { state: config.registry.baseImage ? 'no-image' : 'off' };
  let pushing: Promise<void> = Promise.resolve();
  const baseImage = config.registry.baseImage;
  if (!startError && baseImage && deps.repos.images.getByName(baseImage)) {
    base = { state: 'pushing' };
    pushing = pushBaseImage({
      registry: daemon.url,
      tag: config.registry.baseTag,
      image: baseImage,
      repos: deps.repos,
      dataDir: config.dataDir,
      cacheDir: config.nodeImage.cacheDir,
      logger,
    }).then(
      (r) =>
        void (base = {
          state: 'pushed',
          digest: r.manifestDigest,
          uploaded: r.blobs.filter((b) => b.uploaded).length,
        }),
      (err: unknown) => {
        base = { state: 'failed', reason: (err as Error).message };
        logger.error({ err: (err as Error).message }, 'registry: the base image push failed');
      },
    );
  }
  const address = `${bind}:${config.registry.port}`;
  const baseReference = `${address}/${BASE_REPOSITORY}:${config.registry.baseTag}`;
  const view = (): RegistryView => {
    const s = daemon.status();
    return {
      state: s.running ? 'running' : startError ? 'failed' : 'down',
      address,
      restarts: s.restarts,
      ...(startError || s.lastError ? { error: startError ?? s.lastError } : {}),
      baseReference,
      base,
    };
  };
  return {
    registry: { address, baseReference },
    // Health answers without a login: the same facts as the page (state, address, the base push).
    health: () => ({ registry: view() }),
    pages: (ctx) => {
      const router = express.Router();
      mountRegistry(router, ctx, view);
      return router;
    },
    close: async () => {
      await daemon.stop();
      // A push in flight fails once the registry is gone, but a first build of the Debian layer (a gzip of
      // ~450 MB) may take a minute more: shutdown waits for it only briefly.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([pushing, new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
    },
  };
}
