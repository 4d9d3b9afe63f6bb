/**
 * The `dhcp6` config slice (off by default): stateful DHCPv6 (RFC 8415) on the provisioning interface,
 * and router advertisements for its prefix sent by radvd, which Corral configures and supervises.
 */
import { z } from 'zod';
import { parseIPv6, parsePrefix6 } from './address.js';
import { UEFI_IPXE_BUILDS } from './uefi-loader.js';

const ipv6 = z
  .string()
  .refine((s) => parseIPv6(s) !== null, { message: 'expected an IPv6 address like fd00:55::1' });

export const Dhcp6ConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The provisioning interface; defaults to the top-level `interface`. */
    interface: z.string().min(1).optional(),
    /** The master's address on that link: boot URLs name it. Required when enabled. */
    address: ipv6.optional(),
    /** The on-link prefix, e.g. fd00:55::/64; advertised by radvd, addresses come from `range` inside it. */
    prefix: z
      .string()
      .refine((s) => parsePrefix6(s) !== null, { message: 'expected a prefix like fd00:55::/64' })
      .default('fd00:55::/64'),
    /** FIRST-LAST addresses leased as IA_NA (RFC 8415 §21.4), inside `prefix`. */
    range: z.string().optional(),
    /** Valid lifetime of a lease; the preferred lifetime is the same, T1 0.5 and T2 0.8 of it (§21.4). */
    leaseSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .default(3600),
    dns: z.array(ipv6).default([]),
    /** Answer a SOLICIT carrying Rapid Commit (option 14) with a REPLY at once (RFC 8415 §18.3.1). */
    rapidCommit: z.boolean().default(true),
    /** 547 unless testing. */
    port: z.number().int().min(1).max(65535).default(547),
    /**
     * The iPXE build for x64 UEFI clients over IPv6 in place of Debian's ipxe.efi (uefi-loader.ts says
     * why): snponly.efi leaves the firmware's network driver in place, so `exit 1` returns to the firmware.
     */
    uefiIpxe: z.enum(UEFI_IPXE_BUILDS).default('snponly.efi'),
    /** Base URL of the master's HTTP boot routes over IPv6; default http://[address]:http.port. */
    httpBaseUrl: z.string().url().optional(),
    routerAdvertisements: z
      .object({
        /** Run radvd for the prefix (with the Managed flag, so clients use DHCPv6 for addresses). */
        enabled: z.boolean().default(true),
        radvdBin: z.string().min(1).default('radvd'),
        /** 0: the master is not a default router (the provisioning network needs none). */
        routerLifetimeSeconds: z.number().int().min(0).max(9000).default(0),
      })
      .strict()
      .default({ enabled: true, radvdBin: 'radvd', routerLifetimeSeconds: 0 }),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.enabled) return;
    if (!c.address)
      ctx.addIssue({ code: 'custom', path: ['address'], message: 'is required when dhcp6 is enabled' });
    if (!c.range)
      ctx.addIssue({ code: 'custom', path: ['range'], message: 'is required when dhcp6 is enabled' });
    else if (!parseRange6(c.range, c.prefix))
      ctx.addIssue({
        code: 'custom',
        path: ['range'],
        message: `expected FIRST-LAST, both inside ${c.prefix}, first not above last`,
      });
  });

export type Dhcp6Config = z.infer<typeof Dhcp6ConfigSchema>;
export const DHCP6_CONFIG_DEFAULTS = {
  enabled: false,
  prefix: 'fd00:55::/64',
  leaseSeconds: 3600,
  dns: [],
  rapidCommit: true,
  port: 547,
  uefiIpxe: 'snponly.efi' as const,
  routerAdvertisements: { enabled: true, radvdBin: 'radvd', routerLifetimeSeconds: 0 },
};

/** "fd00:55::100-fd00:55::1ff" inside `prefix` → [first, last], or null. */
export function parseRange6(range: string, prefix: string): [bigint, bigint] | null {
  const [a, b, ...rest] = range.split('-');
  const p = parsePrefix6(prefix);
  if (rest.length || a === undefined || b === undefined || !p) return null;
  const first = parseIPv6(a);
  const last = parseIPv6(b);
  if (first === null || last === null || first > last) return null;
  const mask = p.bits === 0 ? 0n : (((1n << 128n) - 1n) << BigInt(128 - p.bits)) & ((1n << 128n) - 1n);
  if ((first & mask) !== p.network || (last & mask) !== p.network) return null;
  return [first, last];
}
