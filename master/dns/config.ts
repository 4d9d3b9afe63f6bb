/**
 * The `dns` section of the master config (docs/dns-sd.md): an authoritative zone for the cluster, served
 * by knot, with DNS-SD records (RFC 6763) for the load-balanced services. Off by default: it binds port 53
 * on the provisioning address, which an existing resolver on the master may hold.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';
import { ipv4 } from '../util/net-schema.js';

/**
 * A zone apex as written in zone files: labels of letters, digits and hyphens (RFC 1123 §2.1), each at
 * most 63 octets (RFC 1035 §2.3.4). A trailing dot is added when missing, and the name is lower-cased.
 */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const zoneName = z
  .string()
  .transform((s) => (s.endsWith('.') ? s : `${s}.`).toLowerCase())
  .refine(
    (s) =>
      s.length <= 254 &&
      s
        .slice(0, -1)
        .split('.')
        .every((l) => LABEL.test(l)),
    {
      message: 'expected a domain name like cluster. (labels of letters, digits and -; 253 octets at most)',
    },
  );

export const DnsConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The zone Corral owns; nodes are `<name>.<zone>`, services `_<svc>._tcp.<zone>`. */
    zone: zoneName.default('cluster.'),
    /** Addresses knot listens on; default the master's provisioning `address`. */
    listen: z.array(ipv4).min(1).max(16).optional(),
    /** 53 unless testing. */
    port: z.number().int().min(1).max(65535).default(53),
    /**
     * TTL of every record. Short: an instance that goes DOWN should leave resolvers' caches soon
     * (RFC 6763 §10 suggests 120 s for SRV; health changes want less).
     */
    ttl: z.number().int().min(1).max(86_400).default(10),
    knotdBin: z.string().min(1).default('knotd'),
    knotcBin: z.string().min(1).default('knotc'),
    /** How often the load balancer's view and the inventory are compared with the served zone. */
    pollMs: z.number().int().min(100).max(60_000).default(1000),
    /** At most one zone reload per this many ms (bursts of health changes are batched). */
    minReloadMs: z.number().int().min(0).max(60_000).default(1000),
  })
  .strict()
  .default({
    enabled: false,
    zone: 'cluster.',
    port: 53,
    ttl: 10,
    knotdBin: 'knotd',
    knotcBin: 'knotc',
    pollMs: 1000,
    minReloadMs: 1000,
  });
export type DnsConfig = DeepReadonly<z.infer<typeof DnsConfigSchema>>;

/** Where nodes send queries: the first listen address, else the master's own. */
export function dnsServerAddress(dns: Pick<DnsConfig, 'listen'>, address: string): string {
  return dns.listen?.[0] ?? address;
}

/** The zone without its trailing dot: the DHCP domain name and search entry. */
export function zoneDomain(zone: string): string {
  return zone.replace(/\.$/, '');
}
