/**
 * IPv4 address arithmetic and address pools for the DHCP server. Pure: the config layer calls
 * `parseRange` and `validatePools` once at start-up and passes the frozen result on (STYLE habit 5).
 */
import { CorralError } from '../util/errors.js';
import { encodeDomainSearch } from './domain-search.js';

/** Dotted quad → unsigned 32-bit integer, or null if `text` is not exactly four decimal octets. */
export function parseIp(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIp(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

function requireIp(text: string, what: string): number {
  const value = parseIp(text);
  if (value === null) throw new CorralError('CONFIG_INVALID', `${what}: "${text}" is not an IPv4 address`);
  return value;
}

export function prefixToMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Subnet {
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
}

/** "10.0.0.0/24" → network, mask, broadcast. The address part must be the network address itself. */
export function parseCidr(text: string): Subnet {
  const [addr, bits, ...rest] = text.split('/');
  const prefix = Number(bits);
  if (addr === undefined || bits === undefined || rest.length > 0 || !/^\d{1,2}$/.test(bits) || prefix > 32) {
    throw new CorralError('CONFIG_INVALID', `subnet: "${text}" is not in CIDR form like 10.0.0.0/24`);
  }
  const ip = requireIp(addr, 'subnet');
  const mask = prefixToMask(prefix);
  const network = (ip & mask) >>> 0;
  if (network !== ip) {
    throw new CorralError(
      'CONFIG_INVALID',
      `subnet: "${text}" has host bits set; did you mean ${formatIp(network)}/${prefix}?`,
    );
  }
  return { network, prefix, mask, broadcast: (network | (~mask >>> 0)) >>> 0 };
}

export function inSubnet(ip: number, subnet: Subnet): boolean {
  return (ip & subnet.mask) >>> 0 === subnet.network;
}

/** `--dhcp-range A-B` → both ends as text; A must not be above B. */
export function parseRange(text: string): { start: string; end: string } {
  const [start, end, ...rest] = text.split('-').map((s) => s.trim());
  if (start === undefined || end === undefined || rest.length > 0) {
    throw new CorralError('CONFIG_INVALID', `dhcp range: "${text}" is not in the form 10.0.0.100-10.0.0.200`);
  }
  const a = requireIp(start, 'dhcp range start');
  const b = requireIp(end, 'dhcp range end');
  if (a > b) throw new CorralError('CONFIG_INVALID', `dhcp range: ${start} is above ${end}`);
  return { start, end };
}

/** One pool as the operator writes it. The first pool is the master's own segment; others serve relays. */
export interface PoolSpec {
  subnet: string;
  rangeStart: string;
  rangeEnd: string;
  router?: string;
  dns?: string[];
  domain?: string;
  /** Domain search list (option 119, RFC 3397). */
  search?: string[];
}

/** A validated pool: numbers for arithmetic, the original text for replies and logs. */
export interface Pool extends Subnet {
  readonly subnet: string;
  readonly rangeStart: number;
  readonly rangeEnd: number;
  readonly router: string | null;
  readonly dns: readonly string[];
  readonly domain: string | null;
  /** Option 119's data, encoded once (RFC 3397), or null without a search list. */
  readonly searchOption: Buffer | null;
  /** Addresses inside the range never handed out: the server's own, the router's, the DNS servers'. */
  readonly excluded: ReadonlySet<number>;
}

/**
 * The largest range one pool may span. The allocator scans a range linearly (bounded by this) and keeps
 * one map entry per lease; 65 536 addresses is a /16, more than a provisioning network needs.
 */
export const MAX_POOL_SIZE = 65536;

/**
 * Checks every pool (range inside its subnet, not the network or broadcast address, router inside the
 * subnet, no two pools overlapping) and returns them frozen. Throws CONFIG_INVALID naming the pool.
 */
export function validatePools(specs: readonly PoolSpec[], serverAddress: string): readonly Pool[] {
  if (specs.length === 0) throw new CorralError('CONFIG_INVALID', 'dhcp: at least one pool is needed');
  const server = requireIp(serverAddress, 'dhcp server address');
  const pools: Pool[] = [];
  specs.forEach((spec, i) => {
    const where = `dhcp pool ${i + 1} (${spec.subnet})`;
    const subnet = parseCidr(spec.subnet);
    if (subnet.prefix > 30)
      throw new CorralError('CONFIG_INVALID', `${where}: a /${subnet.prefix} has no room for clients`);
    const start = requireIp(spec.rangeStart, `${where} range start`);
    const end = requireIp(spec.rangeEnd, `${where} range end`);
    if (start > end) throw new CorralError('CONFIG_INVALID', `${where}: range start is above range end`);
    if (!inSubnet(start, subnet) || !inSubnet(end, subnet)) {
      throw new CorralError(
        'CONFIG_INVALID',
        `${where}: range ${spec.rangeStart}-${spec.rangeEnd} is not inside ${spec.subnet}`,
      );
    }
    if (start === subnet.network || end === subnet.broadcast) {
      throw new CorralError(
        'CONFIG_INVALID',
        `${where}: the range must not include the network or broadcast address`,
      );
    }
    if (end - start + 1 > MAX_POOL_SIZE) {
      throw new CorralError(
        'CONFIG_INVALID',
        `${where}: the range holds more than ${MAX_POOL_SIZE} addresses; split it`,
      );
    }
    const excluded = new Set<number>([server]);
    let router: string | null = null;
    if (spec.router !== undefined) {
      const r = requireIp(spec.router, `${where} router`);
      if (!inSubnet(r, subnet))
        throw new CorralError('CONFIG_INVALID', `${where}: router ${spec.router} is outside the subnet`);
      excluded.add(r);
      router = spec.router;
    }
    const dns = (spec.dns ?? []).map((d) => {
      excluded.add(requireIp(d, `${where} dns server`));
      return d;
    });
    for (const other of pools) {
      if (inSubnet(subnet.network, other) || inSubnet(other.network, subnet)) {
        throw new CorralError('CONFIG_INVALID', `${where}: overlaps pool ${other.subnet}`);
      }
    }
    pools.push(
      Object.freeze({
        ...subnet,
        subnet: spec.subnet,
        rangeStart: start,
        rangeEnd: end,
        router,
        dns: Object.freeze(dns),
        domain: spec.domain ?? null,
        searchOption: searchOption(spec.search, where),
        excluded,
      }),
    );
  });
  return Object.freeze(pools);
}

/** The pool whose subnet holds `ip` (a relay's giaddr, a client's ciaddr), if any. */
export function poolContaining(pools: readonly Pool[], ip: number): Pool | undefined {
  return pools.find((p) => inSubnet(ip, p));
}

export function inRange(pool: Pool, ip: number): boolean {
  return ip >= pool.rangeStart && ip <= pool.rangeEnd;
}

function searchOption(search: readonly string[] | undefined, where: string): Buffer | null {
  if (!search?.length) return null;
  try {
    return encodeDomainSearch(search);
  } catch (err) {
    throw new CorralError('CONFIG_INVALID', `${where}: search domain ${(err as Error).message} is not valid`);
  }
}
