/**
 * DHCP/BOOTP packet codec (RFC 2131 §2, RFC 2132, RFC 3396, RFC 4578, RFC 3004, RFC 3046, PXE 2.1).
 * Pure: a Buffer in, a typed value out, and back. It imports nothing but Buffer, trusts no length, and
 * never throws while decoding: every defect comes back as a typed `{ ok: false, error }` with the reason,
 * plus the xid and chaddr when they could be read, so the server logs one line and drops the datagram.
 *
 * Why our own codec instead of the `dhcp` npm package: see docs/decisions.md ("DHCP: own codec").
 */

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

/** Option 53 values (RFC 2132 §9.6). */
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;

export const MESSAGE_TYPE_NAMES: Readonly<Record<number, string>> = {
  [DHCPDISCOVER]: 'DHCPDISCOVER',
  [DHCPOFFER]: 'DHCPOFFER',
  [DHCPREQUEST]: 'DHCPREQUEST',
  [DHCPDECLINE]: 'DHCPDECLINE',
  [DHCPACK]: 'DHCPACK',
  [DHCPNAK]: 'DHCPNAK',
  [DHCPRELEASE]: 'DHCPRELEASE',
  [DHCPINFORM]: 'DHCPINFORM',
};

/** Option codes this codec types (RFC 2132 unless noted). */
export const OPT = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS_ID: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77, // RFC 3004
  RELAY_AGENT_INFO: 82, // RFC 3046
  CLIENT_ARCH: 93, // RFC 4578 §2.1
  CLIENT_NDI: 94, // RFC 4578 §2.2
  CLIENT_UUID: 97, // RFC 4578 §2.3
  END: 255,
} as const;

/**
 * Fixed BOOTP header: op(1) htype(1) hlen(1) hops(1) xid(4) secs(2) flags(2) ciaddr yiaddr siaddr giaddr
 * (4 × 4) chaddr(16) sname(64) file(128) = 236 bytes, then the 4-byte magic cookie (RFC 2131 §3):
 * nothing shorter than 240 bytes can be a DHCP message.
 */
export const FIXED_HEADER_BYTES = 236;
export const DHCP_MIN_BYTES = FIXED_HEADER_BYTES + 4;
export const MAGIC_COOKIE = 0x63825363;
/**
 * Largest datagram we look at. Clients send one Ethernet frame (≤ 1472 bytes of UDP payload); relays
 * may add option 82. 4096 leaves room for both and bounds the work one datagram can cause.
 */
export const DHCP_MAX_BYTES = 4096;
/**
 * RFC 1542 §2.1 keeps BOOTP's 300-byte minimum message size (236 + a 64-byte vendor area); some relays and
 * PXE ROMs drop anything shorter, so replies are zero-padded to it.
 */
export const BOOTP_MIN_REPLY_BYTES = 300;

const SNAME_OFFSET = 44;
const SNAME_BYTES = 64;
const FILE_OFFSET = 108;
const FILE_BYTES = 128;
const CHADDR_OFFSET = 28;
const CHADDR_BYTES = 16;
/** The broadcast bit of `flags` (RFC 2131 §2, figure 2). */
export const FLAG_BROADCAST = 0x8000;

/** RFC 4578 §2.2: Client Network Interface Identifier (UNDI version). */
export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}

