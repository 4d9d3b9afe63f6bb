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
    : serving.filter(nodeServes(spec)).map((n) => server(n, n.name, spec.backendPort));
  return servers.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** The node test of a role, tag or nodes service; a listed name or MAC is looked up once per call. */
function nodeServes(spec: ServiceSpec): (n: NodeRecord) => boolean {
  if (spec.nodes) {
    const listed = new Set(spec.nodes.map((id) => id.toLowerCase()));
    return (n) => listed.has(n.name) || listed.has(n.mac);
  }
  return (n) => (spec.tag !== undefined ? n.tags.includes(spec.tag) : n.role === spec.role);
}

function instancesOn(members: NonNullable<ServiceSpec['members']>, serving: NodeRecord[]): BackendServer[] {
  // Each serving node by its name and by its MAC (the first node to claim a key keeps it).
  const byId = new Map<string, NodeRecord>();
  for (const n of serving) for (const id of [n.name, n.mac]) if (!byId.has(id)) byId.set(id, n);
  const byName = new Map<string, BackendServer>();
  for (const m of members) {
    const n = byId.get(m.node.toLowerCase());
    // A node listed by name and by MAC with the same port is one instance.
    if (n) byName.set(`${n.name}-p${m.port}`, server(n, `${n.name}-p${m.port}`, m.port));
  }
  return [...byName.values()];
}

function server(n: NodeRecord, name: string, port: number): BackendServer {
  return { name, node: n.name, mac: n.mac, address: n.ip!, port };
}
