import express, { type Express, type Router } from 'express';
import type { Logger } from './util/logger.js';
import { apiErrorHandler } from './api/errors.js';

export interface HttpParts {
  api: Router;
  boot: Router;
  console?: Router;
  logger: Logger;
}

export function createHttpApp(parts: HttpParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const log = parts.logger.child({ module: 'http' });
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
  app.use('/api/v1', parts.api);
  app.use('/api/v1', apiErrorHandler(parts.logger));
  app.use('/boot', parts.boot);
  if (parts.console) app.use('/', parts.console);
  app.use(apiErrorHandler(parts.logger));
  return app;
}
