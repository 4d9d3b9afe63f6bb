/**
 * Services behind HAProxy as a feature (issue #7): the load balancer (HAProxy supervised, started once
 * the HTTP listeners are up), its API and the Services console pages.
 */
import express from 'express';
import type { ConsolePages, Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { mountServices } from '../../web-ui/pages/services.js';
import { createLbRouter } from './api.js';
import { LoadBalancer, type LbFeatureConfig } from './load-balancer.js';

export interface LbFeatureDeps {
  config: LbFeatureConfig;
  repos: Pick<Repos, 'store' | 'services' | 'events' | 'nodes' | 'changes'>;
  logger: Logger;
}

export function startLb(deps: LbFeatureDeps): Started<{ lb: LoadBalancer }> {
  const lb = new LoadBalancer(deps);
  return {
    lb,
    api: createLbRouter(lb, deps.repos),
    pages: lbPages(lb),
    serve: () => lb.start(),
    close: () => lb.close(),
  };
}

/** The Services pages (a node's services are on the node page, given the load balancer by the console). */
export function lbPages(lb: LoadBalancer): ConsolePages {
  return (ctx) => {
    const router = express.Router();
    mountServices(router, ctx, lb);
    return router;
  };
}
