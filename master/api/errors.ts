import type { ErrorRequestHandler, Response } from 'express';
import type { ZodError } from 'zod';
import { CorralError, ERROR_CATALOGUE, type ErrorCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { processRedactor } from '../util/redact.js';
import { privateTransport } from '../util/transport.js';

/** The stable JSON error shape of API v1: `{ "error": { code, message, hint, details? } }`. */
export interface ApiErrorBody {
  error: { code: ErrorCode; message: string; hint: string; details?: Record<string, unknown> };
}

/** Messages and details pass the one redaction rule: an error may quote a config value or a command line. */
export function errorBody(err: CorralError): ApiErrorBody {
  return {
    error: {
      code: err.code,
      message: processRedactor.text(err.message),
      hint: err.hint,
      ...(err.details ? { details: processRedactor.value(err.details) } : {}),
    },
  };
}

export function sendError(res: Response, err: CorralError): void {
  res.status(err.status).json(errorBody(err));
}

/** One line naming the first bad field, e.g. "inventory.memoryBytes: expected number, received string". */
export function zodToCorral(err: ZodError, code: ErrorCode = 'BODY_INVALID'): CorralError {
  const issue = err.issues[0];
  const path = issue && issue.path.length ? issue.path.join('.') : '(body)';
  return new CorralError(code, `${path}: ${issue?.message ?? 'invalid'}`, {
    issues: err.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

interface HttpishError {
  type?: string;
  status?: number;
  statusCode?: number;
}

export function apiErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let corral: CorralError;
    if (err instanceof CorralError) {
      corral = err;
    } else {
      const e = err as HttpishError & Error;
      if (e?.type === 'entity.parse.failed')
        corral = new CorralError('BODY_INVALID', 'request body is not valid JSON');
      else if (e?.type === 'entity.too.large')
        corral = new CorralError('BODY_INVALID', 'request body is too large');
      else if (e?.type === 'charset.unsupported' || e?.type === 'encoding.unsupported')
        corral = new CorralError('BODY_INVALID', 'unsupported body encoding');
      else {
        logger.error({ err, method: req.method, url: req.originalUrl }, 'unhandled API error');
        corral = new CorralError('INTERNAL', 'internal error');
      }
    }
    if (corral.status >= 500) logger.warn({ code: corral.code, url: req.originalUrl }, corral.message);
    if (res.headersSent) return;
    // The Basic challenge only where a password sent back stays private (TLS or loopback): on plain HTTP
    // from another host it would invite a browser or client to send the password in clear.
    if ((corral.code === 'AUTH_REQUIRED' || corral.code === 'AUTH_FAILED') && privateTransport(req)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="corral", charset="UTF-8"');
    }
    sendError(res, corral);
  };
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}