/** Typed view of the options this server reads or writes; anything else is kept raw in `other`. */
export interface DhcpOptions {
  messageType?: number; // 53
  subnetMask?: string; // 1
  routers?: string[]; // 3
  dnsServers?: string[]; // 6
  hostname?: string; // 12
  domainName?: string; // 15
  /** 43, raw: its sub-options depend on the vendor (PXE: see encodePxeVendorOptions). */
  vendorSpecific?: Buffer;
  requestedIp?: string; // 50
  leaseTime?: number; // 51, seconds
  serverId?: string; // 54
  paramRequestList?: number[]; // 55
  message?: string; // 56
  maxMessageSize?: number; // 57
  renewalTime?: number; // 58 (T1)
  rebindingTime?: number; // 59 (T2)
  vendorClassId?: string; // 60
  clientId?: Buffer; // 61
  tftpServerName?: string; // 66
  bootfileName?: string; // 67
  /** 77: each user class; iPXE's bare "iPXE" string and RFC 3004 lists both land here. */
  userClass?: string[];
  /** 82, raw: RFC 3046 §2.2 says echo it back unchanged, so we never need its sub-options. */
  relayAgentInfo?: Buffer;
  clientArch?: number[]; // 93, RFC 4578 §2.1: one or more 16-bit architecture types
  clientNdi?: ClientNdi; // 94
  /** 97, raw: RFC 4578 says type 0 + 16-byte GUID; some ROMs get it wrong and PXE wants it echoed as sent. */
  clientUuid?: Buffer;
  /** Options not typed above, by code, after RFC 3396 concatenation. */
  other: Map<number, Buffer>;
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The first `hlen` bytes of chaddr as lower-case hex pairs joined by ':' (a MAC for Ethernet). */
  chaddr: string;
  /** Empty when the field carries options (option 52). */
  sname: string;
  /** Empty when the field carries options (option 52). */
  file: string;
  options: DhcpOptions;
}

export interface DecodeError {
  reason: string;
  /** Present when the fixed header could be read, so the log line can name the client. */
  xid?: number;
  chaddr?: string;
}

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; error: DecodeError };

export function emptyOptions(): DhcpOptions {
  return { other: new Map() };
}

function readIp(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

function hexPairs(buf: Buffer): string {
  const out: string[] = [];
  for (const b of buf) out.push(b.toString(16).padStart(2, '0'));
  return out.join(':');
}

/** A NUL-terminated field or option string; bytes kept as latin1 so nothing is lost on the way back. */
function readString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul === -1 ? buf.length : nul);
}

/**
 * RFC 3004 §4 user class: a list of [UC_Len][data] with UC_Len ≥ 1 covering the option exactly. iPXE and
 * some firmware send a bare string instead ("iPXE"); a bare string almost never parses as such a list
 * (its first byte would have to equal the length of what follows), so anything that does not is taken
 * as one raw class.
 */
