/**
 * Performance monitoring as a feature (issue #10): the master sampled every monitor.intervalSeconds,
 * deployed nodes sampled over SSH (monitor.nodeSshSeconds; 0 = off), alerts. Both start once the HTTP
 * listeners are up. Node metric pushes and the Monitor page are core routes that take the monitor.
 */
import type { FrozenConfig } from '../config.js';
import { masterKeyPath } from '../deploy/ssh.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import type { MonitorConfig } from './config.js';
import { Monitor } from './monitor.js';
import { NodeCollector } from './node-collector.js';
import { systemSampler } from './sampler.js';

export interface MonitorFeatureDeps {
  config: { monitor: MonitorConfig } & Pick<FrozenConfig, 'remote' | 'dataDir' | 'sharedRoot'>;
  repos: Pick<Repos, 'events' | 'metrics' | 'nodes'>;
  logger: Logger;
  /** With HA: how far the backup is behind, for the "backup lagging" alert. */
  backupLagSeconds?: () => number | undefined;
}

export function startMonitor(deps: MonitorFeatureDeps): Started<{ monitor: Monitor }> {
  const { config, repos, logger } = deps;
  const monitor = new Monitor({
    repos,
    config,
    logger,
    sampler: systemSampler(config.dataDir),
    ...(deps.backupLagSeconds ? { backupLagSeconds: deps.backupLagSeconds } : {}),
  });
  let nodes: NodeCollector | undefined;
  return {
    monitor,
    serve: async () => {
      monitor.start();
      nodes = new NodeCollector({
        repos,
        config,
        logger,
        monitor,
        privateKeyPath: masterKeyPath(config.dataDir),
      });
      nodes.start();
    },
    close: async () => {
      await nodes?.stop();
      monitor.stop();
    },
  };
}
