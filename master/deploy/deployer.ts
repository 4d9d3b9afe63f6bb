/**
 * The deploy service the API, console and CLI share: starts a deployment and gets the node rebooting
 * into the installer if it can. In order: a node with a power driver that can reboot it (IPMI, with
 * `remote.power.rebootForDeploy`) is set to PXE for its next boot and power-cycled; otherwise a node
 * polling from the discovery environment is told `reboot` by its next enlistment (nodes/enlist.ts), and
 * a deployed node with an address is rebooted over SSH with the master's key; anything else needs the
 * operator. Which way was taken is recorded as a `deploy.reboot` event.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import type { DeploymentRecord } from '../store/deployments.js';
import type { Logger } from '../util/logger.js';
import { createDeployHostKey, startDeploy, failStalled, type DeployRequest } from './deploy.js';
import { HostKeyPins } from '../remote/host-keys.js';
import { sshReboot, type MasterKey } from './ssh.js';

export type RebootPath = 'power' | 'agent' | 'ssh' | 'manual';

/**
 * What the deployer needs of power control (master/remote/power.ts's PowerControl is one), so deploy
 * does not depend on the drivers. Resolves to null when the node has no driver the deploy may use;
 * `rebooted` is false when the driver could only power the node on (Wake-on-LAN), which does nothing to
 * a running node. Rejects when the driver failed (the BMC did not answer).
 */
export interface DeployPower {
  powerCycleForDeploy(
    node: NodeRecord,
    actor: string | null,
  ): Promise<{ driver: string; message: string; rebooted: boolean } | null>;
}

/** The operator's next step after a deploy, one clause for the console's flash and the CLI. */
export function describeReboot(path: RebootPath): string {
  switch (path) {
    case 'power':
      return 'power-cycled into PXE boot through its power driver';
    case 'agent':
      return 'its agent is told to reboot at its next poll';
    case 'ssh':
      return 'rebooted over SSH';
    case 'manual':
      return 'power-cycle it to start the installer';
  }
}

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
  /** Power control; without it (or for a node without a driver) the agent, SSH or the operator reboots. */
  power?: DeployPower | undefined;
  /** Injected SSH reboot (tests); the real `ssh` by default. */
  sshReboot?: typeof sshReboot;
}): Deployer {
  const { repos, config } = opts;
  const log = opts.logger.child({ module: 'deploy' });
  const keys = [opts.key.publicKey, ...config.deploy.sshAuthorizedKeys];
  const reboot = opts.sshReboot ?? sshReboot;
  const pins = HostKeyPins.forConfig(config);

  /** Tries power control, then the agent or SSH; returns the path and what happened, for the event. */
  const rebootForDeploy = async (
    node: NodeRecord,
    actor: string | null,
  ): Promise<{ path: RebootPath; notes: string[]; driver: string | null; ok: boolean }> => {
    const notes: string[] = [];
    let driver: string | null = null;
    let powerFailed = false;
    if (opts.power) {
      try {
        const r = await opts.power.powerCycleForDeploy(node, actor);
        if (r) {
          driver = r.driver;
          if (r.rebooted) return { path: 'power', notes: [r.message], driver, ok: true };
          notes.push(r.message);
        }
      } catch (err) {
        powerFailed = true;
        notes.push(`power control failed (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    if (node.state !== 'deployed') {
      // The discovery agent polls the master and is told `reboot` while the node is deploying.
      notes.push(`${node.name}'s agent is told to reboot at its next poll`);
      return { path: 'agent', notes, driver, ok: !powerFailed };
    }
    if (node.ip) {
      const err = await reboot(opts.key, node.ip);
      if (!err) return { path: 'ssh', notes: [...notes, `rebooted ${node.name} over SSH`], driver, ok: true };
      notes.push(`reboot over SSH failed (${err})`);
    }
    notes.push(`power-cycle ${node.name}`);
    return { path: 'manual', notes, driver, ok: false };
  };

  return {
    async deploy(node, req) {
      // The installed system's host key first: the plan carries it, and the master pins it (issue 14).
      const hostKeyPub = await createDeployHostKey(pins, node.mac);
      const deployment = startDeploy(repos, config, node, req, keys, hostKeyPub);
      const r = await rebootForDeploy(node, req.actor);
      repos.events.append({
        nodeMac: node.mac,
        kind: 'deploy.reboot',
        severity: r.ok ? 'info' : 'warning',
        message: r.notes.join('; '),
        actor: 'master',
        data: { deployment: deployment.id, path: r.path, driver: r.driver },
      });
      log.info(
        { mac: node.mac, deployment: deployment.id, reboot: r.path, driver: r.driver },
        'deploy started',
      );
      return { deployment, reboot: r.path };
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