export function decodeUserClass(data: Buffer): string[] {
  const classes: string[] = [];
  let i = 0;
  while (i < data.length) {
    const len = data[i] ?? 0;
    if (len === 0 || i + 1 + len > data.length) return [readString(data)];
    classes.push(data.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return classes;
}

type Raw = { code: number; data: Buffer };

/**
 * Walks one option area: pad (0) is one byte, end (255) stops, every other option is code, length,
 * value — and its claimed length must fit before `end`. `requireEnd` is set for the options field: RFC
 * 2131 §4.1 has every option area end with the end option; a missing one means the packet was cut.
 */
function walkOptions(
  buf: Buffer,
  start: number,
  end: number,
  area: string,
  out: Raw[],
  requireEnd: boolean,
): string | null {
  let i = start;
  // Each iteration consumes at least one byte, so the loop is bounded by the area's size.
  while (i < end) {
    const code = buf[i] ?? 0;
    if (code === OPT.PAD) {
      i += 1;
      continue;
    }
    if (code === OPT.END) return null;
    if (i + 1 >= end) return `option ${code} in ${area} at offset ${i} has no length byte`;
    const len = buf[i + 1] ?? 0;
    if (i + 2 + len > end) {
      return `option ${code} in ${area} at offset ${i} claims ${len} bytes but only ${end - i - 2} remain`;
    }
    out.push({ code, data: buf.subarray(i + 2, i + 2 + len) });
    i += 2 + len;
  }
  return requireEnd ? `${area} ends without the end option (255): truncated packet?` : null;
}

/** Per-option length rules (RFC 2132 and the RFCs named in OPT); null when the value is acceptable. */
function lengthProblem(code: number, len: number): string | null {
  const exactly = (n: number): string | null => (len === n ? null : `length ${len}, expected ${n}`);
  const atLeast = (n: number): string | null => (len >= n ? null : `length ${len}, expected at least ${n}`);
  const addresses = (): string | null =>
    len >= 4 && len % 4 === 0 ? null : `length ${len}, expected a multiple of 4`;
  switch (code) {
    case OPT.SUBNET_MASK:
    case OPT.REQUESTED_IP:
    case OPT.SERVER_ID:
    case OPT.LEASE_TIME:
    case OPT.RENEWAL_TIME:
    case OPT.REBINDING_TIME:
      return exactly(4);
    case OPT.ROUTER:
    case OPT.DNS:
      return addresses();
    case OPT.MESSAGE_TYPE:
      return exactly(1);
    case OPT.MAX_MESSAGE_SIZE:
      return exactly(2);
    case OPT.CLIENT_ID: // RFC 2132 §9.14: type + at least one byte
      return atLeast(2);
    case OPT.CLIENT_ARCH: // RFC 4578 §2.1: a list of 16-bit types
      return len >= 2 && len % 2 === 0 ? null : `length ${len}, expected a multiple of 2`;
    case OPT.CLIENT_NDI:
      return exactly(3);
    case OPT.HOSTNAME:
    case OPT.DOMAIN_NAME:
    case OPT.VENDOR_SPECIFIC:
    case OPT.PARAM_REQUEST_LIST:
    case OPT.MESSAGE:
    case OPT.VENDOR_CLASS_ID:
    case OPT.TFTP_SERVER_NAME:
    case OPT.BOOTFILE_NAME:
    case OPT.USER_CLASS:
    case OPT.RELAY_AGENT_INFO:
    case OPT.CLIENT_UUID:
      return atLeast(1);
    default:
      // Unknown options may be empty (RFC 4039's rapid commit is); only their bounds were checked.
      return null;
  }
}

function typeOptions(raw: Map<number, Buffer>): { options: DhcpOptions } | { reason: string } {
  const o = emptyOptions();
  for (const [code, data] of raw) {
    const problem = lengthProblem(code, data.length);
    if (problem) return { reason: `option ${code}: ${problem}` };
    switch (code) {
      case OPT.SUBNET_MASK:
        o.subnetMask = readIp(data, 0);
        break;
      case OPT.ROUTER:
      case OPT.DNS: {
        const list: string[] = [];
        for (let i = 0; i < data.length; i += 4) list.push(readIp(data, i));
        if (code === OPT.ROUTER) o.routers = list;
        else o.dnsServers = list;
        break;
      }
      case OPT.HOSTNAME:
        o.hostname = readString(data);
        break;
      case OPT.DOMAIN_NAME:
        o.domainName = readString(data);
        break;
      case OPT.VENDOR_SPECIFIC:
        o.vendorSpecific = Buffer.from(data);
        break;
      case OPT.REQUESTED_IP:
        o.requestedIp = readIp(data, 0);
        break;
      case OPT.LEASE_TIME:
        o.leaseTime = data.readUInt32BE(0);
        break;
      case OPT.MESSAGE_TYPE:
        o.messageType = data[0] ?? 0;
        break;
      case OPT.SERVER_ID:
        o.serverId = readIp(data, 0);
        break;
      case OPT.PARAM_REQUEST_LIST:
        o.paramRequestList = [...data];
        break;
      case OPT.MESSAGE:
        o.message = readString(data);
        break;
      case OPT.MAX_MESSAGE_SIZE:
        o.maxMessageSize = data.readUInt16BE(0);
        break;
      case OPT.RENEWAL_TIME:
        o.renewalTime = data.readUInt32BE(0);
        break;
      case OPT.REBINDING_TIME:
        o.rebindingTime = data.readUInt32BE(0);
        break;
      case OPT.VENDOR_CLASS_ID:
        o.vendorClassId = readString(data);
        break;
      case OPT.CLIENT_ID:
        o.clientId = Buffer.from(data);
        break;
      case OPT.TFTP_SERVER_NAME:
        o.tftpServerName = readString(data);
        break;
      case OPT.BOOTFILE_NAME:
        o.bootfileName = readString(data);
        break;
      case OPT.USER_CLASS:
        o.userClass = decodeUserClass(data);
        break;
      case OPT.RELAY_AGENT_INFO:
        o.relayAgentInfo = Buffer.from(data);
        break;
      case OPT.CLIENT_ARCH: {
        const arch: number[] = [];
        for (let i = 0; i < data.length; i += 2) arch.push(data.readUInt16BE(i));
        o.clientArch = arch;
        break;
      }
      case OPT.CLIENT_NDI:
        o.clientNdi = { type: data[0] ?? 0, major: data[1] ?? 0, minor: data[2] ?? 0 };
        break;
      case OPT.CLIENT_UUID:
        o.clientUuid = Buffer.from(data);
        break;
      default:
        o.other.set(code, Buffer.from(data));
    }
  }
  return { options: o };
}

/** Decodes one UDP payload. Never throws: a bad packet is `{ ok: false }` with the reason. */
export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < DHCP_MIN_BYTES) {
    return {
      ok: false,
      error: { reason: `truncated: ${buf.length} bytes, a DHCP message has at least ${DHCP_MIN_BYTES}` },
    };
  }
  const hlen = buf[2] ?? 0;
  const xid = buf.readUInt32BE(4);
  const chaddrBytes = buf.subarray(CHADDR_OFFSET, CHADDR_OFFSET + Math.min(hlen, CHADDR_BYTES));
  const who = { xid, chaddr: hexPairs(chaddrBytes) };
  if (buf.length > DHCP_MAX_BYTES) {
    return {
      ok: false,
      error: { reason: `oversized: ${buf.length} bytes, more than ${DHCP_MAX_BYTES}`, ...who },
    };
  }
  const op = buf[0] ?? 0;
  if (op !== BOOTREQUEST && op !== BOOTREPLY)
    return { ok: false, error: { reason: `op ${op} is neither BOOTREQUEST nor BOOTREPLY`, ...who } };
  if (hlen > CHADDR_BYTES)
    return { ok: false, error: { reason: `hlen ${hlen} exceeds the 16-byte chaddr field`, ...who } };
  const cookie = buf.readUInt32BE(FIXED_HEADER_BYTES);
  if (cookie !== MAGIC_COOKIE) {
    return {
      ok: false,
      error: {
        reason: `magic cookie 0x${cookie.toString(16)} is not 0x63825363 (plain BOOTP is not served)`,
        ...who,
      },
    };
  }

  const raw: Raw[] = [];
  const problem = walkOptions(buf, DHCP_MIN_BYTES, buf.length, 'options field', raw, true);
  if (problem) return { ok: false, error: { reason: problem, ...who } };

  // RFC 2132 §9.3: option 52 moves more options into `file` (1), `sname` (2) or both (3); RFC 2131 §4.1
  // orders the areas options, file, sname. The overloaded fields end at their own end option or edge.
  let overload = 0;
  const overloadIndex = raw.findIndex((r) => r.code === OPT.OVERLOAD);
  if (overloadIndex !== -1) {
    const data = raw[overloadIndex]?.data ?? Buffer.alloc(0);
    overload = data.length === 1 ? (data[0] ?? 0) : -1;
    if (overload < 1 || overload > 3) {
      return { ok: false, error: { reason: `option 52 (overload) must be one byte of 1, 2 or 3`, ...who } };
    }
    raw.splice(overloadIndex, 1);
    if (overload & 1) {
      const p = walkOptions(buf, FILE_OFFSET, FILE_OFFSET + FILE_BYTES, 'file field', raw, false);
      if (p) return { ok: false, error: { reason: p, ...who } };
    }
    if (overload & 2) {
      const p = walkOptions(buf, SNAME_OFFSET, SNAME_OFFSET + SNAME_BYTES, 'sname field', raw, false);
      if (p) return { ok: false, error: { reason: p, ...who } };
    }
    if (raw.some((r) => r.code === OPT.OVERLOAD)) {
      return { ok: false, error: { reason: 'option 52 (overload) appears more than once', ...who } };
    }
  }

  // RFC 3396 §5: several instances of one option are one value, concatenated in the order found.
  const merged = new Map<number, Buffer>();
  for (const r of raw) {
    const prev = merged.get(r.code);
    merged.set(r.code, prev ? Buffer.concat([prev, r.data]) : r.data);
  }
  const typed = typeOptions(merged);
  if ('reason' in typed) return { ok: false, error: { reason: typed.reason, ...who } };

  return {
    ok: true,
    packet: {
      op,
      htype: buf[1] ?? 0,
      hlen,
      hops: buf[3] ?? 0,
      xid,
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: readIp(buf, 12),
      yiaddr: readIp(buf, 16),
      siaddr: readIp(buf, 20),
      giaddr: readIp(buf, 24),
      chaddr: who.chaddr,
      sname: overload & 2 ? '' : readString(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_BYTES)),
      file: overload & 1 ? '' : readString(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_BYTES)),
      options: typed.options,
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Encoding. Inputs come from our own policy, so a value that cannot be encoded is a bug: it throws.

/** Writes a dotted quad at `offset` (a hand loop: this runs several times for every reply). */
function writeIp(buf: Buffer, offset: number, text: string, what: string): void {
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final '.' closes the last octet
    if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
    } else if (c === 46 && digits > 0 && octet <= 255 && part < 4) {
      buf[offset + part++] = octet;
      octet = 0;
      digits = 0;
    } else {
      part = -1;
      break;
    }
  }
  if (part !== 4) throw new RangeError(`${what}: "${text}" is not an IPv4 address`);
}

