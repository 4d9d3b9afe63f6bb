import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord, NodeState } from '../store/nodes.js';
import type { Journal } from '../store/db.js';
import type { CredentialReason } from '../store/node-credentials.js';
import { CorralError } from '../util/errors.js';
import type { EnlistRequest } from './inventory.js';
import { credentialMatches, newCredential } from './credentials.js';
import { authoritativeAddress } from './address.js';

export type AgentAction = 'poweroff' | 'wait' | 'reboot';

export interface EnlistReply {
  action: AgentAction;
  pollSeconds: number;
  node: { name: string; state: string; mac: string };
  /** The node's new credential: only in the reply that issues it (first enlistment or recovery). */
  credential?: string;
}

/** What the route knows about the request beyond its body. */
export interface EnlistContext {
  /** The TCP peer's address (what a request claims in its body never counts). */
  sourceIp: string | null;
  /** `Authorization: Bearer` of the request, if any. */
  credential: string | undefined;
  /** DHCP server mode: the MAC's bound lease address (master/nodes/address.ts), if any. */
  leaseIp: string | undefined;
  /** Called before a NEW MAC is recorded; throws (ENLIST_RATE_LIMITED) to refuse it. */
  admitNew?: () => void;
}

/**
 * States whose next boot runs the node environment, whose agent (having lost its tmpfs in the reboot)
 * asks for a new credential. A deployed node keeps its credential on its disk; a retiring one is the
 * operator's to move on. See docs/security.md.
 */
export const RECOVERABLE_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'discovered',
  'ready',
  'deploying',
  'diskless',
  'failed',
]);

/**
 * Why a node without its credential may not have a new one, or null when it may: only from the
 * address Corral's records give for it (its DHCP lease in server mode, else its first contact) and only
 * in a state that boots the node environment.
 */
export function recoveryRefusal(
  config: FrozenConfig,
  node: NodeRecord,
  ctx: Pick<EnlistContext, 'sourceIp' | 'leaseIp' | 'credential'>,
): CorralError | null {
  const code = ctx.credential ? 'NODE_CREDENTIAL_INVALID' : 'NODE_CREDENTIAL_REQUIRED';
  const what = ctx.credential ? 'sent a credential that is not its current one' : 'sent no credential';
  const address = authoritativeAddress(config, node, ctx.leaseIp);
  if (!address || ctx.sourceIp !== address) {
    return new CorralError(
      code,
      `${node.name} (${node.mac}) is known: a request from ${ctx.sourceIp ?? 'an unknown address'} ${what}, and a new one is issued only to the node's own address${address ? '' : ' (none recorded)'}`,
      { reason: 'address' },
    );
  }
  if (!RECOVERABLE_STATES.has(node.state)) {
    return new CorralError(
      code,
      `${node.name} (${node.mac}) is ${node.state}: it ${what}, and a node in that state does not boot the node environment, so no new credential is issued`,
      { reason: 'state' },
    );
  }
  return null;
}

function issueIn(
  repos: Repos,
  journal: Journal,
  mac: string,
  ip: string | null,
  reason: CredentialReason,
): string {
  const { secret, hash } = newCredential();
  repos.nodeCredentials.putIn(journal, { mac, hash, issuedIp: ip, reason });
  return secret;
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
 * Records a node that booted the node environment. A new MAC (admitted by the rate limit) is named from
 * the pattern, enters `discovered`, gets its address from its lease (server mode) or the request, and a
 * credential. A known MAC must show its credential, or qualify for a new one (recoveryRefusal); either
 * way its recorded address is never taken from the request: only a DHCP lease or an operator moves it.
 * A refused request throws and changes nothing.
 */
export function enlist(
  repos: Repos,
  config: FrozenConfig,
  req: EnlistRequest,
  ctx: EnlistContext,
): { node: NodeRecord; created: boolean; reply: EnlistReply; credentialIssued: CredentialReason | null } {
  const existing = repos.nodes.get(req.mac);
  const authenticated = existing ? credentialMatches(repos, req.mac, ctx.credential) : false;
  if (existing && !authenticated) {
    const refusal = recoveryRefusal(config, existing, ctx);
    if (refusal) throw refusal;
  }
  if (!existing) ctx.admitNew?.();
  const { node, created, credential } = repos.store.write((journal) => {
    const now = repos.store.now().toISOString();
    const firmware = req.inventory.firmware ?? null;
    if (existing) {
      // The DHCP server already wrote a new lease into nodes.ip; this only catches up a lease bound while
      // the node row did not exist yet. The request's own address is never used.
      const leaseMoved = config.dhcp.mode === 'server' && ctx.leaseIp && ctx.leaseIp !== existing.ip;
      const updated = repos.nodes.patchIn(journal, req.mac, {
        inventory: req.inventory,
        firmware,
        ...(leaseMoved ? { ip: ctx.leaseIp } : {}),
        lastSeenAt: now,
      });
      const fresh = authenticated ? undefined : issueIn(repos, journal, req.mac, ctx.sourceIp, 'recovery');
      repos.events.appendIn(journal, {
        nodeMac: req.mac,
        kind: 'node.enlisted',
        message: `${existing.name} re-enlisted (${fresh ? 'new credential: it booted again from its own address' : 'inventory refreshed'})`,
        actor: 'agent',
        data: { ip: ctx.sourceIp, mode: req.mode ?? null, credential: fresh ? 'recovery' : 'kept' },
      });
      return { node: updated, created: false, credential: fresh };
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
    const ip = (config.dhcp.mode === 'server' ? ctx.leaseIp : undefined) ?? ctx.sourceIp;
    const inserted = repos.nodes.insertIn(journal, {
      mac: req.mac,
      name,
      seqNo,
      state: 'discovered',
      ip,
      firmware,
      inventory: req.inventory,
    });
    const secret = issueIn(repos, journal, req.mac, ctx.sourceIp, 'first-enlist');
    repos.events.appendIn(journal, {
      nodeMac: req.mac,
      kind: 'node.discovered',
      message: `discovered ${name} (${req.mac})`,
      actor: 'agent',
      data: { ip, from: ctx.sourceIp, firmware },
    });
    return { node: inserted, created: true, credential: secret };
  });
  return {
    node,
    created,
    credentialIssued: credential ? (created ? 'first-enlist' : 'recovery') : null,
    reply: {
      action: nextAction(node, config),
      pollSeconds: config.nodes.pollSeconds,
      node: { name: node.name, state: node.state, mac: node.mac },
      ...(credential ? { credential } : {}),
    },
  };
}
