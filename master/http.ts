import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Logger } from './util/logger.js';
import { privateTransport } from './util/transport.js';
import { apiErrorHandler, sendError } from './api/errors.js';
import { CorralError } from './util/errors.js';
import { processRedactor } from './util/redact.js';

export interface HttpParts {
  api: Router;
  /** The node-facing surface (boot/surface.ts): /boot and the node routes of /api/v1, at the root. */
  boot: Router;
  console?: Router;
  logger: Logger;
  /** How HTTP Basic credentials over plain HTTP are treated (see refuseBasicInClear). */
  basicAuth: BasicAuthTransport;
  /** Prometheus (master/metrics): the request timer, first in the app, and GET /metrics. */
  metrics?: { middleware: RequestHandler; pages: Router };
}

export interface BasicAuthTransport {
  /** console.allowInsecureBasicAuth: accept Basic over plain HTTP from other hosts (test labs only). */
  allowInsecure: boolean;
  /** The HTTPS port to name in the refusal's hint, once known. */
  httpsPort: () => number | undefined;
}

export function createHttpApp(parts: HttpParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const log = parts.logger.child({ module: 'http' });
  if (parts.metrics) app.use(parts.metrics.middleware);
  app.use((req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      log.debug(
        { method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(ms) },
        'request',
      );
    });
    next();
  });
  app.use(refuseBasicInClear(parts.basicAuth));
  app.use(hideSecretsInResponses(log));
  // Node routes first: enlistment and node metrics under /api/v1 are the surface's, not the API's.
  app.use(parts.boot);
  app.use('/api/v1', parts.api);
  app.use('/api/v1', apiErrorHandler(parts.logger));
  if (parts.metrics) app.use(parts.metrics.pages);
  if (parts.console) app.use('/', parts.console);
  app.use(apiErrorHandler(parts.logger));
  return app;
}

/**
 * The last line of the one redaction rule (master/util/redact.ts): no API or console response carries a
 * secret value the master registered (HA token, admin password, TLS key, BMC passwords), whatever route
 * built it. Routes that hand secrets out on purpose, to a caller that proved it holds the HA token
 * (clone, replication), mark the response with `res.locals.secretsAllowed`. A hit is logged (without the
 * value) so the route that leaked can be fixed at its source.
 */
export function hideSecretsInResponses(log: Logger): express.RequestHandler {
  return (req, res, next) => {
    const send = res.send.bind(res);
    res.send = (body?: unknown) => {
      // Strings only: res.json and rendered pages are strings; a Buffer is file or archive bytes that a
      // text replacement would corrupt (and files are served by streams, not through here).
      if (res.locals['secretsAllowed'] !== true && typeof body === 'string') {
        const text = body;
        if (processRedactor.leaks(text)) {
          log.warn({ method: req.method, url: req.originalUrl }, 'a response held a secret value: redacted');
          return send(processRedactor.text(text));
        }
      }
      return send(body);
    };
    next();
  };
}

/**
 * HTTP Basic sends the password with every request, base64 only: over plain HTTP anyone on the
 * provisioning segment reads it. So a request carrying Basic credentials over plain HTTP is refused
 * (403 AUTH_INSECURE_TRANSPORT, the password not checked) and told to use HTTPS. Loopback is accepted:
 * it never crosses a wire. The node-facing routes (/boot, enlist, metrics) take no Basic credentials and
 * stay on HTTP for firmware and the busybox agent, which speak no TLS.
 */
export function refuseBasicInClear(t: BasicAuthTransport): express.RequestHandler {
  return (req, res, next) => {
    if (t.allowInsecure || !/^Basic\s/i.test(req.headers.authorization ?? '')) return next();
    if (privateTransport(req)) return next();
    const port = t.httpsPort();
    const host = (req.headers.host ?? '').replace(/:\d+$/, '') || 'MASTER';
    const url = port ? `https://${host}${port === 443 ? '' : `:${port}`}${req.originalUrl}` : 'https://…';
    sendError(
      res,
      new CorralError(
        'AUTH_INSECURE_TRANSPORT',
        `HTTP Basic credentials over plain HTTP are refused (they cross the network in clear): use ${url}`,
        { https: url },
      ),
    );
  };
}