function ipBytes(text: string, what: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  writeIp(b, 0, text, what);
  return b;
}

function uint32(value: number, what: string): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`${what}: ${value} is not a uint32`);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value);
  return b;
}

function text(value: string, what: string): Buffer {
  if (value.length === 0) throw new RangeError(`${what}: empty string`);
  return Buffer.from(value, 'latin1');
}

/** RFC 3004 §4: each class as [UC_Len][data]. */
export function encodeUserClass(classes: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const c of classes) {
    const data = Buffer.from(c, 'latin1');
    if (data.length === 0 || data.length > 255)
      throw new RangeError(`user class "${c}" must be 1..255 bytes`);
    parts.push(Buffer.from([data.length]), data);
  }
  return Buffer.concat(parts);
}

const TYPED_CODES: ReadonlySet<number> = new Set<number>(Object.values(OPT));

/** Typed options → (code, value) pairs in the order they go on the wire. */
function optionValues(o: DhcpOptions): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  const add = (code: number, value: Buffer | undefined): void => {
    if (value !== undefined) out.push([code, value]);
  };
  // Message type first and server identifier next: RFC 2131 does not require an order, but some PXE
  // ROMs look for option 53 at the start of the options field.
  if (o.messageType !== undefined) {
    if (!Number.isInteger(o.messageType) || o.messageType < 1 || o.messageType > 255) {
      throw new RangeError(`message type ${o.messageType}`);
    }
    add(OPT.MESSAGE_TYPE, Buffer.from([o.messageType]));
  }
  if (o.serverId !== undefined) add(OPT.SERVER_ID, ipBytes(o.serverId, 'server id'));
  if (o.subnetMask !== undefined) add(OPT.SUBNET_MASK, ipBytes(o.subnetMask, 'subnet mask'));
  if (o.routers?.length) add(OPT.ROUTER, Buffer.concat(o.routers.map((r) => ipBytes(r, 'router'))));
  if (o.dnsServers?.length) add(OPT.DNS, Buffer.concat(o.dnsServers.map((r) => ipBytes(r, 'dns server'))));
  if (o.hostname !== undefined) add(OPT.HOSTNAME, text(o.hostname, 'hostname'));
  if (o.domainName !== undefined) add(OPT.DOMAIN_NAME, text(o.domainName, 'domain name'));
  if (o.vendorSpecific !== undefined) add(OPT.VENDOR_SPECIFIC, o.vendorSpecific);
  if (o.requestedIp !== undefined) add(OPT.REQUESTED_IP, ipBytes(o.requestedIp, 'requested ip'));
  if (o.leaseTime !== undefined) add(OPT.LEASE_TIME, uint32(o.leaseTime, 'lease time'));
  if (o.paramRequestList !== undefined) add(OPT.PARAM_REQUEST_LIST, Buffer.from(o.paramRequestList));
  if (o.message !== undefined) add(OPT.MESSAGE, text(o.message, 'message'));
  if (o.maxMessageSize !== undefined) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(o.maxMessageSize);
    add(OPT.MAX_MESSAGE_SIZE, b);
  }
  if (o.renewalTime !== undefined) add(OPT.RENEWAL_TIME, uint32(o.renewalTime, 'renewal time'));
  if (o.rebindingTime !== undefined) add(OPT.REBINDING_TIME, uint32(o.rebindingTime, 'rebinding time'));
  if (o.vendorClassId !== undefined) add(OPT.VENDOR_CLASS_ID, text(o.vendorClassId, 'vendor class'));
  if (o.clientId !== undefined) add(OPT.CLIENT_ID, o.clientId);
  if (o.tftpServerName !== undefined) add(OPT.TFTP_SERVER_NAME, text(o.tftpServerName, 'tftp server'));
  if (o.bootfileName !== undefined) add(OPT.BOOTFILE_NAME, text(o.bootfileName, 'bootfile name'));
  if (o.userClass !== undefined) add(OPT.USER_CLASS, encodeUserClass(o.userClass));
  if (o.clientArch !== undefined) {
    const b = Buffer.alloc(o.clientArch.length * 2);
    o.clientArch.forEach((a, i) => b.writeUInt16BE(a, i * 2));
    add(OPT.CLIENT_ARCH, b);
  }
  if (o.clientNdi !== undefined)
    add(OPT.CLIENT_NDI, Buffer.from([o.clientNdi.type, o.clientNdi.major, o.clientNdi.minor]));
  if (o.clientUuid !== undefined) add(OPT.CLIENT_UUID, o.clientUuid);
  for (const [code, value] of [...o.other].sort((a, b) => a[0] - b[0])) {
    if (TYPED_CODES.has(code))
      throw new RangeError(`option ${code} belongs in its typed field, not in other`);
    add(code, value);
  }
  // RFC 3046 §2.2: the relay agent information option SHOULD be the last option in the reply.
  if (o.relayAgentInfo !== undefined) add(OPT.RELAY_AGENT_INFO, o.relayAgentInfo);
  return out;
}

