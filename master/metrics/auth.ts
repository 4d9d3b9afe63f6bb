/**
 * Who may read /metrics. Prometheus sends a bearer token (`authorization: { credentials_file }` in its
 * scrape config); a request from loopback needs none (a Prometheus or curl on the master's own machine,
 * which could read the database anyway). Without `metrics.token` configured, only loopback may scrape:
 * the exposition names nodes' services and the fleet's size, which the provisioning segment need not see.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { sendError } from '../api/errors.js';
import { CorralError } from '../util/errors.js';
import { isLoopback } from '../util/transport.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Compared as digests, so neither the length nor a prefix of the token leaks through timing. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1] !== undefined && timingSafeEqual(digest(m[1]), digest(token));
}

export function requireMetricsAccess(token: string | undefined): RequestHandler {
  return (req, res, next) => {
    if (isLoopback(req.socket.remoteAddress)) return next();
    if (token && tokenMatches(req.headers.authorization, token)) return next();
    sendError(
      res,
      token
        ? new CorralError('METRICS_AUTH_REQUIRED', 'GET /metrics needs the bearer token of metrics.token')
        : new CorralError(
            'METRICS_LOOPBACK_ONLY',
            'GET /metrics is served to loopback only: set metrics.token to let a Prometheus server elsewhere scrape it',
          ),
    );
  };
}
