/**
 * DHCPv6 codec (RFC 8415 §8, §9, §21): Buffer in, typed message out, and back. Pure; imports only Buffer
 * helpers. Every length is checked before it is read; a packet that lies about one is rejected whole.
 */
import { addressFromBytes, addressToBytes } from './address.js';

/** RFC 8415 §7.3 message types. */
export const MSG = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

export const MSG_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(MSG).map(([k, v]) => [v, k.replace('_', '-')]),
);

/** Option codes (RFC 8415 §21, RFC 3646, RFC 5970, RFC 6939). */
export const OPT6 = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  USER_CLASS: 15,
  VENDOR_CLASS: 16,
  INTERFACE_ID: 18,
  DNS_SERVERS: 23,
  /** RFC 3646 §4: the domain search list. */
  DOMAIN_LIST: 24,
  BOOTFILE_URL: 59,
  BOOTFILE_PARAM: 60,
  CLIENT_ARCH_TYPE: 61,
  NII: 62,
  CLIENT_LINKLAYER_ADDR: 79,
} as const;

/** RFC 8415 §21.13 status codes. */
export const STATUS = {
  Success: 0,
  UnspecFail: 1,
  NoAddrsAvail: 2,
  NoBinding: 3,
  NotOnLink: 4,
  UseMulticast: 5,
} as const;

export interface Option6 {
  code: number;
  data: Buffer;
}

export interface ClientMessage {
  kind: 'client';
  type: number;
  /** 24-bit transaction id (§8). */
  transactionId: number;
  options: Option6[];
}

export interface RelayMessage {
  kind: 'relay';
  type: number;
  hopCount: number;
  linkAddress: bigint;
  peerAddress: bigint;
  /** Every option but Relay Message; `inner` is that option decoded. */
  options: Option6[];
  inner: Message6;
}

export type Message6 = ClientMessage | RelayMessage;

/**
 * A relay chain deeper than this is refused. RFC 8415 §7.6: HOP_COUNT_LIMIT is 8, so a genuine chain has
 * at most 8 RELAY-FORW wrappers (hop counts 0..7; a relay drops a message already at the limit).
 */
export const MAX_RELAY_DEPTH = 8;

export type Decoded6 =
  { ok: true; message: Message6 } | { ok: false; reason: string; transactionId?: number };

function decodeOptions(buf: Buffer, start: number): Option6[] | string {
  const out: Option6[] = [];
  let i = start;
  while (i < buf.length) {
    // §21.1: each option is code (2) + option-len (2) + data.
    if (buf.length - i < 4) return `truncated option header at byte ${i}`;
    const code = buf.readUInt16BE(i);
    const len = buf.readUInt16BE(i + 2);
    if (i + 4 + len > buf.length) return `option ${code} claims ${len} bytes, ${buf.length - i - 4} left`;
    out.push({ code, data: buf.subarray(i + 4, i + 4 + len) });
    i += 4 + len;
  }
  return out;
}

function decodeAt(buf: Buffer, depth: number): Decoded6 {
  if (buf.length < 1) return { ok: false, reason: 'empty datagram' };
  const type = buf[0] ?? 0;
  if (type === MSG.RELAY_FORW || type === MSG.RELAY_REPL) {
    // §9: msg-type (1) + hop-count (1) + link-address (16) + peer-address (16) = 34 bytes before options.
    if (buf.length < 34) return { ok: false, reason: `relay message of ${buf.length} bytes (minimum 34)` };
    if (depth >= MAX_RELAY_DEPTH)
      return { ok: false, reason: `relay nesting deeper than ${MAX_RELAY_DEPTH}` };
    const options = decodeOptions(buf, 34);
    if (typeof options === 'string') return { ok: false, reason: options };
    const relayed = options.filter((o) => o.code === OPT6.RELAY_MSG);
    if (relayed.length !== 1)
      return { ok: false, reason: `relay message with ${relayed.length} Relay Message options (needs one)` };
    const inner = decodeAt(relayed[0]!.data, depth + 1);
    if (!inner.ok) return inner;
    return {
      ok: true,
      message: {
        kind: 'relay',
        type,
        hopCount: buf[1] ?? 0,
        linkAddress: addressFromBytes(buf, 2),
        peerAddress: addressFromBytes(buf, 18),
        options: options.filter((o) => o.code !== OPT6.RELAY_MSG),
        inner: inner.message,
      },
    };
  }
  // §8: msg-type (1) + transaction-id (3) = 4 bytes before options.
  if (buf.length < 4) return { ok: false, reason: `message of ${buf.length} bytes (minimum 4)` };
  const transactionId = buf.readUIntBE(1, 3);
  const options = decodeOptions(buf, 4);
  if (typeof options === 'string') return { ok: false, reason: options, transactionId };
  return { ok: true, message: { kind: 'client', type, transactionId, options } };
}

