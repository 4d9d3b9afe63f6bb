import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';
import type { EnlistRequest } from './inventory.js';

export type AgentAction = 'poweroff' | 'wait' | 'reboot';

export interface EnlistReply {
  action: AgentAction;
  pollSeconds: number;
  node: { name: string; state: string; mac: string };
}

/** Renders the configured name pattern: `{n}` → sequence number, `{mac}` → MAC without separators. */
export function nodeName(pattern: string, seqNo: number, mac: string): string {
  return pattern.replace(/\{n\}/g, String(seqNo)).replace(/\{mac\}/g, mac.replace(/:/g, ''));
}

/** What an agent should do next, by the node's state. */
export function nextAction(node: NodeRecord, config: FrozenConfig): AgentAction {
  switch (node.state) {
    case 'deploying':
    case 'diskless':
      // Its next PXE boot gets the installer / shared root script.
      return 'reboot';
    case 'discovered':
    case 'ready':
      return config.nodes.discoverAction;
    default:
      return 'wait';
  }
}

/**
 * Records a node that booted the discovery environment. A known MAC is updated in place (never a second
 * row); a new one is named from the pattern and enters `discovered`.
 */
export function enlist(
  repos: Repos,
  config: FrozenConfig,
  req: EnlistRequest,
  sourceIp: string | null,
): { node: NodeRecord; created: boolean; reply: EnlistReply } {
  const { node, created } = repos.store.write((journal) => {
    const now = repos.store.now().toISOString();
    const existing = repos.nodes.get(req.mac);
    const firmware = req.inventory.firmware ?? null;
    if (existing) {
      const updated = repos.nodes.patchIn(journal, req.mac, {
        inventory: req.inventory,
        firmware,
        ip: sourceIp ?? existing.ip,
        lastSeenAt: now,
      });
      repos.events.appendIn(journal, {
        nodeMac: req.mac,
        kind: 'node.enlisted',
        message: `${existing.name} re-enlisted (inventory refreshed)`,
        actor: 'agent',
        data: { ip: sourceIp, mode: req.mode ?? null },
      });
      return { node: updated, created: false };
    }
    // Names are unique: skip sequence numbers whose rendered name an operator already took by renaming.
    let seqNo = repos.nodes.nextSeqNo();
    let name = nodeName(config.nodes.namePattern, seqNo, req.mac);
    for (let i = 0; repos.nodes.getByName(name) && i < 10_000; i++) {
      seqNo++;
      name = nodeName(config.nodes.namePattern, seqNo, req.mac);
    }
    if (repos.nodes.getByName(name)) {
      throw new CorralError(
        'CONFLICT',
        `cannot find a free node name for pattern ${config.nodes.namePattern}`,
      );
    }
    const inserted = repos.nodes.insertIn(journal, {
      mac: req.mac,
      name,
      seqNo,
      state: 'discovered',
      ip: sourceIp,
      firmware,
      inventory: req.inventory,
    });
    repos.events.appendIn(journal, {
      nodeMac: req.mac,
      kind: 'node.discovered',
      message: `discovered ${name} (${req.mac})`,
      actor: 'agent',
      data: { ip: sourceIp, firmware },
    });
    return { node: inserted, created: true };
  });
  return {
    node,
    created,
    reply: {
      action: nextAction(node, config),
      pollSeconds: config.nodes.pollSeconds,
      node: { name: node.name, state: node.state, mac: node.mac },
    },
  };
}
