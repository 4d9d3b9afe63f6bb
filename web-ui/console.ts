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
import type { HaStatus } from '../master/ha/controller.js';
import { mountHa } from './pages/ha.js';
import { mountSharedRoots, type ConsoleSharedRoots } from './pages/sharedroots.js';
import { mountServices } from './pages/services.js';
import { mountImages } from './pages/images.js';
import type { Deployer } from '../master/deploy/deployer.js';
import type { LoadBalancer } from '../master/lb/load-balancer.js';
import type { Snapshots } from '../master/snapshots/index.js';
import type { BeforeRisky } from '../master/util/before-risky.js';
import { mountSnapshots } from './pages/snapshots.js';
import type { PowerControl } from '../master/remote/power.js';
import { mountPower } from './pages/power.js';
import { mountExec } from './pages/exec.js';
import { createRenderer } from './render.js';
import { securityHeaders } from './security-headers.js';
import { requireCsrf, sessionGuard } from './session-guard.js';
import { SessionStore } from './sessions.js';
import type { Monitor } from '../master/monitor/monitor.js';
import type { NodeImageStatus } from '../master/boot/node-image-builder.js';
import { auditMutations } from '../master/api/audit.js';
import { signedIn } from './page.js';
import { mountAccount } from './pages/account.js';
import { mountAudit } from './pages/audit.js';
import { mountMonitor } from './pages/monitor.js';
import { mountSettings } from './pages/settings.js';
import { mountUsers } from './pages/users.js';
import { mountCloudInit } from './pages/cloud-init.js';
import type { CloudInit } from '../master/cloudinit/service.js';

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
  /** Services and HAProxy health (issue #7); the Services pages are mounted when given. */
  lb?: LoadBalancer;
  /** Restore points (issue #9); the Snapshots pages are mounted when given. */
  snapshots?: Snapshots;
  /** Remote control (issue #11): power actions on the node page and the Run command page when given. */
  remote?: { power: PowerControl; sshKeyPath: string };
  /** High availability (issue #8): the HA page (role, epoch, replication lag) is mounted when given. */
  ha?: { status(): HaStatus };
  /**
   * High availability: the API's write gate, for the console's own writes (a backup refuses them; on the
   * primary the answer waits for the backup's acknowledgement). Sign-in and sign-out pass before it:
   * sessions are per master.
   */
  writeGate?: RequestHandler;
  /** Shared roots (issue 6): the Shared roots pages are mounted when given. */
  sharedRoot?: ConsoleSharedRoots;
  /** OS deployment (issue 5): the Images page and the node deploy page are mounted when given. */
  deployer?: Deployer;
  /**
   * Awaited before the Images page deletes an image and before a bulk deploy of more than one node: an
   * automatic restore point (snapshots.beforeRisky).
   */
  beforeRisky?: BeforeRisky;
  /** Subsystem faults and dropped datagrams (master/util/faults.ts), shown on the dashboard. */
  faults?: () => Record<string, SubsystemHealth>;
  /** Where the node environment's build stands (shown on the dashboard). */
  nodeImage?: () => NodeImageStatus;
  /** cloud-init (issue 16): the layers and a node's rendered datasource. */
  cloudInit?: CloudInit;
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
    sessions: new SessionStore(deps.repos.store.db, now),
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
    power: deps.remote?.power,
    beforeRisky: deps.beforeRisky,
  });
  mountEvents(router, ctx);
  mountBootActivity(router, ctx);
  mountUsers(router, ctx);
  mountAudit(router, ctx);
  mountSettings(router, ctx);
  mountAccount(router, ctx);
  mountMonitor(router, ctx);
  if (deps.lb) mountServices(router, ctx, deps.lb);
  if (deps.snapshots) mountSnapshots(router, ctx, deps.snapshots);
  if (deps.remote) mountPower(router, ctx, deps.remote.power);
  if (deps.remote) mountExec(router, ctx, deps.remote.sshKeyPath);
  if (deps.ha) mountHa(router, ctx, deps.ha);
  if (deps.sharedRoot) mountSharedRoots(router, ctx, deps.sharedRoot);
  if (deps.deployer) mountImages(router, ctx, deps.deployer, deps.beforeRisky);
  if (deps.cloudInit) mountCloudInit(router, ctx, deps.cloudInit);

  router.use(notFound);
  router.use(errorPage(ctx));
  return router;
}
