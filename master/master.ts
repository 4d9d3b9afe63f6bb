/**
 * The appliance daemon: opens the store, makes sure an admin exists, starts the features in the order
 * of master/features.ts (each one folder, master/feature.ts), and serves their routes and pages over
 * the HTTP listeners. `close()` stops everything in reverse order. docs/architecture.md walks through it.
 */
import { mkdirSync } from 'node:fs';
import { urlHost } from './http-bind.js';
import { join } from 'node:path';
import type { FrozenConfig } from './config.js';
import { publicUrl } from './config.js';
import { openRepos, type Repos } from './store/repos.js';
import { LeaseStore } from './store/leases.js';
import { PRE_MIGRATION_FILE, stagePreMigrationCopy } from './store/pre-migration.js';
import { Authenticator, ensureAdmin } from './auth/users.js';
import { createApiRouter } from './api/v1.js';
import { createNodeSurface } from './boot/surface.js';
import { HostKeyPins } from './remote/host-keys.js';
import { createConsoleRouter } from '../web-ui/console.js';
import type { Feature } from './feature.js';
import type { HaRole } from './ha/controller.js';
import { FEATURES, need, type Host } from './features.js';
import { openListeners, type Listeners } from './listeners.js';
import type { Logger } from './util/logger.js';
import { Faults } from './util/faults.js';
import { VERSION } from './util/version.js';
import { processRedactor } from './util/redact.js';

export interface MasterOptions {
  logger: Logger;
  /** First admin password (CORRAL_ADMIN_PASSWORD), read by the CLI. */
  initialAdminPassword?: string;
  /** Subsystem fault counters (shown in /api/v1/health); the CLI passes the one its backstop counts in. */
  faults?: Faults;
}

export interface Master {
  config: FrozenConfig;
  repos: Repos;
  httpPort: number;
  /** The console's HTTPS port when console.https is on. */
  httpsPort?: number;
  tftpPort?: number;
  close(): Promise<void>;
}

interface Running {
  name: string;
  feature: Feature;
}

