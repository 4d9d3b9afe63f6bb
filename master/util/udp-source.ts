/**
 * Sources no real DHCP or TFTP peer can have. A datagram from one of them is dropped before parsing:
 * there is nobody to answer (a reply to port 0 cannot even be sent: Node's dgram throws, and the port is
 * reserved, RFC 6335 section 6), and answering a broadcast or multicast "source" would turn the master
 * into an amplifier onto the whole segment.
 *
 * Linux already drops most martian source addresses before delivery (multicast and limited-broadcast
 * sources, and 0.0.0.0 except toward a broadcast destination, which is how DHCP clients without an
 * address talk); the address checks here keep that guarantee whatever the kernel or its settings.
 */

/** Why a datagram's source is impossible, or null when it is a plausible peer. */
export function impossibleSource(
  address: string,
  port: number,
  /** DHCP clients without an address send from 0.0.0.0 (RFC 2131 section 4.1); TFTP peers never do. */
  allowUnspecified: boolean,
): string | null {
  // RFC 768: the source port is optional and 0 means "none": there is no port to reply to.
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return `source port ${port}`;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(address);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    if (a === 255 && b === 255 && c === 255 && d === 255) return 'broadcast source address';
    // RFC 1122 section 3.2.1.3: a host must not send with a class D (multicast) or class E source.
    if (a >= 224) return a < 240 ? 'multicast source address' : 'reserved (class E) source address';
    if (a === 0 && b === 0 && c === 0 && d === 0)
      return allowUnspecified ? null : 'unspecified source address';
    // RFC 1122 section 3.2.1.3 (b): "this network" sources are only legal during start-up, never here.
    if (a === 0) return 'source address in 0.0.0.0/8';
    return null;
  }
  const v6 = address.toLowerCase();
  // RFC 4291 section 2.7: multicast addresses must not be used as source addresses.
  if (v6.startsWith('ff')) return 'multicast source address';
  if (v6 === '::') return allowUnspecified ? null : 'unspecified source address';
  return null;
}
