/**
 * Metrics at fleet scale (issue 19): the Prometheus exposition at /metrics and the fleet's scrape
 * configuration (GET /api/v1/metrics/scrape-config, `corral metrics scrape-config`).
 *
 * startMetrics takes narrow readers of the subsystems (each may be absent or return undefined while the
 * subsystem is off) and returns the /metrics route, the API routes, and the HTTP middleware that times
 * every request. Nothing here writes; everything is read at scrape time.
 */
import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../util/logger.js';
import type { Store } from '../store/db.js';
import { NodeQuery } from '../store/node-query.js';
import { DeployStatsQuery } from '../store/deploy-stats.js';
import { zodToCorral } from '../api/errors.js';
import { requireMetricsAccess } from './auth.js';
import { httpMetrics } from './http-metrics.js';
import { createMetricsRegistry, type MetricSources } from './registry.js';
import { fileSdTargets, SCRAPED_STATES, scrapeJobsYaml } from './scrape-config.js';
import type { MetricsConfig } from './config.js';

export interface MetricsDeps {
  config: Readonly<MetricsConfig>;
  /** The master's address and public URL (config.address, http.publicUrl) and its bound HTTP port. */
  master: { address: string; publicUrl?: string | undefined; httpPort: () => number };
  store: Store;
  nodesByState: () => Record<string, number>;
  logger: Logger;
  version: string;
  startedAtMs: number;
  sources: Pick<MetricSources, 'dhcp' | 'tftp' | 'faults' | 'ha' | 'lb'>;
}

export interface MetricsFeature {
  /** GET /metrics (mounted at the root, before the console). */
  pages: Router;
  /** Authenticated API routes (mounted under /api/v1). */
  api: Router;
  /** Times every HTTP request; first in the app. */
  middleware: RequestHandler;
  close(): Promise<void>;
}

const ScrapeQuery = z
  .object({
    format: z.enum(['file_sd', 'prometheus']).default('file_sd'),
    fileSdPath: z.string().min(1).max(1024).default('/etc/prometheus/corral-targets.json'),
    tokenFile: z.string().min(1).max(1024).optional(),
  })
  .strict();

/** host:port of the master as a Prometheus server reaches it: the public URL's authority, else address:port. */
export function masterTarget(m: MetricsDeps['master']): string {
  if (m.publicUrl) {
    const u = new URL(m.publicUrl);
    return u.port ? `${u.hostname}:${u.port}` : `${u.hostname}:${u.protocol === 'https:' ? 443 : 80}`;
  }
  return `${m.address}:${m.httpPort()}`;
}

export function startMetrics(deps: MetricsDeps): MetricsFeature {
  const log = deps.logger.child({ module: 'metrics' });
  const deployStats = new DeployStatsQuery(deps.store);
  const nodes = new NodeQuery(deps.store);
  const metrics = createMetricsRegistry({
    version: deps.version,
    startedAtMs: deps.startedAtMs,
    ...deps.sources,
    nodesByState: deps.nodesByState,
    deploys: () => deployStats.read(),
  });

  const pages = express.Router();
  if (deps.config.enabled) {
    pages.get('/metrics', requireMetricsAccess(deps.config.token), (_req, res, next) => {
      metrics.text().then(
        (text) =>
          res
            .setHeader('Content-Type', metrics.contentType)
            .setHeader('Cache-Control', 'no-store')
            .send(text),
        (err: unknown) => {
          log.error({ err }, 'metrics exposition failed');
          next(err);
        },
      );
    });
  }

  const api = express.Router();
  api.get('/metrics/scrape-config', (req, res) => {
    const parsed = ScrapeQuery.safeParse(req.query);
    if (!parsed.success) throw zodToCorral(parsed.error, 'USAGE');
    const q = parsed.data;
    if (q.format === 'prometheus') {
      res
        .type('text/yaml')
        .send(
          scrapeJobsYaml({ fileSdPath: q.fileSdPath, ...(q.tokenFile ? { tokenFile: q.tokenFile } : {}) }),
        );
      return;
    }
    res.json(
      fileSdTargets({
        master: masterTarget(deps.master),
        nodes: nodes.addressed(SCRAPED_STATES),
        nodeExporterPort: deps.config.nodeExporterPort,
      }),
    );
  });

  return {
    pages,
    api,
    middleware: deps.config.enabled ? httpMetrics(metrics.httpDuration) : (_req, _res, next) => next(),
    close: async () => undefined,
  };
}