function fixedString(value: string, size: number, what: string): Buffer {
  const b = Buffer.from(value, 'latin1');
  // One byte stays free for the terminating NUL the field format expects.
  if (b.length >= size) throw new RangeError(`${what} "${value}" does not fit the ${size}-byte field`);
  return b;
}

function chaddrBytes(chaddr: string, hlen: number): Buffer {
  const bytes =
    chaddr === '' ? [] : chaddr.split(':').map((h) => (/^[0-9a-fA-F]{2}$/.test(h) ? parseInt(h, 16) : NaN));
  if (bytes.some((b) => Number.isNaN(b)) || bytes.length !== hlen || hlen > CHADDR_BYTES) {
    throw new RangeError(`chaddr "${chaddr}" does not match hlen ${hlen}`);
  }
  return Buffer.from(bytes);
}

/**
 * Encodes a packet. Options longer than 255 bytes are split into several instances (RFC 3396 §7); the
 * codec never overloads sname/file, so a reply carries its strings there verbatim.
 */
export function encodePacket(p: DhcpPacket): Buffer {
  const options = optionValues(p.options);
  let optionBytes = 1; // end option
  for (const [, value] of options)
    optionBytes += value.length + 2 * Math.max(1, Math.ceil(value.length / 255));
  const size = Math.max(BOOTP_MIN_REPLY_BYTES, DHCP_MIN_BYTES + optionBytes);
  const buf = Buffer.alloc(size);
  buf[0] = p.op;
  buf[1] = p.htype;
  buf[2] = p.hlen;
  buf[3] = p.hops;
  buf.writeUInt32BE(p.xid >>> 0, 4);
  buf.writeUInt16BE(p.secs, 8);
  buf.writeUInt16BE(p.flags, 10);
  writeIp(buf, 12, p.ciaddr, 'ciaddr');
  writeIp(buf, 16, p.yiaddr, 'yiaddr');
  writeIp(buf, 20, p.siaddr, 'siaddr');
  writeIp(buf, 24, p.giaddr, 'giaddr');
  chaddrBytes(p.chaddr, p.hlen).copy(buf, CHADDR_OFFSET);
  fixedString(p.sname, SNAME_BYTES, 'sname').copy(buf, SNAME_OFFSET);
  fixedString(p.file, FILE_BYTES, 'file').copy(buf, FILE_OFFSET);
  buf.writeUInt32BE(MAGIC_COOKIE, FIXED_HEADER_BYTES);
  let i = DHCP_MIN_BYTES;
  for (const [code, value] of options) {
    if (code === OPT.PAD || code === OPT.END || code === OPT.OVERLOAD)
      throw new RangeError(`option ${code} cannot be set`);
    let at = 0;
    do {
      const chunk = value.subarray(at, at + 255);
      buf[i] = code;
      buf[i + 1] = chunk.length;
      chunk.copy(buf, i + 2);
      i += 2 + chunk.length;
      at += 255;
    } while (at < value.length);
  }
  buf[i] = OPT.END;
  return buf;
}

