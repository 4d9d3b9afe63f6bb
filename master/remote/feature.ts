/**
 * Remote control as a feature (issue #11): power drivers with their passwords sealed under
 * DATA_DIR/keys/power.key, the power-state poller, commands on nodes over SSH; the API and console pages.
 */
import express from 'express';
import type { FrozenConfig } from '../config.js';
import { masterKeyPath } from '../deploy/ssh.js';
import type { ConsolePages, Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { mountExec } from '../../web-ui/pages/exec.js';
import { mountPower } from '../../web-ui/pages/power.js';
import { createRemoteApiRouter } from './api.js';
import { createPowerControl, type PowerControl } from './power.js';
import { SecretBox } from './secrets.js';

export interface RemoteFeatureDeps {
  config: Pick<FrozenConfig, 'dataDir' | 'address' | 'dhcp' | 'remote' | 'sharedRoot'>;
  repos: Pick<Repos, 'store' | 'nodes' | 'events' | 'powerConfigs' | 'execRuns' | 'audit'>;
  logger: Logger;
}

export function startRemote(deps: RemoteFeatureDeps): Started<{ power: PowerControl }> {
  const { config, repos } = deps;
  const power = createPowerControl({
    repos,
    config,
    logger: deps.logger,
    secrets: SecretBox.forDataDir(config.dataDir),
  });
  const stopPoll = power.startPoller();
  const sshKeyPath = masterKeyPath(config.dataDir);
  return {
    power,
    api: createRemoteApiRouter({ repos, config, power, privateKeyPath: sshKeyPath }),
    pages: remotePages(power, sshKeyPath),
    close: async () => stopPoll(),
  };
}

/** The Power settings and Run command pages (a node's power actions are on the node page). */
export function remotePages(power: PowerControl, sshKeyPath: string): ConsolePages {
  return (ctx) => {
    const router = express.Router();
    mountPower(router, ctx, power);
    mountExec(router, ctx, sshKeyPath);
    return router;
  };
}
