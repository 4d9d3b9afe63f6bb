/**
 * Shared roots as a feature (issue 6): the NFS server (nfs-ganesha) supervised and kept in step with
 * the exports, the shared-root API and console pages. Its boot routes are part of the boot surface.
 */
import express from 'express';
import type { FrozenConfig } from '../config.js';
import type { ConsolePages, Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { mountSharedRoots, type ConsoleSharedRoots } from '../../web-ui/pages/sharedroots.js';
import { createSharedRootApiRouter } from './api.js';
import { startSharedRoot as startSubsystem, type SharedRootSubsystem } from './index.js';

export interface SharedRootFeatureDeps {
  config: FrozenConfig;
  repos: Repos;
  logger: Logger;
}

export function startSharedRoot(deps: SharedRootFeatureDeps): Started<{ sharedRoot: SharedRootSubsystem }> {
  const sharedRoot = startSubsystem(deps);
  return {
    sharedRoot,
    api: createSharedRootApiRouter(sharedRoot, deps.repos),
    pages: sharedRootPages(sharedRoot),
    close: () => sharedRoot.close(),
  };
}

export function sharedRootPages(sub: ConsoleSharedRoots): ConsolePages {
  return (ctx) => {
    const router = express.Router();
    mountSharedRoots(router, ctx, sub);
    return router;
  };
}
