/**
 * The `dhcp` section of the master config (README "Configuration reference", docs/dhcp.md). Defined here,
 * composed into ConfigSchema by one line in master/config.ts.
 */
import { z } from 'zod';
import type { DeepReadonly } from '../util/deep-readonly.js';
import { cidr, ipv4, mac, range } from '../util/net-schema.js';

const pool = z
  .object({
    subnet: cidr,
    range,
    router: ipv4.optional(),
    dns: z.array(ipv4).default([]),
    domain: z.string().optional(),
  })
  .strict();

export const DhcpConfigSchema = z
  .object({
    mode: z.enum(['off', 'server', 'proxy']).default('off'),
    range: range.optional(),
    subnet: cidr.optional(),
    router: ipv4.optional(),
    dns: z.array(ipv4).default([]),
    domain: z.string().optional(),
    leaseSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .default(3600),
    port: z.number().int().min(1).max(65535).default(67),
    /** Pools for other subnets reached through DHCP relays (chosen by giaddr). */
    relayPools: z.array(pool).default([]),
    reservations: z.array(z.object({ mac, ip: ipv4, hostname: z.string().optional() }).strict()).default([]),
  })
  .strict()
  .default({ mode: 'off', dns: [], leaseSeconds: 3600, port: 67, relayPools: [], reservations: [] });
export type DhcpConfig = DeepReadonly<z.infer<typeof DhcpConfigSchema>>;