// ---------------------------------------------------------------------------------------------------
// PXE vendor options (option 43 when option 60 is "PXEClient"), PXE 2.1 specification §2.4, table 2-1.

export const PXE = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
  END: 255,
} as const;

/**
 * PXE_DISCOVERY_CONTROL bit 3: "if set, and a boot file name is present in the initial DHCP or
 * ProxyDHCP offer packet, download the boot file (do not prompt/menu/discover)".
 */
export const PXE_DISCOVERY_USE_BOOTFILE = 0x08;

/** Sub-options as (code, value) pairs, terminated by PXE_END. */
export function encodePxeVendorOptions(sub: ReadonlyArray<readonly [number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of sub) {
    if (value.length > 255) throw new RangeError(`PXE sub-option ${code} is longer than 255 bytes`);
    parts.push(Buffer.from([code, value.length]), value);
  }
  parts.push(Buffer.from([PXE.END]));
  return Buffer.concat(parts);
}

/** Option 43 as PXE sub-options, or null when it is not well-formed. */
export function decodePxeVendorOptions(data: Buffer): Map<number, Buffer> | null {
  const raw: Raw[] = [];
  if (walkOptions(data, 0, data.length, 'option 43', raw, false) !== null) return null;
  return new Map(raw.map((r) => [r.code, Buffer.from(r.data)]));
}

