/**
 * The deploy service the API, console and CLI share: starts a deployment and gets the node rebooting
 * into the installer if it can — a node polling from the discovery environment is told `reboot` by its
 * next enlistment (nodes/enlist.ts), a deployed node with an address is rebooted over SSH with the
 * master's key; anything else needs the operator (or power control) to power-cycle it.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { DeploymentRecord } from '../store/deployments.js';
import type { Logger } from '../util/logger.js';
import { startDeploy, failStalled, type DeployRequest } from './deploy.js';
import { sshReboot, type MasterKey } from './ssh.js';

export type RebootPath = 'agent' | 'ssh' | 'manual';

export interface Deployer {
  deploy(node: NodeRecord, req: DeployRequest): Promise<{ deployment: DeploymentRecord; reboot: RebootPath }>;
  /** Starts the stall watchdog; returns its stop function. */
  watch(intervalMs?: number): () => void;
}

export function createDeployer(opts: {
  repos: Repos;
  config: FrozenConfig;
  logger: Logger;
  key: MasterKey;
}): Deployer {
  const { repos, config } = opts;
  const log = opts.logger.child({ module: 'deploy' });
  const keys = [opts.key.publicKey, ...config.deploy.sshAuthorizedKeys];
  return {
    async deploy(node, req) {
      const wasDeployed = node.state === 'deployed';
      const deployment = startDeploy(repos, config, node, req, keys);
      let reboot: RebootPath = wasDeployed ? 'manual' : 'agent';
      if (wasDeployed && node.ip) {
        const err = await sshReboot(opts.key, node.ip);
        reboot = err ? 'manual' : 'ssh';
        repos.store.write((journal) =>
          repos.events.appendIn(journal, {
            nodeMac: node.mac,
            kind: 'deploy.reboot',
            severity: err ? 'warning' : 'info',
            message: err
              ? `reboot over SSH failed (${err}): power-cycle ${node.name}`
              : `rebooted ${node.name} over SSH`,
            actor: 'master',
          }),
        );
      }
      log.info({ mac: node.mac, deployment: deployment.id, reboot }, 'deploy started');
      return { deployment, reboot };
    },
    watch(intervalMs = 10_000) {
      const timer = setInterval(() => {
        try {
          const n = failStalled(repos, config, new Date());
          if (n) log.warn({ failed: n }, 'stalled deployments failed');
        } catch (err) {
          log.warn({ err }, 'deploy watchdog failed');
        }
      }, intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
