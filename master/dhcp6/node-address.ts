/**
 * The IPv6 address a node environment starts with (issue 18). Debian 12's busybox-static has no DHCPv6
 * client (no udhcpc6), and the provisioning prefix is announced without SLAAC (radvd.ts: AdvAutonomous
 * off). iPXE has just leased an address from Corral's DHCPv6 and fetched its boot script from it, so the
 * master hands that address on as `corral.ip=ADDRESS/BITS`, which /init configures as a static address.
 */
import { formatIPv6, inPrefix, parseIPv6, parsePrefix6 } from './address.js';

/**
 * `corral.ip=…` for a boot script requested from `remote` (the TCP peer) when that is an address inside
 * dhcp6.prefix, with the prefix's length so the master is on-link; null otherwise (IPv4, link-local,
 * another prefix, or dhcp6 off: the node then configures itself as before).
 */
export function ipv6NodeArg(
  remote: string | null | undefined,
  dhcp6: { enabled: boolean; prefix: string },
): string | null {
  if (!dhcp6.enabled || !remote) return null;
  const address = parseIPv6(remote);
  const prefix = parsePrefix6(dhcp6.prefix);
  if (address === null || !prefix || !inPrefix(address, prefix)) return null;
  return `corral.ip=${formatIPv6(address)}/${prefix.bits}`;
}
