/**
 * The web console: server-rendered pages for sysadmins (Express + Handlebars). The lead mounts this
 * router at "/" after the API and boot routers, so it is the application's last router and answers
 * every path nothing else took. Pages work without JavaScript; scripts under /static only enhance.
 *
 * Order matters below: static files and the login page are public; everything after `sessionGuard`
 * needs a live session, and every state-changing request after `requireCsrf` needs its CSRF token.
 */
import express, { type RequestHandler, type Router } from 'express';
import type { Authenticator } from '../master/auth/users.js';
import type { ConsolePages } from '../master/feature.js';
import type { FrozenConfig } from '../master/config.js';
import type { Repos } from '../master/store/repos.js';
import type { Logger } from '../master/util/logger.js';
import { installPath } from '../master/util/paths.js';
import { errorPage, notFound } from './error-page.js';
import type { ConsoleContext } from './page.js';
import { mountDashboard } from './pages/dashboard.js';
import type { SubsystemHealth } from '../master/util/faults.js';
import { mountEvents } from './pages/events.js';
import { mountBootActivity } from './pages/boot-activity.js';
import { mountLogin, mountLogout } from './pages/login.js';
import { mountNodes } from './pages/nodes.js';
import type { Deployer } from '../master/deploy/deployer.js';
import type { LoadBalancer } from '../master/lb/load-balancer.js';
import type { BeforeRisky } from '../master/util/before-risky.js';
import type { PowerControl } from '../master/remote/power.js';
import { createRenderer } from './render.js';
import { securityHeaders } from './security-headers.js';
import { requireCsrf, sessionGuard } from './session-guard.js';
import { ConsoleSessions } from './sessions.js';
import type { Monitor } from '../master/monitor/monitor.js';
import type { NodeImageStatus } from '../master/boot/node-image-builder.js';
import { auditMutations } from '../master/api/audit.js';
import { signedIn } from './page.js';
import { mountAccount } from './pages/account.js';
import { mountAudit } from './pages/audit.js';
import { mountMonitor } from './pages/monitor.js';
import { mountSettings } from './pages/settings.js';
import { mountUsers } from './pages/users.js';

export interface ConsoleDeps {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  authenticator: Authenticator;
  /** Clock in epoch milliseconds (session idle timeout, login rate limit, relative times). */
  now?: () => number;
  /** Marks cookies Secure; set when the console is served over HTTPS. */
  secureCookies?: boolean;
  /** Performance monitoring (issue #10): charts, live stream and alert banner when given. */
  monitor?: Monitor;
  /**
   * The features' own pages (master/feature.ts), in the master's feature order, mounted after the
   * session guard, the CSRF check and the write gate: a feature adds pages without touching this file.
   */
  pages?: readonly ConsolePages[];
  /** Services (issue #7): a node's services on the node page. */
  lb?: LoadBalancer;
  /** Remote control (issue #11): power actions on the node page. */
  power?: PowerControl;
  /**
   * High availability: the API's write gate, for the console's own writes (a backup refuses them; on the
   * primary the answer waits for the backup's acknowledgement). Sign-in and sign-out pass before it:
   * sessions are per master.
   */
  writeGate?: RequestHandler;
  /** OS deployment (issue 5): the node deploy page and panel when given. */
  deployer?: Deployer;
  /**
   * Awaited before a bulk deploy of more than one node from the node list: an
   * automatic restore point (snapshots.beforeRisky).
   */
  beforeRisky?: BeforeRisky;
  /** Subsystem faults and dropped datagrams (master/util/faults.ts), shown on the dashboard. */
  faults?: () => Record<string, SubsystemHealth>;
  /** Where the node environment's build stands (shown on the dashboard). */
  nodeImage?: () => NodeImageStatus;
}

export function createConsoleRouter(deps: ConsoleDeps): Router {
  const now = deps.now ?? Date.now;
  const ctx: ConsoleContext = {
    repos: deps.repos,
    config: deps.config,
    logger: deps.logger,
    authenticator: deps.authenticator,
    now,
    secureCookies: deps.secureCookies ?? false,
    renderer: createRenderer({ viewsDir: installPath('web-ui', 'views'), now }),
    sessions: new ConsoleSessions(deps.repos.sessions, now),
    ...(deps.monitor ? { monitor: deps.monitor } : {}),
    ...(deps.faults ? { faults: deps.faults } : {}),
  };

  const router = express.Router();
  router.use(securityHeaders);
  // Asset URLs carry ?v=VERSION, so a day of caching never serves a stale stylesheet after an upgrade.
  // uPlot straight from its npm package (no copy to drift out of date); same caching as our own assets.
  router.use(
    '/static/vendor',
    express.static(installPath('node_modules', 'uplot', 'dist'), {
      maxAge: '1d',
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      fallthrough: true,
    }),
  );
  // xterm.js and its fit addon for the serial console (issue 20), from their npm packages the same way.
  for (const [path, ...dir] of [
    ['/static/vendor/xterm', '@xterm', 'xterm', 'lib'],
    ['/static/vendor/xterm-css', '@xterm', 'xterm', 'css'],
    ['/static/vendor/xterm-fit', '@xterm', 'addon-fit', 'lib'],
  ] as const) {
    router.use(
      path,
      express.static(installPath('node_modules', ...dir), {
        maxAge: '1d',
        index: false,
        redirect: false,
        dotfiles: 'ignore',
        fallthrough: true,
      }),
    );
  }
  router.use(
    '/static',
    express.static(installPath('web-ui', 'public'), {
      maxAge: '1d',
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      fallthrough: false,
    }),
  );
  mountLogin(router, ctx);

  router.use(sessionGuard(ctx));
  router.use(express.urlencoded({ extended: false, limit: '64kb' }));
  // Audited before the CSRF check, so refused forged posts are in the log too (outcome "denied").
  router.use(
    auditMutations({
      audit: deps.repos.audit,
      via: 'console',
      logger: deps.logger,
      actorOf: (_req, res) => signedIn(res)?.user.name,
    }),
  );
  router.use(requireCsrf);
  mountLogout(router, ctx);
  if (deps.writeGate) router.use(deps.writeGate);
  mountDashboard(router, ctx, deps.nodeImage);
  mountNodes(router, ctx, {
    lb: deps.lb,
    deployer: deps.deployer,
    power: deps.power,
    beforeRisky: deps.beforeRisky,
  });
  mountEvents(router, ctx);
  mountBootActivity(router, ctx);
  mountUsers(router, ctx);
  mountAudit(router, ctx);
  mountSettings(router, ctx);
  mountAccount(router, ctx);
  mountMonitor(router, ctx);
  for (const pages of deps.pages ?? []) router.use(pages(ctx));

  router.use(notFound);
  router.use(errorPage(ctx));
  return router;
}
