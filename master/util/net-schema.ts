/**
 * zod types for the network values the config sections share (addresses, subnets, ranges, MACs), and
 * the IPv4 arithmetic they check with. Each feature's config schema (master/<feature>/config.ts) builds
 * on these; master/config.ts composes the sections.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';

export const ipv4 = z
  .string()
  .refine((s) => isIPv4(s), { message: 'expected an IPv4 address like 10.0.0.1' });

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

export const cidr = z.string().refine(
  (s) => {
    const [ip, bits, ...rest] = s.split('/');
    return rest.length === 0 && !!ip && isIPv4(ip) && /^\d+$/.test(bits ?? '') && Number(bits) <= 32;
  },
  { message: 'expected a subnet in CIDR form like 10.0.0.0/24' },
);

export const range = z.string().refine(
  (s) => {
    const [a, b, ...rest] = s.split('-');
    return rest.length === 0 && !!a && !!b && isIPv4(a) && isIPv4(b) && ipToInt(a) <= ipToInt(b);
  },
  {
    message: 'expected FIRST-LAST with two IPv4 addresses, first not above last (e.g. 10.0.0.100-10.0.0.200)',
  },
);

export const mac = z
  .string()
  .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'expected a MAC like 52:54:00:12:34:56')
  .transform((s) => s.toLowerCase());
