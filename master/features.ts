/**
 * The master's features, in start order (docs/architecture.md). master.ts starts them in this order,
 * mounts their `api` routers and console `pages` in this order, and closes them in reverse order.
 * A feature that uses another (deploy reboots through remote's power control) comes after it, and
 * reads it with `need()`, which fails at start, naming both, if the order is wrong.
 *
 * Adding a feature: one folder with a `feature.ts` whose `start(deps)` returns a `Feature`
 * (master/feature.ts), one entry below, and (when later features use it) one line in `Exposed`.
 */
import type { Authenticator } from './auth/users.js';
import type { FrozenConfig } from './config.js';
import type { Feature } from './feature.js';
import type { NodeSurface } from './boot/surface.js';
import type { HaRole } from './ha/controller.js';
import type { LeaseStore } from './store/leases.js';
import type { Repos } from './store/repos.js';
import type { Faults } from './util/faults.js';
import type { Logger } from './util/logger.js';
import { startBootActivity } from './boot/activity-feature.js';
import { startNodeImage } from './boot/node-image-feature.js';
import { startDeploy } from './deploy/feature.js';
import { startImagesP2p } from './images/p2p-feature.js';
import { startDhcp } from './dhcp/feature.js';
import { startDhcp6Feature } from './dhcp6/feature.js';
import { startCloudInit } from './cloudinit/index.js';
import { startDataSnapshots } from './data-snapshots/index.js';
import { startApps } from './apps/feature.js';
import { startEnrolmentFeature } from './enrolment/feature.js';
import { startMetricsFeature } from './metrics/feature.js';
import { haFacts, lbFacts } from './metrics/sources.js';
import { startHa } from './ha/feature.js';
import { startLb } from './lb/feature.js';
import { startDns } from './dns/feature.js';
import { startMonitor } from './monitor/feature.js';
import { startRemote } from './remote/feature.js';
import { startSerialConsole } from './serial-console/feature.js';
import { startSharedRoot } from './sharedroot/feature.js';
import { startSnapshots } from './snapshots/feature.js';
import { startTftp } from './tftp/feature.js';
import { startRegistry } from './registry/feature.js';

/** The shared infrastructure master.ts builds before any feature: what a feature entry may hand on. */
export interface Host {
  config: FrozenConfig;
  /** Handed to a feature only as the narrow ports its deps type names. */
  repos: Repos;
  logger: Logger;
  faults: Faults;
  authenticator: Authenticator;
  leases: LeaseStore;
  /** When the master started (ms since the epoch): uptime in health and metrics. */
  startedAt: number;
  /** Where the store copied the database before migrating it (a restore point once snapshots run). */
  preMigrationCopy: string;
  /** Tells the role-gated features (onRole) about an HA promotion or demotion. */
  roleChanged(role: HaRole): Promise<void>;
  /** What started features expose, filled in list order. */
  exposed: Partial<Exposed>;
}

/** What each feature exposes to later features and to master.ts, by entry name. */
export interface Exposed {
  snapshots: Awaited<ReturnType<typeof startSnapshots>>;
  remote: ReturnType<typeof startRemote>;
  deploy: Awaited<ReturnType<typeof startDeploy>>;
  nodeImage: ReturnType<typeof startNodeImage>;
  bootActivity: ReturnType<typeof startBootActivity>;
  tftp: Awaited<ReturnType<typeof startTftp>>;
  dhcp: Awaited<ReturnType<typeof startDhcp>>;
  sharedRoot: ReturnType<typeof startSharedRoot>;
  lb: ReturnType<typeof startLb>;
  monitor: ReturnType<typeof startMonitor>;
  ha: ReturnType<typeof startHa>;
  metrics: ReturnType<typeof startMetricsFeature>;
  enrolment: ReturnType<typeof startEnrolmentFeature>;
  cloudInit: ReturnType<typeof startCloudInit>;
  p2p: Awaited<ReturnType<typeof startImagesP2p>>;
  registry: Awaited<ReturnType<typeof startRegistry>>;
  /**
   * The node surface's TFTP files (boot/grub.ts: network GRUB's config, kernel, initrds), set by master.ts
   * once the surface exists; the TFTP server asks it per request, so it may come after TFTP starts.
   */
  nodeTftpFiles: NodeSurface['tftpFile'];
}

export interface FeatureEntry {
  name: string;
  /** Starts the feature, or returns undefined when the config turns it off. */
  start(host: Host): Promise<Feature | undefined> | Feature | undefined;
}

/** An earlier feature's exposure; a missing one is an ordering mistake in FEATURES. */
export function need<K extends keyof Exposed>(host: Host, name: K): Exposed[K] {
  const exposed = host.exposed[name];
  if (!exposed) throw new Error(`feature '${name}' is needed before it started: check the order of FEATURES`);
  return exposed;
}

