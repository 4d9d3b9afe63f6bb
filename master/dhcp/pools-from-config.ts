/**
 * The DHCP server's pools from the config: the local pool (dhcp.range/subnet) first, then the pools of
 * relayed subnets, which the server picks by the relay's giaddr (RFC 2131 section 4.3.1). With the
 * cluster zone on (master/dns), every pool names Corral's DNS server first (option 6), the zone as the
 * domain name where the pool sets none (option 15) and as the search list (option 119, RFC 3397).
 */
import type { DhcpConfig } from './config.js';
import type { PoolSpec } from './pool.js';

interface ConfiguredPool {
  subnet: string;
  range: string;
  router?: string | undefined;
  dns: readonly string[];
  domain?: string | undefined;
}

/** Corral's own DNS server and zone (without the trailing dot), when dns.enabled. */
export interface ClusterDns {
  server: string;
  domain: string;
}

function toSpec(p: ConfiguredPool, cluster: ClusterDns | undefined): PoolSpec {
  const [rangeStart, rangeEnd] = p.range.split('-') as [string, string];
  const domain = p.domain ?? cluster?.domain;
  return {
    subnet: p.subnet,
    rangeStart,
    rangeEnd,
    ...(p.router ? { router: p.router } : {}),
    dns: cluster ? [cluster.server, ...p.dns.filter((d) => d !== cluster.server)] : [...p.dns],
    ...(domain ? { domain } : {}),
    ...(cluster ? { search: [cluster.domain] } : {}),
  };
}

export function dhcpPools(dhcp: DhcpConfig, cluster?: ClusterDns): PoolSpec[] {
  const pools: PoolSpec[] = [];
  if (dhcp.range && dhcp.subnet) {
    pools.push(
      toSpec(
        {
          subnet: dhcp.subnet,
          range: dhcp.range,
          router: dhcp.router,
          dns: dhcp.dns,
          domain: dhcp.domain,
        },
        cluster,
      ),
    );
  }
  for (const p of dhcp.relayPools) pools.push(toSpec(p, cluster));
  return pools;
}