export async function startMaster(config: FrozenConfig, options: MasterOptions): Promise<Master> {
  const logger = options.logger;
  const startedAt = Date.now();
  const faults = options.faults ?? new Faults(logger);
  // Secrets in the config (ha.token, URL passwords) are hidden from every response, log line and diff.
  processRedactor.addFromConfig(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  // An upgrade's first start: the database is copied before the store migrates it, and the copy kept
  // as a restore point once snapshots run (store/pre-migration.ts, snapshots/pre-migration.ts).
  const preMigrationCopy = join(config.dataDir, PRE_MIGRATION_FILE);
  const preMigration = stagePreMigrationCopy(join(config.dataDir, 'corral.db'), preMigrationCopy);
  if (preMigration) logger.info(preMigration, 'database copied before migrating it');
  const repos = openRepos({ path: join(config.dataDir, 'corral.db'), logger });
  const running: Running[] = [];
  let listeners: Listeners | undefined;
  const close = (): Promise<void> => closeAll(running, listeners, repos, logger);

  try {
    await ensureAdmin(repos, config.dataDir, options.initialAdminPassword, logger);
    const authenticator = new Authenticator(repos);
    const host: Host = {
      config,
      repos,
      logger,
      faults,
      authenticator,
      leases: new LeaseStore(repos.store),
      startedAt,
      preMigrationCopy,
      exposed: {},
      roleChanged: (role) => tellRole(running, role),
    };
    for (const entry of FEATURES) {
      const feature = await entry.start(host);
      if (feature) running.push({ name: entry.name, feature });
    }
    const features = running.map((r) => r.feature);
    const { ha, monitor } = host.exposed;
    // Every node-facing route (/boot, enlistment, node metrics): boot/surface.ts.
    const surface = nodeSurface(host);
    host.exposed.nodeTftpFiles = surface.tftpFile;
    const api = createApiRouter({
      repos,
      config,
      logger,
      authenticator,
      startedAt,
      enlistStats: surface.enlistStats,
      features: features.flatMap((f) => (f.api ? [f.api] : [])),
      ...(ha ? { ha: ha.ha } : {}),
      health: () =>
        Object.assign({ address: config.address }, ...features.map((f) => f.health?.() ?? {}), {
          subsystems: faults.snapshot(),
        }) as Record<string, unknown>,
    });
    const consoleRouter = createConsoleRouter({
      repos,
      config,
      logger,
      authenticator,
      pages: features.flatMap((f) => (f.pages ? [f.pages] : [])),
      // The node pages offer what these features do to one node (services, deploy, power).
      lb: need(host, 'lb').lb,
      deployer: need(host, 'deploy').deployer,
      power: need(host, 'remote').power,
      beforeRisky: need(host, 'snapshots').snapshots.beforeRisky,
      secureCookies: config.console.https && config.console.redirectHttp,
      nodeImage: need(host, 'nodeImage').nodeImage.status,
      ...(monitor ? { monitor: monitor.monitor } : {}),
      ...(ha ? { writeGate: ha.ha.gate } : {}),
      faults: () => faults.snapshot(),
    });
    listeners = await openListeners({
      config,
      logger,
      api,
      boot: surface.router,
      console: consoleRouter,
      ...(host.exposed.metrics ? { metrics: host.exposed.metrics.http } : {}),
      upgrade: (req, socket, head) => features.some((f) => f.upgrade?.(req, socket, head) ?? false),
    });
    const { httpPort, httpsPort } = listeners;
    for (const r of running) await r.feature.serve?.({ port: httpPort });
    logger.info(
      {
        version: VERSION,
        http: config.http.bind.map((b) => `${urlHost(b)}:${httpPort}`).join(' '),
        ...(httpsPort !== undefined
          ? { https: config.http.bind.map((b) => `${urlHost(b)}:${httpsPort}`).join(' ') }
          : {}),
        url: publicUrl(config),
        dataDir: config.dataDir,
      },
      'corral master started',
    );
    const tftpPort = need(host, 'tftp').port();
    return {
      config,
      repos,
      httpPort,
      ...(httpsPort !== undefined ? { httpsPort } : {}),
      ...(tftpPort !== undefined ? { tftpPort } : {}),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * One close, in reverse order: the features that serve on the listeners, the listeners, the other
 * features, the store (master/feature.ts `serve` says why the listeners sit in between). A step that
 * fails is logged and the others still run.
 */
async function closeAll(
  running: readonly Running[],
  listeners: Listeners | undefined,
  repos: Repos,
  logger: Logger,
): Promise<void> {
  const stopping = [...running].reverse();
  const steps = [
    ...stopping.filter((r) => r.feature.serve),
    { name: 'http', feature: { close: async () => listeners?.close() } },
    ...stopping.filter((r) => !r.feature.serve),
    { name: 'store', feature: { close: async () => repos.store.close() } },
  ];
  for (const { name, feature } of steps) {
    try {
      await feature.close();
    } catch (err) {
      logger.warn({ err, part: name }, 'error while stopping');
    }
  }
}

/** With HA, promotion starts the role-gated features in list order, demotion stops them in reverse. */
async function tellRole(running: readonly Running[], role: HaRole): Promise<void> {
  const gated = running.filter((r) => r.feature.onRole);
  for (const r of role === 'primary' ? gated : gated.reverse()) await r.feature.onRole?.(role);
}

/** Every node-facing route (boot/surface.ts), with what the boot decision asks the features for. */
function nodeSurface(host: Host): ReturnType<typeof createNodeSurface> {
  const { repos, config, logger } = host;
  const { nodeImage } = need(host, 'nodeImage');
  const { monitor, ha, enrolment, cloudInit } = host.exposed;
  // Read by the deploy boot routes when a node asks for the installer tools.
  let installerTools: string | undefined;
  void need(host, 'deploy').installerToolsBuilt.then((path) => (installerTools = path));
  return createNodeSurface({
    repos,
    config,
    logger,
    nodeImage: nodeImage.files,
    nodeImageStatus: nodeImage.status,
    activity: need(host, 'bootActivity').activity,
    sharedRoots: need(host, 'sharedRoot').sharedRoot.roots,
    installerTools: () => installerTools,
    hostKeys: HostKeyPins.forConfig(config),
    ...(monitor ? { monitor: monitor.monitor } : {}),
    ...(ha ? { writeGate: ha.ha.gate } : {}),
    ...(enrolment ? { onDiscovered: enrolment.onDiscovered } : {}),
    ...(cloudInit ? { cloudInit: cloudInit.cloudInit } : {}),
    ...(host.exposed.p2p ? { p2p: host.exposed.p2p.p2p } : {}),
  });
}
