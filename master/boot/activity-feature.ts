/**
 * The per-MAC boot timeline (issue 22) as a feature: DHCP, TFTP, HTTP and agent steps written in
 * batches (closed, so flushed, before the store), and its API route.
 */
import type { Started } from '../feature.js';
import type { LeaseStore } from '../store/leases.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { BootActivity } from './activity.js';
import { createBootActivityRouter } from './activity-api.js';

export interface BootActivityFeatureDeps {
  repos: Pick<Repos, 'bootActivity' | 'nodes'>;
  /** IP → MAC for steps that only know the address (TFTP, HTTP). */
  leases: Pick<LeaseStore, 'get'>;
  logger: Logger;
}

export function startBootActivity(deps: BootActivityFeatureDeps): Started<{ activity: BootActivity }> {
  const { repos, leases } = deps;
  const activity = new BootActivity({
    store: repos.bootActivity,
    logger: deps.logger,
    lookupIp: (ip) => leases.get(ip)?.mac,
    isNode: (mac) => repos.nodes.get(mac) !== undefined,
  });
  activity.start();
  return {
    activity,
    api: createBootActivityRouter(repos),
    close: async () => activity.close(),
  };
}
