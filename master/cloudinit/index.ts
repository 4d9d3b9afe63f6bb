/**
 * cloud-init for deployed nodes (issue 16): a NoCloud datasource served over HTTP, its user-data merged
 * from layers stored in the database. The feature's one entry (master/feature.ts): the service (the node
 * surface serves its data: boot/surface.ts, the `cloudInit` row), its API under /api/v1 and its console
 * page (web-ui/pages/cloud-init.ts).
 */
import express from 'express';
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import { mountCloudInit } from '../../web-ui/pages/cloud-init.js';
import { createCloudInitApiRouter } from './api.js';
import { CloudInit } from './service.js';

export { CloudInit } from './service.js';

export function startCloudInit(deps: {
  repos: Repos;
  config: FrozenConfig;
}): Started<{ cloudInit: CloudInit }> {
  const cloudInit = new CloudInit(deps.repos, deps.config);
  return {
    cloudInit,
    api: createCloudInitApiRouter(cloudInit, deps.repos),
    pages: (ctx) => {
      const router = express.Router();
      mountCloudInit(router, ctx, cloudInit);
      return router;
    },
    // Nothing runs in the background: layers are read when a node asks.
    close: async () => {},
  };
}
