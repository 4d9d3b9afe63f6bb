/**
 * The NoCloud datasource's other files, rendered per node (pure):
 *   meta-data       instance-id and local-hostname (cloud-init docs, "NoCloud"). The instance id is stable
 *                   for one node and one deployment, and changes with a redeploy, so cloud-init runs its
 *                   once-per-instance modules again on a fresh install and not on a reboot.
 *   network-config  version 2 (the netplan format cloud-init renders to networkd, ENI or netplan):
 *                   the NIC matched by MAC; a reserved address becomes static, with the gateway and DNS
 *                   of the pool it lies in; otherwise DHCP, identified by MAC as the installer and the
 *                   PXE ROM did, so Corral's DHCP server gives the same lease back. A node that asks
 *                   over IPv6 (it was booted and installed on an IPv6-only link, issue 18) gets DHCPv6.
 *   vendor-data     empty: everything Corral sets is in user-data's layers or the deploy itself.
 */
import { dumpYaml } from './yaml.js';

export function instanceId(mac: string, deploymentId: number | undefined): string {
  return `corral-${mac.replace(/:/g, '')}-${deploymentId === undefined ? 'none' : `d${deploymentId}`}`;
}

export function renderMetaData(m: { instanceId: string; hostname: string }): string {
  return dumpYaml({ 'instance-id': m.instanceId, 'local-hostname': m.hostname });
}

export interface PoolFacts {
  subnet: string;
  router?: string | undefined;
  dns: readonly string[];
  domain?: string | undefined;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Whether IPv4 `ip` lies in `cidr`. */
export function inSubnet(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!net || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(net) & mask) >>> 0;
}

/**
 * network-config v2 for the node's NIC `mac`. `reservedIp` (a DHCP reservation) is set statically when a
 * pool covers it; without one, or outside every pool, the NIC uses DHCP. `ipv6`: the node asked over
 * IPv6, so its link is the one it booted on with stateful DHCPv6 (RFC 8415): cloud-init's networkd
 * renderer makes that `DHCP=ipv6` with router advertisements accepted (their M flag starts DHCPv6 and
 * their on-link prefix is the route to the master). Reservations are IPv4 leases and do not apply.
 */
export function renderNetworkConfig(n: {
  mac: string;
  reservedIp?: string | undefined;
  pools: readonly PoolFacts[];
  ipv6?: boolean | undefined;
}): string {
  if (n.ipv6) {
    const nic = { match: { macaddress: n.mac }, dhcp4: false, dhcp6: true, 'accept-ra': true };
    return dumpYaml({ version: 2, ethernets: { corral0: nic } });
  }
  const pool = n.reservedIp ? n.pools.find((p) => inSubnet(n.reservedIp as string, p.subnet)) : undefined;
  const nic: Record<string, unknown> = { match: { macaddress: n.mac } };
  if (pool && n.reservedIp) {
    nic['dhcp4'] = false;
    nic['addresses'] = [`${n.reservedIp}/${pool.subnet.split('/')[1] ?? '32'}`];
    if (pool.router) nic['routes'] = [{ to: '0.0.0.0/0', via: pool.router }];
    if (pool.dns.length || pool.domain) {
      nic['nameservers'] = {
        ...(pool.dns.length ? { addresses: [...pool.dns] } : {}),
        ...(pool.domain ? { search: [pool.domain] } : {}),
      };
    }
  } else {
    nic['dhcp4'] = true;
    nic['dhcp-identifier'] = 'mac';
  }
  return dumpYaml({ version: 2, ethernets: { corral0: nic } });
}
