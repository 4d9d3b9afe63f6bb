/**
 * Where a node is (issue 14): an address only Corral's own records give, never one a request claims.
 * In DHCP server mode that is the MAC's bound lease (the DHCP server also writes it into nodes.ip when it
 * binds, recordNodeIp below); otherwise the address of the node's first contact, changed only by an
 * operator (PATCH /api/v1/nodes/:id {ip}).
 */
import type { FrozenConfig } from '../config.js';
import type { LeaseStore } from '../store/leases.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Repos } from '../store/repos.js';

/** The MAC's bound, unexpired lease address (the most recently written if several), or undefined. */
export function leasedAddress(leases: LeaseStore, mac: string, now: number): string | undefined {
  let best: { ip: string; updatedAt: string } | undefined;
  for (const l of leases.byMac(mac)) {
    if (l.state !== 'bound' || l.expiresAt <= now) continue;
    if (!best || l.updatedAt > best.updatedAt) best = l;
  }
  return best?.ip;
}

/** The address a node's requests must come from to count as the node's, or null when none is known. */
export function authoritativeAddress(
  config: FrozenConfig,
  node: Pick<NodeRecord, 'ip'>,
  leaseIp: string | undefined,
): string | null {
  if (config.dhcp.mode === 'server' && leaseIp) return leaseIp;
  return node.ip;
}

/**
 * DHCP bound an address: remember it on the node (if the MAC is a known node), unless `keep` says the
 * node's recorded address stands.
 */
export function recordNodeIp(
  repos: Pick<Repos, 'store' | 'nodes'>,
  mac: string,
  ip: string,
  keep: (node: NodeRecord) => boolean = () => false,
): void {
  const node = repos.nodes.get(mac);
  if (!node || node.ip === ip || keep(node)) return;
  repos.store.write((journal) => repos.nodes.patchIn(journal, mac, { ip }));
}

/**
 * DHCPv6 bound an address (issue 18): remember it on the node, as DHCPv4 does in server mode. Firmware
 * leases a new address on each boot (OVMF's IAID changes, and it releases the lease when the OS takes
 * over), and the node environment and the installed system use the address they were given, so the
 * node's own address is the last one Corral bound to its MAC. Where DHCPv4 serves leases too, a node
 * recorded by its IPv4 lease keeps it (authoritativeAddress prefers that lease).
 */
export function recordNodeIp6(
  repos: Pick<Repos, 'store' | 'nodes'>,
  mac: string,
  ip: string,
  dhcp4Server: boolean,
): void {
  recordNodeIp(repos, mac, ip, (node) => dhcp4Server && node.ip !== null && !node.ip.includes(':'));
}
