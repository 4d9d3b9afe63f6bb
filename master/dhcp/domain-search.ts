/**
 * DHCP option 119, Domain Search (RFC 3397): the search list as a sequence of domain names in DNS wire
 * format (RFC 1035 §3.1: length-prefixed labels ending in a zero octet), compressed with RFC 1035 §4.1.4
 * pointers whose offsets count from the start of the option data (RFC 3397 §2). Longer than 255 bytes,
 * the codec splits it into several option instances (RFC 3396), which clients concatenate again.
 * DHCPv6's option 24 (RFC 3646 §4) is the same list without compression (RFC 8415 §10).
 */

export const OPT_DOMAIN_SEARCH = 119;

/** Encodes `names` (with or without the trailing dot); throws RangeError for a label no name may hold. */
export function encodeDomainSearch(names: readonly string[], compress = true): Buffer {
  const parts: Buffer[] = [];
  /** Offsets of the suffixes written so far ("b.c", "c"), for pointers. */
  const written = new Map<string, number>();
  let offset = 0;
  for (const name of names) {
    const labels = name.replace(/\.$/, '').toLowerCase().split('.').filter(Boolean);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.');
      const at = compress ? written.get(suffix) : undefined;
      if (at !== undefined) {
        // A pointer is two octets, the top two bits set (RFC 1035 §4.1.4), and ends the name.
        parts.push(Buffer.from([0xc0 | (at >> 8), at & 0xff]));
        offset += 2;
        break;
      }
      // Pointers hold 14 bits: a suffix further in cannot be pointed at, and is simply not remembered.
      if (offset < 0x4000) written.set(suffix, offset);
      const label = Buffer.from(labels[i]!, 'ascii');
      if (label.length < 1 || label.length > 63) throw new RangeError(`label '${labels[i]}' of '${name}'`);
      parts.push(Buffer.from([label.length]), label);
      offset += 1 + label.length;
      if (i === labels.length - 1) {
        parts.push(Buffer.from([0]));
        offset += 1;
      }
    }
    if (!labels.length) {
      parts.push(Buffer.from([0]));
      offset += 1;
    }
  }
  return Buffer.concat(parts);
}