export function decodeMessage6(buf: Buffer): Decoded6 {
  return decodeAt(buf, 0);
}

function encodeOptions(options: readonly Option6[]): Buffer {
  const parts: Buffer[] = [];
  for (const o of options) {
    if (o.data.length > 0xffff) throw new Error(`option ${o.code} of ${o.data.length} bytes does not fit`);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(o.code, 0);
    head.writeUInt16BE(o.data.length, 2);
    parts.push(head, o.data);
  }
  return Buffer.concat(parts);
}

export function encodeMessage6(m: Message6): Buffer {
  if (m.kind === 'client') {
    const head = Buffer.alloc(4);
    head[0] = m.type;
    head.writeUIntBE(m.transactionId & 0xffffff, 1, 3);
    return Buffer.concat([head, encodeOptions(m.options)]);
  }
  const head = Buffer.alloc(34);
  head[0] = m.type;
  head[1] = m.hopCount;
  addressToBytes(m.linkAddress).copy(head, 2);
  addressToBytes(m.peerAddress).copy(head, 18);
  const relayMsg: Option6 = { code: OPT6.RELAY_MSG, data: encodeMessage6(m.inner) };
  return Buffer.concat([head, encodeOptions([...m.options, relayMsg])]);
}

// --- Typed views of the options Corral reads and writes ---

export function option(options: readonly Option6[], code: number): Buffer | undefined {
  return options.find((o) => o.code === code)?.data;
}

export interface IaAddress {
  address: bigint;
  preferred: number;
  valid: number;
  options: Option6[];
}

export interface IaNa {
  iaid: number;
  t1: number;
  t2: number;
  addresses: IaAddress[];
  options: Option6[];
}

/** §21.4: IAID (4) + T1 (4) + T2 (4) + IA_NA-options; each IAADDR (§21.6) is 24 bytes + its options. */
export function decodeIaNa(data: Buffer): IaNa | string {
  if (data.length < 12) return `IA_NA of ${data.length} bytes (minimum 12)`;
  const options = decodeOptions(data, 12);
  if (typeof options === 'string') return `IA_NA: ${options}`;
  const addresses: IaAddress[] = [];
  for (const o of options) {
    if (o.code !== OPT6.IAADDR) continue;
    if (o.data.length < 24) return `IAADDR of ${o.data.length} bytes (minimum 24)`;
    const sub = decodeOptions(o.data, 24);
    if (typeof sub === 'string') return `IAADDR: ${sub}`;
    addresses.push({
      address: addressFromBytes(o.data, 0),
      preferred: o.data.readUInt32BE(16),
      valid: o.data.readUInt32BE(20),
      options: sub,
    });
  }
  return {
    iaid: data.readUInt32BE(0),
    t1: data.readUInt32BE(4),
    t2: data.readUInt32BE(8),
    addresses,
    options: options.filter((o) => o.code !== OPT6.IAADDR),
  };
}

