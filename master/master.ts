/**
 * The appliance daemon: opens the store, makes sure an admin exists, and starts the HTTP (API, boot,
 * console), DHCP and TFTP servers from one frozen config. `close()` stops them in reverse order.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FrozenConfig } from './config.js';
import { publicUrl } from './config.js';
import { openRepos, type Repos } from './store/repos.js';
import { Authenticator, ensureAdmin } from './auth/users.js';
import { createApiRouter } from './api/v1.js';
import { createBootRouter } from './boot/routes.js';
import { prepareTftpRoot } from './boot/files.js';
import { startNodeImageBuilder } from './boot/node-image-builder.js';
import { createHttpApp } from './http.js';
import { createConsoleRouter } from '../web-ui/console.js';
import { redirectToHttps } from '../web-ui/https-redirect.js';
import { ensureTls } from './auth/tls.js';
import { Monitor } from './monitor/monitor.js';
import { systemSampler } from './monitor/sampler.js';
import { NodeCollector } from './monitor/node-collector.js';
import { backupLagSeconds } from './ha/backup-lag.js';
import { startDhcpServer, type DhcpServer } from './dhcp/index.js';
import type { PoolSpec } from './dhcp/pool.js';
import { startTftpServer, type TftpServer } from './tftp/index.js';
import { LeaseStore } from './store/leases.js';
import type { Logger } from './util/logger.js';
import { Faults } from './util/faults.js';
import { VERSION } from './util/version.js';
import { LoadBalancer } from './lb/load-balancer.js';
import { createHa } from './ha/index.js';
import express from 'express';
import { ensureMasterKey } from './deploy/ssh.js';
import { createDeployer } from './deploy/deployer.js';
import { createDeployApiRouter } from './deploy/api.js';
import { createDeployBootRouter } from './deploy/boot-routes.js';
import { HostKeyPins } from './remote/host-keys.js';
import { masterKeyPath } from './deploy/ssh.js';
import { createPowerControl } from './remote/power.js';
import { SecretBox } from './remote/secrets.js';
import { createRemoteApiRouter } from './remote/api.js';
import { nodeImageDir } from './boot/node-image.js';
import { buildInstallerTools } from '../node-images/os-image-tools.js';
import { startSnapshots } from './snapshots/index.js';
import { keepPreMigrationCopy } from './snapshots/pre-migration.js';
import { PRE_MIGRATION_FILE, stagePreMigrationCopy } from './store/pre-migration.js';
import { createSnapshotRouter } from './snapshots/api.js';
import { startSharedRoot } from './sharedroot/index.js';
import { createSharedRootApiRouter } from './sharedroot/api.js';
import { createSharedRootBootRouter } from './sharedroot/boot-routes.js';
import { BootActivity } from './boot/activity.js';
import { processRedactor } from './util/redact.js';
import { startCloudInit } from './cloudinit/index.js';

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

interface Closable {
  name: string;
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
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
  const closers: Closable[] = [{ name: 'store', close: async () => repos.store.close() }];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch (err) {
        logger.warn({ err, part: c.name }, 'error while stopping');
      }
    }
  };

  try {
    await ensureAdmin(repos, config.dataDir, options.initialAdminPassword, logger);
    const authenticator = new Authenticator(repos);
    // Restore points (issue 9); `snapshots.beforeRisky` goes to risky operations (image delete, bulk deploy).
    const snapshots = startSnapshots({ repos, config, logger });
    await keepPreMigrationCopy(snapshots.points, preMigrationCopy, logger);
    closers.push({ name: 'snapshots', close: () => snapshots.close() });
    // Remote control (issue #11): power drivers (passwords sealed with DATA_DIR/keys/power.key), state poller.
    const power = createPowerControl({
      repos,
      config,
      logger,
      secrets: SecretBox.forDataDir(config.dataDir),
    });
    const stopPowerPoll = power.startPoller();
    closers.push({ name: 'power-poller', close: async () => stopPowerPoll() });
    // OS deployment (issue 5): the master's SSH key, the deploy service (rebooting nodes through their
    // power driver where they have one), its watchdog, installer tools.
    const deployer = createDeployer({
      repos,
      config,
      logger,
      key: await ensureMasterKey(config.dataDir),
      power,
    });
    const stopDeployWatch = deployer.watch();
    closers.push({ name: 'deploy-watchdog', close: async () => stopDeployWatch() });
    let installerTools: string | undefined;
    buildInstallerTools(nodeImageDir(config.dataDir)).then(
      (path) => (installerTools = path),
      (err: unknown) => logger.warn({ err }, 'installer tools not built: deploys cannot run'),
    );
    const tftp = prepareTftpRoot(config, logger);
    // The node environment is built (or refreshed) in the background (nodeImage.autoBuild).
    const nodeImage = startNodeImageBuilder({ config, logger });
    closers.push({ name: 'node-image', close: () => nodeImage.close() });
    const nodeImageNow = nodeImage.files;

    const leases = new LeaseStore(repos.store);
    // The per-MAC boot timeline (issue 22), written in batches; closed (flushed) before the store.
    const activity = new BootActivity({
      store: repos.bootActivity,
      logger,
      lookupIp: (ip) => leases.get(ip)?.mac,
      isNode: (mac) => repos.nodes.get(mac) !== undefined,
    });
    activity.start();
    closers.push({ name: 'boot-activity', close: async () => activity.close() });
    // With HA, reservations are written by the primary only (at promotion): a backup never writes.
    if (!config.ha.enabled) syncReservations(config, repos, leases);

    let tftpServer: TftpServer | undefined;
    const startTftp = async (): Promise<void> => {
      if (!config.tftp.enabled || tftpServer) return;
      tftpServer = await startTftpServer({
        root: tftp.root,
        address: config.http.bind,
        port: config.tftp.port,
        logger,
        maxBlksize: config.tftp.maxBlksize,
        maxPerClient: config.tftp.maxPerClient,
        firstAckTimeoutMs: config.tftp.firstAckTimeoutMs,
        faults: faults.subsystem('tftp'),
        activity,
      });
    };
    closers.push({ name: 'tftp', close: async () => void (await tftpServer?.close()) });

    let dhcpServer: DhcpServer | undefined;
    const startDhcp = async (): Promise<void> => {
      if (config.dhcp.mode === 'off' || dhcpServer) return;
      dhcpServer = await startDhcpServer({
        mode: config.dhcp.mode,
        serverAddress: config.address,
        ...(config.interface ? { interfaceName: config.interface } : {}),
        port: config.dhcp.port,
        pools: dhcpPools(config),
        leaseSeconds: config.dhcp.leaseSeconds,
        boot: {
          httpBaseUrl: publicUrl(config),
          biosFile: config.boot.biosFile,
          uefiFile: config.boot.uefiFile,
          tftpServer: config.address,
        },
        leases,
        logger,
        onBound: (mac, ip) => recordNodeIp(repos, mac, ip),
        faults: faults.subsystem('dhcp'),
        activity,
      });
    };
    closers.push({ name: 'dhcp', close: async () => void (await dhcpServer?.close()) });
    // Role gating (issue #8): with HA only the primary (the VIP holder) serves DHCP and TFTP.
    const serve = async (on: boolean): Promise<void> => {
      if (on) return void (await startTftp(), await startDhcp());
      const [d, t] = [dhcpServer, tftpServer];
      [dhcpServer, tftpServer] = [undefined, undefined];
      await d?.close();
      await t?.close();
    };
    const ha = config.ha.enabled
      ? createHa({
          config,
          repos,
          logger,
          authenticator,
          onRole: async (role) => {
            if (role === 'primary') syncReservations(config, repos, leases);
            await serve(role === 'primary');
          },
        })
      : undefined;
    if (!ha) await serve(true);

    // Shared roots (issue 6): the NFS server (nfs-ganesha) supervised and kept in step with the exports.
    const sharedRoot = startSharedRoot({ repos, config, logger });
    closers.push({ name: 'sharedroot', close: () => sharedRoot.close() });
    const lb = new LoadBalancer({ repos, config, logger });
    // cloud-init (issue 16): the NoCloud datasource (under /boot), its layers' API and console page.
    const cloudInit = startCloudInit({ repos, config, logger });
    const monitor = config.monitor.enabled
      ? new Monitor({
          repos,
          config,
          logger,
          sampler: systemSampler(config.dataDir),
          // HA feeds the "backup lagging" alert.
          ...(ha ? { backupLagSeconds: () => backupLagSeconds(ha.controller.status()) } : {}),
        })
      : undefined;
    const api = createApiRouter({
      ...(monitor ? { monitor } : {}),
      repos,
      config,
      logger,
      authenticator,
      startedAt,
      activity,
      deployApi: createDeployApiRouter({
        repos,
        config,
        logger,
        deployer,
        beforeRisky: snapshots.beforeRisky,
      }),
      remoteApi: createRemoteApiRouter({
        repos,
        config,
        power,
        privateKeyPath: masterKeyPath(config.dataDir),
      }),
      snapshotsApi: createSnapshotRouter(snapshots, repos),
      sharedRootApi: createSharedRootApiRouter(sharedRoot, repos),
      cloudInitApi: cloudInit.api,
      lb,
      ...(ha ? { ha } : {}),
      health: () => ({
        address: config.address,
        ...(ha ? { ha: { role: ha.controller.role, epoch: repos.store.epoch() } } : {}),
        dhcp: config.dhcp.mode,
        ...(dhcpServer ? { dhcpStats: dhcpServer.stats() } : {}),
        tftp: tftpServer ? { port: tftpServer.port, ...tftpServer.stats() } : false,
        nodeImage: nodeImage.status(),
        bootLoadersMissing: tftp.missing.length > 0,
        subsystems: faults.snapshot(),
      }),
    });
    const boot = express
      .Router()
      .use(cloudInit.nodeRoutes)
      .use(
        createSharedRootBootRouter({
          repos,
          config,
          logger,
          roots: sharedRoot.roots,
          nodeImageReady: () => nodeImageNow() !== undefined,
        }),
      )
      .use(
        createBootRouter({
          repos,
          config,
          logger,
          nodeImage: nodeImageNow,
          nodeImageStatus: nodeImage.status,
          activity,
        }),
      )
      .use(
        createDeployBootRouter({
          repos,
          dataDir: config.dataDir,
          logger,
          installerTools: () => installerTools,
          hostKeys: HostKeyPins.forConfig(config),
          activity,
        }),
      );
    // With HTTPS on, plain HTTP keeps /boot and /api/v1 (iPXE and the busybox agent speak no TLS) and
    // sends console pages to the HTTPS listener, which serves everything with Secure cookies.
    const httpsOn = config.console.https;
    let httpsPort: number | undefined;
    // Basic credentials over plain HTTP are refused off loopback; the hint names the HTTPS port once known.
    const basicAuth = {
      allowInsecure: config.console.allowInsecureBasicAuth,
      httpsPort: () => httpsPort,
    };
    const consoleRouter = createConsoleRouter({
      repos,
      config,
      logger,
      authenticator,
      lb,
      snapshots,
      sharedRoot,
      deployer,
      beforeRisky: snapshots.beforeRisky,
      secureCookies: httpsOn,
      remote: { power, sshKeyPath: masterKeyPath(config.dataDir) },
      nodeImage: nodeImage.status,
      ...(monitor ? { monitor } : {}),
      ...(ha ? { ha: ha.controller, writeGate: ha.gate } : {}),
      faults: () => faults.snapshot(),
      cloudInit: cloudInit.cloudInit,
    });
    const app = createHttpApp({
      api,
      boot,
      console:
        httpsOn && config.console.httpsPort !== 0
          ? redirectToHttps({ httpsPort: config.console.httpsPort ?? 443, fallbackHost: config.address })
          : consoleRouter,
      logger,
      basicAuth,
    });
    const server = createServer(app);
    server.keepAliveTimeout = 5000;
    const httpPort = await listen(server, config.http.port, config.http.bind);
    closers.push({
      name: 'http',
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Bounded: in-flight downloads (kernels, images) get 5 s, then are cut.
          setTimeout(() => server.closeAllConnections(), 5000).unref();
        }),
    });
    if (httpsOn) {
      const tls = await ensureTls({
        dataDir: config.dataDir,
        address: config.address,
        certFile: config.console.certFile,
        keyFile: config.console.keyFile,
        logger,
      });
      const secureApp = createHttpApp({ api, boot, console: consoleRouter, logger, basicAuth });
      const secure = createHttpsServer({ cert: tls.cert, key: tls.key }, secureApp);
      secure.keepAliveTimeout = 5000;
      httpsPort = await listen(secure, config.console.httpsPort ?? 443, config.http.bind);
      closers.push({
        name: 'https',
        close: () =>
          new Promise<void>((resolve) => {
            secure.close(() => resolve());
            secure.closeIdleConnections();
            setTimeout(() => secure.closeAllConnections(), 5000).unref();
          }),
      });
      logger.info(
        { https: `${config.http.bind}:${httpsPort}`, cert: tls.certPath, sha256: tls.fingerprint256 },
        'console on HTTPS',
      );
    }
    closers.push({ name: 'lb', close: () => lb.close() });
    await lb.start();
    if (monitor) {
      monitor.start();
      closers.push({ name: 'monitor', close: async () => monitor.stop() });
      // Deployed nodes sampled over SSH (monitor.nodeSshSeconds; 0 = off).
      const nodes = new NodeCollector({
        repos,
        config,
        logger,
        monitor,
        privateKeyPath: masterKeyPath(config.dataDir),
      });
      nodes.start();
      closers.push({ name: 'node-collector', close: () => nodes.stop() });
    }
    if (ha) {
      ha.start(httpPort);
      closers.push({ name: 'ha', close: () => ha.close() });
    }
    logger.info(
      {
        version: VERSION,
        http: `${config.http.bind}:${httpPort}`,
        ...(httpsPort !== undefined ? { https: `${config.http.bind}:${httpsPort}` } : {}),
        url: publicUrl(config),
        dataDir: config.dataDir,
      },
      'corral master started',
    );
    return {
      config,
      repos,
      httpPort,
      ...(httpsPort !== undefined ? { httpsPort } : {}),
      ...(tftpServer ? { tftpPort: tftpServer.port } : {}),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The local pool from dhcp.range/subnet, then the relay pools (chosen by giaddr). */
