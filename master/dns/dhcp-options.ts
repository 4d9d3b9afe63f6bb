/**
 * What DHCP tells nodes about the cluster zone (the dhcp feature's hook): the DNS server's address and
 * the zone as domain name and search list, only while dns.enabled. From the config alone, so DHCP (which
 * starts before this feature) needs nothing at run time from it.
 */
import { dnsServerAddress, zoneDomain, type DnsConfig } from './config.js';

/** DHCPv6: knot also listens on the master's dhcp6.address when both are on (dns-service.ts). */
export function clusterDns6(config: {
  dns: Pick<DnsConfig, 'enabled' | 'zone'>;
  dhcp6: { enabled: boolean; address?: string | undefined };
}): { server: string; domain: string } | undefined {
  const { dns, dhcp6 } = config;
  if (!dns.enabled || !dhcp6.enabled || !dhcp6.address) return undefined;
  return { server: dhcp6.address, domain: zoneDomain(dns.zone) };
}

export function clusterDns(config: {
  dns: Pick<DnsConfig, 'enabled' | 'listen' | 'zone'>;
  address: string;
}): { server: string; domain: string } | undefined {
  const { dns } = config;
  if (!dns.enabled) return undefined;
  return { server: dnsServerAddress(dns, config.address), domain: zoneDomain(dns.zone) };
}