export function encodeIaNa(ia: IaNa): Option6 {
  const head = Buffer.alloc(12);
  head.writeUInt32BE(ia.iaid >>> 0, 0);
  head.writeUInt32BE(ia.t1 >>> 0, 4);
  head.writeUInt32BE(ia.t2 >>> 0, 8);
  const addrs = ia.addresses.map((a) => {
    const fixed = Buffer.alloc(24);
    addressToBytes(a.address).copy(fixed, 0);
    fixed.writeUInt32BE(a.preferred >>> 0, 16);
    fixed.writeUInt32BE(a.valid >>> 0, 20);
    return { code: OPT6.IAADDR, data: Buffer.concat([fixed, encodeOptions(a.options)]) };
  });
  return { code: OPT6.IA_NA, data: Buffer.concat([head, encodeOptions([...addrs, ...ia.options])]) };
}

/** §21.13: status-code (2) + UTF-8 message. */
export function statusOption(code: number, message: string): Option6 {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code, 0);
  return { code: OPT6.STATUS_CODE, data: Buffer.concat([head, Buffer.from(message, 'utf8')]) };
}

export function decodeStatus(data: Buffer | undefined): { code: number; message: string } | undefined {
  if (!data || data.length < 2) return undefined;
  return { code: data.readUInt16BE(0), message: data.subarray(2).toString('utf8') };
}

/** §21.7: a list of 16-bit option codes. An odd length is malformed. */
export function decodeOro(data: Buffer | undefined): number[] | string {
  if (!data) return [];
  if (data.length % 2) return `ORO of odd length ${data.length}`;
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(data.readUInt16BE(i));
  return out;
}

/** RFC 5970 §3.3 (option 61): a list of 16-bit architecture types, most preferred first. */
export const decodeClientArch = decodeOro;

/** A list of (len (2) + bytes) items, as in User Class (§21.15) and after Vendor Class's enterprise number. */
function decodeOpaqueList(data: Buffer, start: number): string[] | string {
  const out: string[] = [];
  let i = start;
  while (i < data.length) {
    if (data.length - i < 2) return 'truncated class item';
    const len = data.readUInt16BE(i);
    if (i + 2 + len > data.length) return `class item claims ${len} bytes, ${data.length - i - 2} left`;
    out.push(data.subarray(i + 2, i + 2 + len).toString('latin1'));
    i += 2 + len;
  }
  return out;
}

export function decodeUserClass(data: Buffer | undefined): string[] | string {
  return data ? decodeOpaqueList(data, 0) : [];
}

/** §21.16: enterprise-number (4) + vendor-class-data (a list of len-prefixed items). */
export function decodeVendorClass(
  data: Buffer | undefined,
): { enterprise: number; items: string[] } | string | undefined {
  if (!data) return undefined;
  if (data.length < 4) return `vendor class of ${data.length} bytes (minimum 4)`;
  const items = decodeOpaqueList(data, 4);
  if (typeof items === 'string') return items;
  return { enterprise: data.readUInt32BE(0), items };
}

export function vendorClassOption(enterprise: number, items: readonly string[]): Option6 {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(enterprise >>> 0, 0);
  const parts = items.map((s) => {
    const b = Buffer.from(s, 'latin1');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length, 0);
    return Buffer.concat([len, b]);
  });
  return { code: OPT6.VENDOR_CLASS, data: Buffer.concat([head, ...parts]) };
}

/** DUID-LL (type 3) or DUID-LLT (type 1) with Ethernet (hardware type 1) → its MAC (RFC 8415 §11.2, §11.4). */
export function macFromDuid(duid: Buffer): string | null {
  if (duid.length < 4 || duid.readUInt16BE(2) !== 1) return null;
  const type = duid.readUInt16BE(0);
  const at = type === 1 ? 8 : type === 3 ? 4 : -1;
  if (at < 0 || duid.length !== at + 6) return null;
  return [...duid.subarray(at)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** RFC 6939 §4: link-layer type (2) + address; Ethernet (1) with 6 bytes → MAC. */
export function macFromLinkLayerOption(data: Buffer | undefined): string | null {
  if (!data || data.length !== 8 || data.readUInt16BE(0) !== 1) return null;
  return [...data.subarray(2)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
