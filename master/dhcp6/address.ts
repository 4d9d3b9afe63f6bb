/**
 * IPv6 addresses as 128-bit integers (BigInt), for ranges and prefixes, and their RFC 5952 text form.
 * Pure; nothing here touches the network.
 */
import { isIPv6 } from 'node:net';

const FULL = (1n << 128n) - 1n;

/** The address as a 128-bit integer, or null when `text` is not an IPv6 address (no zone ids here). */
export function parseIPv6(text: string): bigint | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  let s = text;
  // A dotted IPv4 tail (::ffff:10.0.0.1) is two 16-bit groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return null;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (≥ 2) of zero groups as "::", the first on a tie. */
export function formatIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function addressFromBytes(buf: Buffer, offset = 0): bigint {
  let v = 0n;
  for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(buf[offset + i] ?? 0);
  return v;
}

export function addressToBytes(value: bigint): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

export interface Prefix6 {
  network: bigint;
  bits: number;
  text: string;
}

/** "fd00:55::/64" → the prefix, or null. The network part is masked (host bits set are an error). */
export function parsePrefix6(text: string): Prefix6 | null {
  const [addr, bits, ...rest] = text.split('/');
  if (rest.length || addr === undefined || !/^\d{1,3}$/.test(bits ?? '')) return null;
  const n = Number(bits);
  const a = parseIPv6(addr);
  if (a === null || n > 128) return null;
  const mask = n === 0 ? 0n : (FULL << BigInt(128 - n)) & FULL;
  if ((a & mask) !== a) return null;
  return { network: a, bits: n, text: `${formatIPv6(a)}/${n}` };
}

export function inPrefix(address: bigint, prefix: Prefix6): boolean {
  const mask = prefix.bits === 0 ? 0n : (FULL << BigInt(128 - prefix.bits)) & FULL;
  return (address & mask) === prefix.network;
}
