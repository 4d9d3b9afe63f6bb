/**
 * The appliance daemon: opens the store, makes sure an admin exists, and starts the HTTP (API, boot,
 * console), DHCP and TFTP servers from one frozen config. `close()` stops them in reverse order.
 */
import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FrozenConfig } from './config.js';
import { publicUrl } from './config.js';
import { openRepos, type Repos } from './store/repos.js';
import { Authenticator, ensureAdmin } from './auth/users.js';
import { createApiRouter } from './api/v1.js';
import { createBootRouter, type NodeImageFiles } from './boot/routes.js';
import { prepareTftpRoot } from './boot/files.js';
import { locateNodeImage } from './boot/node-image.js';
import { createHttpApp } from './http.js';
import { createConsoleRouter } from '../web-ui/console.js';
import { startDhcpServer, type DhcpServer } from './dhcp/index.js';
import type { PoolSpec } from './dhcp/pool.js';
import { startTftpServer, type TftpServer } from './tftp/index.js';
import { LeaseStore } from './store/leases.js';
import type { Logger } from './util/logger.js';
import { VERSION } from './util/version.js';
import { LoadBalancer } from './lb/load-balancer.js';

export interface MasterOptions {
  logger: Logger;
  /** First admin password (CORRAL_ADMIN_PASSWORD), read by the CLI. */
  initialAdminPassword?: string;
}

export interface Master {
  config: FrozenConfig;
  repos: Repos;
  httpPort: number;
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
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
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
    const tftp = prepareTftpRoot(config, logger);
    let nodeImage: NodeImageFiles | undefined = locateNodeImage(config.dataDir);
    const nodeImageNow = (): NodeImageFiles | undefined => {
      // Picked up without a restart once `corral node-image build` has written it.
      nodeImage ??= locateNodeImage(config.dataDir);
      return nodeImage;
    };
    if (!nodeImage)
      logger.warn('node environment not built yet: run `corral node-image build --data-dir ...`');

    const leases = new LeaseStore(repos.store);
    syncReservations(config, repos, leases);

    let tftpServer: TftpServer | undefined;
    if (config.tftp.enabled) {
      tftpServer = await startTftpServer({
        root: tftp.root,
        address: config.http.bind,
        port: config.tftp.port,
        logger,
        maxBlksize: config.tftp.maxBlksize,
      });
      const t = tftpServer;
      closers.push({ name: 'tftp', close: () => t.close() });
    }

    let dhcpServer: DhcpServer | undefined;
    if (config.dhcp.mode !== 'off') {
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
      });
      const d = dhcpServer;
      closers.push({ name: 'dhcp', close: () => d.close() });
    }

    const lb = new LoadBalancer({ repos, config, logger });
    const api = createApiRouter({
      repos,
      config,
      logger,
      authenticator,
      startedAt,
      lb,
      health: () => ({
        address: config.address,
        dhcp: config.dhcp.mode,
        ...(dhcpServer ? { dhcpStats: dhcpServer.stats() } : {}),
        tftp: tftpServer ? { port: tftpServer.port, ...tftpServer.stats() } : false,
        nodeImage: nodeImageNow() !== undefined,
        bootLoadersMissing: tftp.missing.length > 0,
      }),
    });
    const boot = createBootRouter({ repos, config, logger, nodeImage: nodeImageNow });
    const consoleRouter = createConsoleRouter({ repos, config, logger, authenticator, lb });
    const app = createHttpApp({ api, boot, console: consoleRouter, logger });
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
    closers.push({ name: 'lb', close: () => lb.close() });
    await lb.start();
    logger.info(
      {
        version: VERSION,
        http: `${config.http.bind}:${httpPort}`,
        url: publicUrl(config),
        dataDir: config.dataDir,
      },
      'corral master started',
    );
    return {
      config,
      repos,
      httpPort,
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
