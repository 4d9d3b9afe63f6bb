/**
 * One middleware, first in the HTTP app, that times every request and records it in
 * `corral_http_request_duration_seconds` (its `_count` is the request counter). Labels stay bounded: the
 * route is a class of paths, never the path (MACs, node names and file names would make a series per node).
 */
import type { RequestHandler } from 'express';
import type { Histogram } from 'prom-client';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The route class of a request path. */
export function routeClass(path: string): string {
  if (path === '/metrics') return 'metrics';
  if (path === '/api/v1/enlist') return 'enlist';
  if (path.startsWith('/api/')) return 'api';
  if (path.startsWith('/boot/')) return 'boot';
  if (path.startsWith('/static/')) return 'static';
  return 'console';
}

export function httpMetrics(histogram: Histogram<'route' | 'method' | 'status'>): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    // Classified now: routers mounted under a prefix rewrite req.url while they handle the request.
    const route = routeClass(req.path);
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      histogram.observe(
        {
          route,
          method: METHODS.has(req.method) ? req.method : 'other',
          status: String(res.statusCode),
        },
        seconds,
      );
    });
    next();
  };
}
