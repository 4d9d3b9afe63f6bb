/**
 * Deployment's part of the boot decision (boot/decision.ts): a `deploying` node runs the installer
 * while its deployment is pending or installing, and boots the disk once the image is on it (its agent
 * then reports and the node becomes deployed). Any other deploying node is left to discovery.
 * The deployment's token is not on the script: a boot script goes to anyone who asks with the MAC
 * (issue 14); the installer fetches its plan, token included, with the node's credential.
 */
import type { BootProvider } from '../boot/decision.js';
import { installScript, localDiskScript } from '../boot/scripts.js';

export interface DeployBootFacts {
  /** The node's latest deployment, as the store has it. */
  latestDeployment(mac: string): { id: number; status: string } | undefined;
}

export function deployBootProvider(deps: DeployBootFacts): BootProvider {
  return {
    name: 'deploy',
    // Asked after the node-environment check, as before the boot surface existed: an `installed` node
    // also waits while the environment is missing (rare: it was built for the install moments before).
    needsNodeImage: true,
    decide: (f) => {
      if (f.node?.state !== 'deploying') return undefined;
      const d = deps.latestDeployment(f.mac);
      if (d?.status === 'installed') {
        return localDiskScript(f, f.node.name, `${f.node.name} installed: first boot from disk`);
      }
      if (d?.status === 'pending' || d?.status === 'installing') return installScript(f, f.node.name, d.id);
      return undefined;
    },
  };
}
