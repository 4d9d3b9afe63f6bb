/**
 * Metrics as a feature (issue 19): GET /metrics for Prometheus and the fleet's scrape config under
 * /api/v1. Last in the feature list: it reads the other features (DHCP, TFTP, HA, HAProxy) at scrape time
 * through what they expose, and learns the HTTP port when the listeners are up (serve).
 */
import type { RequestHandler, Router } from 'express';
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import { startMetrics } from './index.js';
import type { MetricSources } from './registry.js';

export interface MetricsFeatureDeps {
  config: Pick<FrozenConfig, 'metrics' | 'address' | 'http'>;
  repos: Pick<Repos, 'store' | 'nodes'>;
  logger: Logger;
  startedAtMs: number;
  sources: Pick<MetricSources, 'dhcp' | 'tftp' | 'faults' | 'ha' | 'lb'>;
}

export interface MetricsExposed {
  /** For the HTTP app (listeners.ts): the request timer and GET /metrics. */
  http: { middleware: RequestHandler; pages: Router };
}

export function startMetricsFeature(deps: MetricsFeatureDeps): Started<MetricsExposed> {
  let httpPort = deps.config.http.port;
  const metrics = startMetrics({
    config: deps.config.metrics,
    master: {
      address: deps.config.address,
      publicUrl: deps.config.http.publicUrl,
      httpPort: () => httpPort,
    },
    store: deps.repos.store,
    nodesByState: () => deps.repos.nodes.countByState(),
    logger: deps.logger,
    version: VERSION,
    startedAtMs: deps.startedAtMs,
    sources: deps.sources,
  });
  return {
    http: { middleware: metrics.middleware, pages: metrics.pages },
    api: metrics.api,
    serve: async (http) => void (httpPort = http.port),
    close: () => metrics.close(),
  };
}
