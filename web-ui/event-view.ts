import type { EventRecord } from '../master/store/events.js';
import type { NodeRecord } from '../master/store/nodes.js';
import { nodeHref } from './node-view.js';

/** An event as the console's tables show it: with the node's current name and a link, when it still exists. */
export interface EventRow {
  id: number;
  at: string;
  severity: string;
  kind: string;
  message: string;
  actor: string | null;
  nodeMac: string | null;
  node: { name: string; href: string } | null;
}

/** The nodes the events name, loaded by MAC (not the whole inventory: issue 19, 10 000 nodes). */
export function eventNodes(
  events: readonly EventRecord[],
  byMacs: (macs: string[]) => NodeRecord[],
): NodeRecord[] {
  return byMacs([...new Set(events.flatMap((e) => (e.nodeMac ? [e.nodeMac] : [])))]);
}

export function eventRows(events: readonly EventRecord[], nodes: readonly NodeRecord[]): EventRow[] {
  const byMac = new Map(nodes.map((n) => [n.mac, n]));
  return events.map((e) => {
    const node = e.nodeMac ? byMac.get(e.nodeMac) : undefined;
    return {
      id: e.id,
      at: e.at,
      severity: e.severity,
      kind: e.kind,
      message: e.message,
      actor: e.actor,
      nodeMac: e.nodeMac,
      node: node ? { name: node.name, href: nodeHref(node.mac) } : null,
    };
  });
}