export const FEATURES: FeatureEntry[] = [
  // Data snapshots of nodes (issue 17). First: its pages (/snapshots/data...) go before the restore
  // points' /snapshots/:name.
  {
    name: 'data-snapshots',
    start: (h) => startDataSnapshots({ config: h.config, repos: h.repos, logger: h.logger }),
  },
  // Restore points first: risky operations of later features take one before they run.
  {
    name: 'snapshots',
    start: async (h) =>
      (h.exposed.snapshots = await startSnapshots({
        config: h.config,
        repos: h.repos,
        logger: h.logger,
        preMigrationCopy: h.preMigrationCopy,
      })),
  },
  { name: 'remote', start: (h) => (h.exposed.remote = startRemote(h)) },
  {
    name: 'deploy',
    start: async (h) =>
      (h.exposed.deploy = await startDeploy({
        config: h.config,
        repos: h.repos,
        logger: h.logger,
        power: need(h, 'remote').power,
        beforeRisky: need(h, 'snapshots').snapshots.beforeRisky,
      })),
  },
  // Peer-to-peer image downloads for deploy waves (issue 19): the tracker, torrents, the plan's choice.
  {
    name: 'p2p',
    start: async (h) =>
      h.config.p2p.mode === 'off'
        ? undefined
        : (h.exposed.p2p = await startImagesP2p({ config: h.config, repos: h.repos, logger: h.logger })),
  },
  { name: 'node-image', start: (h) => (h.exposed.nodeImage = startNodeImage(h)) },
  {
    name: 'boot-activity',
    start: (h) => (h.exposed.bootActivity = startBootActivity(h)),
  },
  // With HA only the primary serves DHCP and TFTP (onRole); without, they serve from here.
  {
    name: 'tftp',
    start: async (h) =>
      (h.exposed.tftp = await startTftp({
        config: h.config,
        logger: h.logger,
        faults: h.faults,
        activity: need(h, 'bootActivity').activity,
        primaryOnly: h.config.ha.enabled,
        generated: (relative, peer) => h.exposed.nodeTftpFiles?.(relative, peer),
      })),
  },
  {
    name: 'dhcp',
    start: async (h) =>
      (h.exposed.dhcp = await startDhcp({
        config: h.config,
        repos: h.repos,
        leases: h.leases,
        logger: h.logger,
        faults: h.faults,
        activity: need(h, 'bootActivity').activity,
        primaryOnly: h.config.ha.enabled,
      })),
  },
  {
    name: 'dhcp6',
    start: (h) =>
      startDhcp6Feature({
        config: h.config,
        repos: h.repos,
        logger: h.logger,
        faults: h.faults,
        primaryOnly: h.config.ha.enabled,
        activity: need(h, 'bootActivity').activity,
      }),
  },
  { name: 'sharedroot', start: (h) => (h.exposed.sharedRoot = startSharedRoot(h)) },
  { name: 'lb', start: (h) => (h.exposed.lb = startLb(h)) },
  // DNS-SD (issue 21): the cluster zone in knot, following the load balancer's healthy servers.
  { name: 'dns', start: (h) => startDns({ ...h, lb: h.exposed.lb?.lb }) },
  // First-boot configuration of deployed nodes (NoCloud datasource, served by the node surface).
  {
    name: 'cloud-init',
    start: (h) => (h.exposed.cloudInit = startCloudInit({ repos: h.repos, config: h.config })),
  },
  // Rules act through the deploy, shared-root and power services (earlier in the list).
  {
    name: 'enrolment',
    start: (h) =>
      (h.exposed.enrolment = startEnrolmentFeature({
        repos: h.repos,
        config: h.config,
        logger: h.logger,
        deployer: need(h, 'deploy').deployer,
        sharedRoot: need(h, 'sharedRoot').sharedRoot,
        power: need(h, 'remote').power,
      })),
  },
  {
    name: 'monitor',
    start: (h) =>
      h.config.monitor.enabled
        ? (h.exposed.monitor = startMonitor({
            config: h.config,
            repos: h.repos,
            logger: h.logger,
            // HA (later in the list) feeds the "backup lagging" alert; read when the monitor samples.
            ...(h.config.ha.enabled ? { backupLagSeconds: () => h.exposed.ha?.backupLagSeconds() } : {}),
          }))
        : undefined,
  },
  // Last: it serves (keepalived, the change feed) once the others do, and is stopped first.
  {
    name: 'ha',
    start: (h) =>
      h.config.ha.enabled
        ? (h.exposed.ha = startHa({
            config: h.config,
            repos: h.repos,
            logger: h.logger,
            authenticator: h.authenticator,
            onRole: (role) => h.roleChanged(role),
          }))
        : undefined,
  },
  // The node's serial console in the browser (issue 20): a WebSocket on the console's listener.
  {
    name: 'serial-console',
    start: (h) => startSerialConsole({ config: h.config, repos: h.repos, logger: h.logger }),
  },
  // The image registry and Corral's base image for apps (issue 21; docs/registry.md).
  {
    name: 'registry',
    start: async (h) =>
      h.config.registry.enabled
        ? (h.exposed.registry = await startRegistry({ config: h.config, repos: h.repos, logger: h.logger }))
        : undefined,
  },
  // Apps on the cluster engine (issue 21): after lb, whose services carry the apps' healthy instances.
  {
    name: 'apps',
    start: (h) =>
      h.config.apps.enabled
        ? startApps({
            config: h.config,
            repos: h.repos,
            logger: h.logger,
            lb: h.exposed.lb?.lb,
            cloudInit: h.exposed.cloudInit?.cloudInit,
          })
        : undefined,
  },
  // After HA: it reads every feature above at scrape time, and changes nothing.
  {
    name: 'metrics',
    start: (h) => {
      const { dhcp, tftp, lb, ha } = h.exposed;
      return (h.exposed.metrics = startMetricsFeature({
        config: h.config,
        repos: h.repos,
        logger: h.logger,
        startedAtMs: h.startedAt,
        sources: {
          ...(h.config.dhcp.mode !== 'off' && dhcp ? { dhcp: () => dhcp.stats() } : {}),
          ...(h.config.tftp.enabled && tftp ? { tftp: () => tftp.stats() } : {}),
          faults: () => h.faults.snapshot(),
          ...(ha ? { ha: () => haFacts(ha.ha.controller.status()) } : {}),
          ...(lb ? { lb: () => lbFacts(lb.lb) } : {}),
        },
      }));
    },
  },
];
