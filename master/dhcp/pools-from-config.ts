/**
 * The DHCP server's pools from the config: the local pool (dhcp.range/subnet) first, then the pools of
 * relayed subnets, which the server picks by the relay's giaddr (RFC 2131 section 4.3.1).
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

function toSpec(p: ConfiguredPool): PoolSpec {
  const [rangeStart, rangeEnd] = p.range.split('-') as [string, string];
  return {
    subnet: p.subnet,
    rangeStart,
    rangeEnd,
    ...(p.router ? { router: p.router } : {}),
    dns: [...p.dns],
    ...(p.domain ? { domain: p.domain } : {}),
  };
}

export function dhcpPools(dhcp: DhcpConfig): PoolSpec[] {
  const pools: PoolSpec[] = [];
  if (dhcp.range && dhcp.subnet) {
    pools.push(
      toSpec({
        subnet: dhcp.subnet,
        range: dhcp.range,
        router: dhcp.router,
        dns: dhcp.dns,
        domain: dhcp.domain,
      }),
    );
  }
  for (const p of dhcp.relayPools) pools.push(toSpec(p));
  return pools;
}
