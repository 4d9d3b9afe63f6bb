import type { Request, RequestHandler } from 'express';
import type { AuditStore, AuditVia } from '../store/audit.js';
import type { Logger } from '../util/logger.js';
import { parseBasic } from './auth.js';
import { clientIp } from '../util/client-ip.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Records every state-changing request in the audit log once its answer is known: who (the
 * authenticated user, else the name a refused caller claimed, else "anonymous"), what (method and path),
 * and the outcome by status (2xx/3xx ok, 401/403 denied, else failed). Reads are not audited.
 * `actorOf` lets the console name its session user; the API reads `req.user` or the Basic header.
 */
export function auditMutations(options: {
  audit: AuditStore;
  via: AuditVia;
  logger: Logger;
  actorOf?: (req: Request, res: import('express').Response) => string | undefined;
}): RequestHandler {
  return (req, res, next) => {
    if (SAFE.has(req.method)) return next();
    res.on('finish', () => {
      const status = res.statusCode;
      const actor =
        options.actorOf?.(req, res) ??
        req.user?.name ??
        parseBasic(req.headers.authorization)?.name ??
        'anonymous';
      try {
        options.audit.append({
          actor,
          via: options.via,
          action: `${req.method} ${req.baseUrl}${req.path}`,
          outcome: status < 400 ? 'ok' : status === 401 || status === 403 ? 'denied' : 'failed',
          status,
          ip: clientIp(req),
        });
      } catch (err) {
        options.logger.warn({ err }, 'could not write the audit log');
      }
    });
    next();
  };
}
