import type { ErrorRequestHandler, RequestHandler } from 'express';
import { CorralError, isCorralError, type ErrorCode } from '../master/util/errors.js';
import { sendPage, type ConsoleContext } from './page.js';

/** Where the console, rather than the API, should send someone after an error; default: the dashboard. */
const CONSOLE_ADVICE: Partial<Record<ErrorCode, { hint: string; href: string; label: string }>> = {
  NODE_NOT_FOUND: {
    hint: 'Find the node in the node list by name, MAC or IP; events of a deleted node stay in the event log.',
    href: '/nodes',
    label: 'Go to the node list',
  },
};

const TITLES: Record<number, string> = {
  400: 'Bad request',
  403: 'Forbidden',
  404: 'Not found',
  429: 'Too many requests',
};

/** The console's last route: whatever reached it and matched nothing is a missing page. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new CorralError('NOT_FOUND', `There is no console page at ${req.path}.`));
};

interface HttpishError {
  status?: number;
  type?: string;
}

function toCorralError(err: unknown): CorralError | undefined {
  if (isCorralError(err)) return err;
  const e = err as HttpishError | undefined;
  // serve-static's 404 for a missing asset, body-parser's size and syntax errors.
  if (e?.status === 404) return new CorralError('NOT_FOUND', 'There is no such file.');
  if (e?.type === 'entity.too.large') return new CorralError('BODY_INVALID', 'The form was too large.');
  if (e?.status === 400) return new CorralError('BODY_INVALID', 'The form could not be read.');
  return undefined;
}

/** Renders every console error as a page with one sentence of cause and one of what to do. */
export function errorPage(ctx: ConsoleContext): ErrorRequestHandler {
  const log = ctx.logger.child({ module: 'console' });
  return (err: unknown, req, res, _next) => {
    const known = toCorralError(err);
    if (!known) log.error({ err, method: req.method, url: req.originalUrl }, 'console page failed');
    const error = known ?? new CorralError('INTERNAL', 'The page could not be built.');
    if (res.headersSent) return;
    const advice = CONSOLE_ADVICE[error.code];
    try {
      sendPage(
        ctx,
        res,
        'error',
        {
          title: TITLES[error.status] ?? 'Error',
          status: error.status,
          code: error.code,
          message: error.message,
          hint: advice?.hint ?? error.hint,
          back: advice
            ? { href: advice.href, label: advice.label }
            : { href: '/', label: 'Back to the dashboard' },
        },
        error.status,
      );
    } catch (renderErr) {
      log.error({ err: renderErr }, 'console error page failed to render');
      res.status(error.status).type('text').send(`${error.message} ${error.hint}\n`);
    }
  };
}
