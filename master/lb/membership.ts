/**
 * Who serves a service, from the inventory alone: a node belongs while it runs an OS (`deployed`, or
 * `diskless` from the shared root), has an address, and carries the service's role or tag (or is listed
 * by name/MAC). Retiring, failed or re-deploying nodes fall out on the next sync. Pure: nodes in, servers out.
 */
import type { NodeRecord, NodeState } from '../store/nodes.js';
import type { ServiceSpec } from './service-spec.js';

export const SERVING_STATES: readonly NodeState[] = ['deployed', 'diskless'];

export interface BackendServer {
  /** HAProxy server name: the node's name (a DNS label, unique). */
  name: string;
  mac: string;
  address: string;
  port: number;
}

export function membersOf(spec: ServiceSpec, nodes: readonly NodeRecord[]): BackendServer[] {
  const listed = spec.nodes ? new Set(spec.nodes.map((n) => n.toLowerCase())) : undefined;
  return nodes
    .filter((n) => SERVING_STATES.includes(n.state) && n.ip)
    .filter((n) =>
      listed
        ? listed.has(n.name) || listed.has(n.mac)
        : spec.tag !== undefined
          ? n.tags.includes(spec.tag)
          : n.role === spec.role,
    )
    .map((n) => ({ name: n.name, mac: n.mac, address: n.ip!, port: spec.backendPort }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}
