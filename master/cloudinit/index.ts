/**
 * cloud-init for deployed nodes (issue 16): a NoCloud datasource served over HTTP, its user-data merged
 * from layers stored in the database. The feature's one entry: the service, its node-facing routes
 * (mounted under /boot) and its API (under /api/v1); the console page is web-ui/pages/cloud-init.ts.
 */
import type { Router } from 'express';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { createCloudInitApiRouter } from './api.js';
import { createCloudInitNodeRouter } from './node-routes.js';
import { CloudInit } from './service.js';

export { CloudInit } from './service.js';

export interface CloudInitFeature {
  cloudInit: CloudInit;
  /** Node-facing: /cloud-init/<mac>/..., mounted under /boot. */
  nodeRoutes: Router;
  /** Authenticated: mounted under /api/v1. */
  api: Router;
  close(): Promise<void>;
}

export function startCloudInit(deps: {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
}): CloudInitFeature {
  const cloudInit = new CloudInit(deps.repos, deps.config);
  return {
    cloudInit,
    nodeRoutes: createCloudInitNodeRouter({ cloudInit, repos: deps.repos, logger: deps.logger }),
    api: createCloudInitApiRouter(cloudInit, deps.repos),
    close: async () => {},
  };
}
