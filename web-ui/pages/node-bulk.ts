/**
 * The node list's bulk deploy and bulk power actions. Each node goes through the same function as its
 * own page (Deployer.deploy, PowerControl.act), one after the other, and the flash names every node's
 * outcome. A deploy of more than one node first takes an automatic restore point (BeforeRisky): mass
 * deploy is the operation that can lose the most in one click, and the snapshot is why it can be undone.
 */
import type { Deployer, RebootPath } from '../../master/deploy/deployer.js';
import { resolveLayout } from '../../master/deploy/deploy.js';
import type { FrozenConfig } from '../../master/config.js';
import { findImage } from '../../master/images/registry.js';
import type { PowerAction } from '../../master/remote/power-driver.js';
import type { PowerControl } from '../../master/remote/power.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import type { Repos } from '../../master/store/repos.js';
import type { BeforeRisky } from '../../master/util/before-risky.js';
import { CorralError, isCorralError } from '../../master/util/errors.js';

/** What the node list's bulk actions need beyond the store; each is absent when its subsystem is. */
export interface NodeBulkDeps {
  deployer?: Deployer | undefined;
  power?: PowerControl | undefined;
  beforeRisky?: BeforeRisky | undefined;
}

export interface BulkOutcome {
  done: string[];
  failed: string[];
}

/** The flash of a bulk action: who it was done for, who refused and why ('' names no action). */
export function bulkSummary(what: string, o: BulkOutcome): { kind: 'ok' | 'err'; message: string } {
  const parts = [
    o.done.length ? `${what ? `${what}: done` : 'Done'} for ${o.done.join(', ')}.` : '',
    o.failed.length ? `Refused: ${o.failed.join('; ')}.` : '',
  ];
  return { kind: o.failed.length ? 'err' : 'ok', message: parts.filter(Boolean).join(' ') };
}

const REBOOT: Record<RebootPath, string> = {
  power: 'power-cycled',
  agent: 'agent reboots it',
  ssh: 'rebooted over SSH',
  manual: 'power-cycle it yourself',
};

/** The restore point's reason: which image onto which nodes, so the snapshot list says what it guards. */
export function massDeployReason(image: string, nodes: readonly Pick<NodeRecord, 'name'>[]): string {
  return `before deploying ${image} to ${nodes.length} nodes: ${nodes.map((n) => n.name).join(', ')}`;
}

export async function bulkDeploy(
  deps: NodeBulkDeps & { repos: Repos; config: FrozenConfig },
  nodes: readonly NodeRecord[],
  image: string,
  layout: string | undefined,
  actor: string,
): Promise<BulkOutcome> {
  if (!deps.deployer) throw new CorralError('BODY_INVALID', 'Deploying is not available on this master.');
  if (!image) throw new CorralError('BODY_INVALID', 'Choose an image to deploy.');
  // Refused before the restore point: a typo in the image or layout must not cost a snapshot.
  const img = findImage(deps.repos, image);
  resolveLayout(deps.config, layout);
  if (nodes.length > 1 && deps.beforeRisky) await deps.beforeRisky(massDeployReason(img.name, nodes), actor);
  const out: BulkOutcome = { done: [], failed: [] };
  for (const node of nodes) {
    try {
      const { deployment, reboot } = await deps.deployer.deploy(node, { image: img.name, layout, actor });
      out.done.push(`${node.name} (deployment ${deployment.id}, ${REBOOT[reboot]})`);
    } catch (err) {
      if (!isCorralError(err)) throw err;
      out.failed.push(`${node.name} (${err.message})`);
    }
  }
  return out;
}

export const BULK_POWER_ACTIONS: readonly PowerAction[] = ['on', 'off', 'cycle', 'pxe'];

export async function bulkPower(
  deps: NodeBulkDeps,
  nodes: readonly NodeRecord[],
  action: PowerAction,
  actor: string,
): Promise<BulkOutcome> {
  if (!deps.power) throw new CorralError('BODY_INVALID', 'Power control is not available on this master.');
  if (!BULK_POWER_ACTIONS.includes(action))
    throw new CorralError('BODY_INVALID', `Unknown power action '${action}'.`);
  const out: BulkOutcome = { done: [], failed: [] };
  for (const node of nodes) {
    try {
      const r = await deps.power.act(node, action, actor);
      out.done.push(r.manual ? `${node.name} (operator action needed)` : node.name);
    } catch (err) {
      if (!isCorralError(err)) throw err;
      out.failed.push(`${node.name} (${err.message})`);
    }
  }
  return out;
}
