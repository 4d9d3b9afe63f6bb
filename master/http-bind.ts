/**
 * The `http.bind` setting (issue 18, dual-stack): the addresses the master's HTTP and TFTP listeners bind,
 * IPv4 and IPv6 literals, one or a list. And the URL a node is given back: in the address family its
 * request came in on, IPv6 literals bracketed as RFC 3986 §3.2.2 requires.
 */
import { isIP, isIPv6 } from 'node:net';
import { z } from 'zod';
import { CorralError } from './util/errors.js';

const bindAddress = z.string().refine((s) => isIP(s) !== 0 && !s.includes('%'), {
  message: 'expected an IPv4 or IPv6 address like 0.0.0.0, 10.0.0.1, :: or fd00:55::1 (no zone)',
});

/** One address or a list; normalised to a list by `resolveHttpBind`. */
export const HttpBindSchema = z.union([
  bindAddress,
  z.array(bindAddress).min(1, 'must list at least one address'),
]);

/**
 * The addresses to listen on. Not set: `0.0.0.0`, plus `::` when DHCPv6 is on, so a node booted over
 * IPv6 reaches the master without further settings. Set: as given, and then a DHCPv6 master must listen
 * where its option 59 URLs point (`::` or dhcp6.address), else every IPv6 node would stop at its first
 * HTTP request: that is refused at start-up rather than discovered at the rack.
 */
export function resolveHttpBind(
  bind: string | readonly string[] | undefined,
  dhcp6: { enabled: boolean; address?: string | undefined },
): string[] {
  if (bind === undefined) return dhcp6.enabled ? ['0.0.0.0', '::'] : ['0.0.0.0'];
  const list = typeof bind === 'string' ? [bind] : [...bind];
  const seen = new Set<string>();
  for (const a of list) {
    const key = canonical(a);
    if (seen.has(key))
      throw new CorralError('CONFIG_INVALID', `config error: http.bind: ${a} is listed twice`);
    seen.add(key);
  }
  if (dhcp6.enabled && dhcp6.address) {
    const want = canonical(dhcp6.address);
    if (!list.some((a) => a === '::' || canonical(a) === want)) {
      throw new CorralError(
        'CONFIG_INVALID',
        `config error: http.bind: dhcp6 is enabled but no listener is on IPv6 (${dhcp6.address} or ::); ` +
          `add "::" or "${dhcp6.address}" to http.bind`,
      );
    }
  }
  return list;
}

/** Lower case, no leading zeros: so fd00::1 and FD00:0::1 count as the same address. */
function canonical(address: string): string {
  return isIPv6(address) ? new URL(`http://[${address}]/`).hostname : address;
}

/** An address as the host part of a URL: IPv6 literals in brackets (RFC 3986 §3.2.2). */
export function urlHost(address: string): string {
  return isIPv6(address) ? `[${address}]` : address;
}

/** Where a process on the master itself reaches the HTTP listener (keepalived's track script). */
export function localHttpHost(bind: readonly string[]): string {
  const first = bind[0] ?? '0.0.0.0';
  if (first === '0.0.0.0') return '127.0.0.1';
  if (first === '::') return '[::1]';
  return urlHost(first);
}

/** True when `bind` covers `address`: the wildcard of its family, or the address itself. */
export function bindCovers(bind: readonly string[], address: string): boolean {
  const wildcard = isIPv6(address) ? '::' : '0.0.0.0';
  return bind.some((b) => b === wildcard || b === address);
}

/**
 * The address a request arrived at, when it arrived over IPv6 proper: null for IPv4, including IPv4
 * carried on a dual-stack socket as ::ffff:a.b.c.d (RFC 4291 §2.5.5.2).
 */
export function ipv6Arrival(localAddress: string | undefined): string | null {
  if (!localAddress || !isIPv6(localAddress) || /^::ffff:\d/i.test(localAddress)) return null;
  return localAddress.replace(/%.*$/, '');
}

/**
 * The base URL a node is handed in a reply to its request: the configured one (IPv4, http.publicUrl)
 * when the request came over IPv4; over IPv6 dhcp6.httpBaseUrl, else the very address and port the
 * request reached, which the node has just proved it can reach. A link-local arrival (fe80::/10) is
 * useless in a URL without a zone, so it falls back to dhcp6.address.
 */
export function baseUrlFor(
  arrival: { localAddress?: string | undefined; localPort?: number | undefined },
  v4BaseUrl: string,
  dhcp6: { address?: string | undefined; httpBaseUrl?: string | undefined },
): string {
  const v6 = ipv6Arrival(arrival.localAddress);
  if (v6 === null) return v4BaseUrl;
  if (dhcp6.httpBaseUrl) return dhcp6.httpBaseUrl.replace(/\/+$/, '');
  const host = /^fe[89ab]/i.test(v6) && dhcp6.address ? dhcp6.address : v6;
  const port = arrival.localPort ?? 80;
  return port === 80 ? `http://[${host}]` : `http://[${host}]:${port}`;
}

/**
 * The master's base URL on the IPv6 provisioning link, where no HTTP arrival names it (the DHCPv6 boot
 * URL; network GRUB's config asked for over TFTP/IPv6): dhcp6.httpBaseUrl, else http://[dhcp6.address]:PORT.
 */
export function ipv6BaseUrl(
  dhcp6: { address?: string | undefined; httpBaseUrl?: string | undefined },
  httpPort: number,
): string {
  return (dhcp6.httpBaseUrl ?? `http://[${dhcp6.address ?? '::1'}]:${httpPort}`).replace(/\/+$/, '');
}

/** The family a node's request came in on, and the master's base URL in that family (baseUrlFor). */
export interface Arrival {
  baseUrl: string;
  ipv6: boolean;
}

export function arrivalOf(
  socket: { localAddress?: string | undefined; localPort?: number | undefined },
  v4BaseUrl: string,
  dhcp6: { address?: string | undefined; httpBaseUrl?: string | undefined },
): Arrival {
  return { baseUrl: baseUrlFor(socket, v4BaseUrl, dhcp6), ipv6: ipv6Arrival(socket.localAddress) !== null };
}
