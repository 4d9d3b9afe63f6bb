/**
 * The node lifecycle (ARCHITECTURE.md): the only writer of nodes.state. Each transition is checked
 * against this table and recorded as an event in the same transaction as the state change.
 *
 *   discovered → ready → deploying → deployed | diskless → (retiring) → ready
 *   deploying → failed, and failed → deploying (retry) | ready
 */
import type { Journal } from '../store/db.js';
import type { Repos } from '../store/repos.js';
import type { NodeRecord, NodeState } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';

export const TRANSITIONS: Readonly<Record<NodeState, readonly NodeState[]>> = {
  discovered: ['ready', 'deploying', 'diskless', 'retiring', 'failed'],
  ready: ['deploying', 'diskless', 'retiring', 'failed'],
  deploying: ['deployed', 'failed', 'ready'],
  deployed: ['deploying', 'retiring', 'failed'],
  diskless: ['ready', 'deploying', 'retiring', 'failed'],
  retiring: ['ready', 'failed'],
  failed: ['deploying', 'diskless', 'ready', 'retiring'],
};

export function canTransition(from: NodeState, to: NodeState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** What a transition writes: the node's state and its event, in one transaction. */
export type LifecycleRepos = Pick<Repos, 'store' | 'nodes' | 'events'>;

export interface TransitionRequest {
  to: NodeState;
  reason?: string | null;
  actor?: string | null;
  data?: Record<string, unknown>;
}

/** Moves a node inside the caller's transaction; throws STATE_TRANSITION_INVALID when the table forbids it. */
export function transitionIn(
  repos: LifecycleRepos,
  journal: Journal,
  node: NodeRecord,
  req: TransitionRequest,
): NodeRecord {
  if (node.state === req.to) return node;
  if (!canTransition(node.state, req.to)) {
    throw new CorralError(
      'STATE_TRANSITION_INVALID',
      `node ${node.name} cannot go from ${node.state} to ${req.to}`,
      { from: node.state, to: req.to, allowed: TRANSITIONS[node.state] },
    );
  }
  const updated = repos.nodes.setStateIn(journal, node.mac, req.to, req.reason ?? null);
  repos.events.appendIn(journal, {
    nodeMac: node.mac,
    kind: 'node.state',
    severity: req.to === 'failed' ? 'error' : 'info',
    message: `${node.name}: ${node.state} → ${req.to}${req.reason ? ` (${req.reason})` : ''}`,
    actor: req.actor ?? 'system',
    data: { from: node.state, to: req.to, ...(req.data ?? {}) },
  });
  return updated;
}

export function transition(repos: LifecycleRepos, mac: string, req: TransitionRequest): NodeRecord {
  return repos.store.write((journal) => {
    const node = repos.nodes.get(mac);
    if (!node) throw new CorralError('NODE_NOT_FOUND', `no node with MAC ${mac}`);
    return transitionIn(repos, journal, node, req);
  });
}
