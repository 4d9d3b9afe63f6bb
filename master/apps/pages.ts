/**
 * Console pages for apps: the list with the engine's state (managers, quorum stated plainly), and one app
 * with its instances (state, node and published ports, version, restarts), the rollout picture, recent logs, pause, resume and
 * revert. Thin: read the service → render.
 */
import express, { type Router } from 'express';
import { roleAllows } from '../api/auth.js';
import { isCorralError } from '../util/errors.js';
import { requireConsoleRole, sendPage, signedIn, type ConsoleContext } from '../../web-ui/page.js';
import { rolloutSvg } from './rollout-picture.js';
import type { Apps } from './service.js';

export function createAppsPages(ctx: ConsoleContext, apps: Apps): Router {
  const router = express.Router();
  router.get('/apps', (_req, res) => {
    sendPage(ctx, res, 'apps', { title: 'Apps', nav: 'apps', apps: apps.list(), engine: apps.swarmStatus() });
  });
  router.get('/apps/:name', async (req, res, next) => {
    try {
      const app = apps.get(String(req.params['name']));
      let logs: string[] = [];
      let logError: string | null = null;
      try {
        logs = await apps.logs(app.name, 50);
      } catch (err) {
        logError = isCorralError(err) ? err.message : String(err);
      }
      const who = signedIn(res);
      sendPage(ctx, res, 'app', {
        title: `App ${app.name}`,
        nav: 'apps',
        app,
        command: app.spec.command?.join(' ') ?? '(image default)',
        rollout: rolloutSvg(apps.observations(app.name)),
        logs,
        logError,
        canAdmin: who ? roleAllows(who.user.role, 'admin') : false,
      });
    } catch (err) {
      next(err);
    }
  });
  for (const action of ['revert', 'pause', 'resume'] as const) {
    router.post(`/apps/:name/${action}`, async (req, res, next) => {
      try {
        const who = requireConsoleRole(res, 'admin');
        const name = String(req.params['name']);
        await apps[action](name, who.user.name);
        res.redirect(303, `/apps/${encodeURIComponent(name)}`);
      } catch (err) {
        next(err);
      }
    });
  }
  return router;
}