/** For logs and golden fixtures: a stable, readable rendering of a packet. */
export function describePacket(p: DhcpPacket): Record<string, unknown> {
  const o = p.options;
  const hex = (b: Buffer | undefined): string | undefined => (b ? b.toString('hex') : undefined);
  const options: Record<string, unknown> = {
    messageType:
      o.messageType !== undefined ? (MESSAGE_TYPE_NAMES[o.messageType] ?? o.messageType) : undefined,
    subnetMask: o.subnetMask,
    routers: o.routers,
    dnsServers: o.dnsServers,
    hostname: o.hostname,
    domainName: o.domainName,
    vendorSpecific: hex(o.vendorSpecific),
    requestedIp: o.requestedIp,
    leaseTime: o.leaseTime,
    serverId: o.serverId,
    paramRequestList: o.paramRequestList,
    message: o.message,
    maxMessageSize: o.maxMessageSize,
    renewalTime: o.renewalTime,
    rebindingTime: o.rebindingTime,
    vendorClassId: o.vendorClassId,
    clientId: hex(o.clientId),
    tftpServerName: o.tftpServerName,
    bootfileName: o.bootfileName,
    userClass: o.userClass,
    relayAgentInfo: hex(o.relayAgentInfo),
    clientArch: o.clientArch,
    clientNdi: o.clientNdi,
    clientUuid: hex(o.clientUuid),
    other: o.other.size
      ? Object.fromEntries([...o.other].map(([k, v]) => [k, v.toString('hex')]))
      : undefined,
  };
  return {
    op: p.op,
    htype: p.htype,
    hlen: p.hlen,
    hops: p.hops,
    xid: `0x${p.xid.toString(16).padStart(8, '0')}`,
    secs: p.secs,
    flags: p.flags,
    ciaddr: p.ciaddr,
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    giaddr: p.giaddr,
    chaddr: p.chaddr,
    sname: p.sname,
    file: p.file,
    options: Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
}
