/**
 * Apps on the cluster engine (issue 21) as a feature: the engine driver (docker over SSH on engine nodes),
 * the apps service with its reconcile timer, its API and console pages. Off unless `apps.enabled`.
 */
import type { FrozenConfig } from '../config.js';
import { masterKeyPath } from '../deploy/ssh.js';
import type { Started } from '../feature.js';
import type { CloudInit } from '../cloudinit/service.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { HostKeyPins, recordHostKeyRefusal } from '../remote/host-keys.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { createAppsRouter } from './api.js';
import { SshDocker } from './engine.js';
import { ensureEngineLayer } from './engine-layer.js';
import { createAppsPages } from './pages.js';
import { Apps } from './service.js';

export interface AppsFeatureDeps {
  config: Pick<FrozenConfig, 'apps' | 'remote' | 'dataDir' | 'sharedRoot' | 'address'>;
  repos: Pick<Repos, 'store' | 'nodes' | 'events' | 'apps'>;
  logger: Logger;
  lb?: LoadBalancer | undefined;
  /** Where the engine nodes' cloud-init layer goes (dockerd trusts the master registry). */
  cloudInit?: Pick<CloudInit, 'list' | 'set'> | undefined;
}

/** The base image for command-only apps: the master's registry (s4-registry serves it on :5000). */
export function registryOf(config: Pick<FrozenConfig, 'address'>): string {
  return `${config.address}:5000`;
}

export function baseImageOf(config: Pick<FrozenConfig, 'apps' | 'address'>): string {
  return config.apps.baseImage ?? `${registryOf(config)}/corral/base:debian-12`;
}

export function startApps(deps: AppsFeatureDeps): Started<{ apps: Apps }> {
  const { config, repos } = deps;
  const log = deps.logger.child({ module: 'apps' });
  const exec = config.remote.exec;
  if (deps.cloudInit) {
    try {
      ensureEngineLayer(deps.cloudInit, config.apps.engine, registryOf(config), log);
    } catch (err) {
      // A backup master refuses writes; the primary's layer reaches it by replication.
      log.warn({ err: (err as Error).message }, 'cloud-init layer for engine nodes not stored');
    }
  }
  const docker = new SshDocker({
    user: exec.user,
    port: exec.port,
    privateKeyPath: masterKeyPath(config.dataDir),
    connectTimeoutMs: exec.connectTimeoutSeconds * 1000,
    commandTimeoutMs: config.apps.commandTimeoutSeconds * 1000,
    hostKeys: HostKeyPins.forConfig(config),
    dockerBin: config.apps.engine.dockerBin,
    onHostKeyRefused: (node, reason) => recordHostKeyRefusal(repos, node, reason),
  });
  const apps = new Apps({
    config: config.apps,
    repos,
    docker,
    logger: log,
    baseImage: baseImageOf(config),
    lb: deps.lb,
  });
  const timer = setInterval(() => apps.tick(), config.apps.reconcileSeconds * 1000);
  timer.unref();
  apps.tick();
  return {
    apps,
    api: createAppsRouter(apps),
    pages: (ctx) => createAppsPages(ctx, apps),
    health: () => ({
      apps: { managers: apps.swarmStatus().managers, engineNodes: apps.swarmStatus().engineNodes },
    }),
    close: async () => {
      clearInterval(timer);
      await apps.idle();
      docker.close();
    },
  };
}
