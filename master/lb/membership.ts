/**
 * Who serves a service, from the inventory alone: a node belongs while it runs an OS (`deployed`, or
 * `diskless` from the shared root), has an address, and carries the service's role or tag (or is listed
 * by name/MAC). Retiring, failed or re-deploying nodes fall out on the next sync. A `members` service lists
 * instances instead (node and port), several of them on one node maybe: each is a server of its own, on
 * the same conditions for its node. Pure: nodes in, servers out.
 */
import type { NodeRecord, NodeState } from '../store/nodes.js';
import type { ServiceSpec } from './service-spec.js';

export const SERVING_STATES: readonly NodeState[] = ['deployed', 'diskless'];

export interface BackendServer {
  /**
   * HAProxy server name, unique in the backend: the node's name (a DNS label, unique), or for a `members`
   * service `<node>-p<port>` (one node, several ports).
   */
  name: string;
  /** The node's name. */
  node: string;
  mac: string;
  address: string;
  port: number;
}

export function membersOf(spec: ServiceSpec, nodes: readonly NodeRecord[]): BackendServer[] {
  const serving = nodes.filter((n) => SERVING_STATES.includes(n.state) && n.ip);
  const servers = spec.members
    ? instancesOn(spec.members, serving)
    : serving.filter((n) => nodeServes(spec, n)).map((n) => server(n, n.name, spec.backendPort));
  return servers.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

function nodeServes(spec: ServiceSpec, n: NodeRecord): boolean {
  if (spec.nodes) return spec.nodes.some((id) => isNode(n, id));
  return spec.tag !== undefined ? n.tags.includes(spec.tag) : n.role === spec.role;
}

function instancesOn(members: NonNullable<ServiceSpec['members']>, serving: NodeRecord[]): BackendServer[] {
  const byName = new Map<string, BackendServer>();
  for (const m of members) {
    const n = serving.find((x) => isNode(x, m.node));
    // A node listed by name and by MAC with the same port is one instance.
    if (n) byName.set(`${n.name}-p${m.port}`, server(n, `${n.name}-p${m.port}`, m.port));
  }
  return [...byName.values()];
}

function isNode(n: NodeRecord, id: string): boolean {
  const key = id.toLowerCase();
  return n.name === key || n.mac === key;
}

function server(n: NodeRecord, name: string, port: number): BackendServer {
  return { name, node: n.name, mac: n.mac, address: n.ip!, port };
}
