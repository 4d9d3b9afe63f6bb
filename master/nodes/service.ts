/**
 * The nodes service: the one place that finds a node by MAC or name, changes its name, role or address,
 * moves it through the lifecycle and deletes it. The REST API, the console and the CLI call it, so a
 * change made from any of them does the same work and writes the same events (`node.updated`,
 * `node.deleted`, and the lifecycle's own `node.<state>`).
 */
import type { Repos } from '../store/repos.js';
import type { NodeRecord, NodeState } from '../store/nodes.js';
import { CorralError } from '../util/errors.js';
import { normaliseMac } from './inventory.js';
import { transition } from './lifecycle.js';
import { applyTagChange, type TagChange } from './tags.js';

/** A node's name is a DNS label (RFC 1123 §2.1), lower case: it becomes the node's host name. */
export const NODE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A role names a group of nodes in services and rules. */
export const NODE_ROLE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** The two reads a lookup needs, so callers holding a narrower store port can use it too. */
export interface NodeLookup {
  get(mac: string): NodeRecord | undefined;
  getByName(name: string): NodeRecord | undefined;
}

/** Finds a node by MAC (any common notation) or by name; NODE_NOT_FOUND otherwise. */
export function findNode(nodes: NodeLookup, id: string): NodeRecord {
  const mac = normaliseMac(id);
  const node = (mac && nodes.get(mac)) || nodes.getByName(id);
  if (!node) throw new CorralError('NODE_NOT_FOUND', `no node with MAC or name '${id}'`);
  return node;
}

/** The fields an operator may change; absent means unchanged, null clears role or address. */
export interface NodeChange {
  name?: string | undefined;
  role?: string | null | undefined;
  ip?: string | null | undefined;
}

type NodeRepos = Pick<
  Repos,
  'store' | 'nodes' | 'events' | 'metrics' | 'powerConfigs' | 'nodeCredentials' | 'sharedRoots'
>;

export class NodeService {
  constructor(private readonly repos: NodeRepos) {}

  find(id: string): NodeRecord {
    return findNode(this.repos.nodes, id);
  }

  /**
   * Renames a node and sets its role or address, with one `node.updated` event naming what changed.
   * Shape checks (NODE_NAME, NODE_ROLE, IPv4) belong to the caller, which words them for its audience;
   * the uniqueness of the name is checked here.
   */
  update(node: NodeRecord, change: NodeChange, actor: string | null): NodeRecord {
    const patch = {
      ...(change.name !== undefined ? { name: change.name } : {}),
      ...(change.role !== undefined ? { role: change.role } : {}),
      ...(change.ip !== undefined ? { ip: change.ip } : {}),
    };
    if (patch.name && patch.name !== node.name && this.repos.nodes.getByName(patch.name)) {
      throw new CorralError('CONFLICT', `another node is already named ${patch.name}`);
    }
    return this.repos.store.write((journal) => {
      const n = this.repos.nodes.patchIn(journal, node.mac, patch);
      this.repos.events.appendIn(journal, {
        nodeMac: node.mac,
        kind: 'node.updated',
        message: `${n.name} updated: ${Object.keys(patch).join(', ')}`,
        actor,
        data: patch,
      });
      return n;
    });
  }

  /**
   * Adds, removes or replaces a node's tags, with one `node.tagged` event saying what changed (none when
   * nothing did). `via` names who acted beyond the actor, e.g. the enrolment rule that tagged it.
   */
  tag(
    node: NodeRecord,
    change: TagChange,
    actor: string | null,
    data: Record<string, unknown> = {},
  ): NodeRecord {
    const tags = applyTagChange(node.tags, change);
    const added = tags.filter((t) => !node.tags.includes(t));
    const removed = node.tags.filter((t) => !tags.includes(t));
    if (!added.length && !removed.length) return node;
    return this.repos.store.write((journal) => {
      const n = this.repos.nodes.patchIn(journal, node.mac, { tags });
      const what = [...added.map((t) => `+${t}`), ...removed.map((t) => `-${t}`)].join(' ');
      this.repos.events.appendIn(journal, {
        nodeMac: node.mac,
        kind: 'node.tagged',
        message: `${n.name} tags ${what}`,
        actor,
        data: { ...data, added, removed, tags },
      });
      return n;
    });
  }

  /** Nodes carrying every one of `tags` (all nodes when none is given). */
  withTags(tags: readonly string[]): NodeRecord[] {
    const [first, ...rest] = tags;
    const nodes = first ? this.repos.nodes.listByTag(first) : this.repos.nodes.list();
    return nodes.filter((n) => rest.every((t) => n.tags.includes(t)));
  }

  /** Through the lifecycle's guards (master/nodes/lifecycle.ts, the only writer of a node's state). */
  transition(node: NodeRecord, to: NodeState, reason: string | null, actor: string | null): NodeRecord {
    return transition(this.repos, node.mac, { to, reason, actor });
  }

  /**
   * Deletes a node and everything kept about it: its power config (with the sealed BMC password), its
   * agent credential and its diskless assignment go in the same transaction, each journaled so a backup
   * master drops them too (the foreign keys' ON DELETE CASCADE would remove them here without a journal
   * row). Its metric samples, per master and not journaled, are forgotten after the commit. The boot
   * timeline is kept: it is per MAC, known node or not, and says why the machine boots as unknown now.
   */
  delete(node: NodeRecord, actor: string | null): void {
    const { repos } = this;
    repos.store.write((journal) => {
      if (repos.powerConfigs.get(node.mac)) repos.powerConfigs.deleteIn(journal, node.mac);
      if (repos.nodeCredentials.get(node.mac)) repos.nodeCredentials.deleteIn(journal, node.mac);
      if (repos.sharedRoots.assignment(node.mac)) repos.sharedRoots.unassignIn(journal, node.mac);
      repos.nodes.deleteIn(journal, node.mac);
      repos.events.appendIn(journal, {
        nodeMac: node.mac,
        kind: 'node.deleted',
        message: `${node.name} (${node.mac}) deleted`,
        actor,
      });
    });
    repos.metrics.forget(node.mac);
  }
}