export function dhcpPools(config: FrozenConfig): PoolSpec[] {
  const pools: PoolSpec[] = [];
  const toSpec = (p: {
    subnet: string;
    range: string;
    router?: string | undefined;
    dns: readonly string[];
    domain?: string | undefined;
  }): PoolSpec => {
    const [rangeStart, rangeEnd] = p.range.split('-') as [string, string];
    return {
      subnet: p.subnet,
      rangeStart,
      rangeEnd,
      ...(p.router ? { router: p.router } : {}),
      dns: [...p.dns],
      ...(p.domain ? { domain: p.domain } : {}),
    };
  };
  if (config.dhcp.range && config.dhcp.subnet) {
    pools.push(
      toSpec({
        subnet: config.dhcp.subnet,
        range: config.dhcp.range,
        router: config.dhcp.router,
        dns: config.dhcp.dns,
        domain: config.dhcp.domain,
      }),
    );
  }
  for (const p of config.dhcp.relayPools) pools.push(toSpec(p));
  return pools;
}

/** Reservations in the config file are the source of truth for their MACs: written into the store at start. */
function syncReservations(config: FrozenConfig, repos: Repos, leases: LeaseStore): void {
  if (!config.dhcp.reservations.length) return;
  repos.store.write((journal) => {
    for (const r of config.dhcp.reservations) {
      const existing = leases.reservationFor(r.mac);
      if (existing && existing.ip === r.ip && (existing.hostname ?? undefined) === r.hostname) continue;
      leases.reserveIn(journal, { mac: r.mac, ip: r.ip, hostname: r.hostname ?? null });
    }
  });
}

/** DHCP bound an address: remember it on the node (if the MAC is a known node). */
function recordNodeIp(repos: Repos, mac: string, ip: string): void {
  const node = repos.nodes.get(mac);
  if (!node || node.ip === ip) return;
  repos.store.write((journal) => repos.nodes.patchIn(journal, mac, { ip }));
}
