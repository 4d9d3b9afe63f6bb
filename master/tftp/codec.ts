/**
 * Pure TFTP packet codec: Buffer in, typed packet out, and back. No sockets, no files.
 *
 * Packet formats: RFC 1350 section 5 (RRQ, WRQ, DATA, ACK, ERROR) and RFC 2347 (options appended to
 * RRQ/WRQ, and the OACK packet). Option semantics (blksize, tsize, timeout, windowsize) live in
 * transfer.ts (negotiateOptions), not here: the codec only checks the framing.
 *
 * decodePacket() never throws: every length is checked before it is read, and a packet that does not
 * parse is returned as a typed failure the server logs once and drops.
 */

/** RFC 1350 section 5; OACK from RFC 2347. */
export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;

/** RFC 1350 appendix ("Error Codes"); code 8 from RFC 2347. */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** RFC 1350 section 5: the transfer modes; compared case-insensitively. */
export type TransferMode = 'netascii' | 'octet' | 'mail';

/** RFC 2348: "Valid values range between 8 and 65464 octets, inclusive." */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;

/**
 * RFC 2347, "Packet Formats": "The maximum size of a request packet is 512 octets". Nothing we serve needs a
 * longer file name; refusing longer requests bounds the work a single datagram can cause.
 */
export const MAX_REQUEST_SIZE = 512;

/** The largest DATA packet: 4 bytes of header plus the largest block RFC 2348 allows. */
export const MAX_DATA_PACKET = 4 + MAX_BLKSIZE;

export interface RequestPacket {
  op: 'RRQ' | 'WRQ';
  filename: string;
  mode: TransferMode;
  /** RFC 2347 options in the order sent; names lower-cased (they are case-insensitive). */
  options: Map<string, string>;
}

export interface DataPacket {
  op: 'DATA';
  /** The 16-bit block number as it is on the wire (it wraps past 65535). */
  block: number;
  data: Buffer;
}

export interface AckPacket {
  op: 'ACK';
  block: number;
}

export interface ErrorPacket {
  op: 'ERROR';
  code: number;
  message: string;
}

export interface OackPacket {
  op: 'OACK';
  options: Map<string, string>;
}

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type DecodeFailure =
  | 'too-short'
  | 'too-long'
  | 'unknown-opcode'
  | 'unterminated-string'
  | 'empty-filename'
  | 'invalid-utf8'
  | 'unknown-mode'
  | 'option-without-value'
  | 'empty-option-name'
  | 'duplicate-option'
  | 'trailing-bytes';

export type DecodeResult =
  { ok: true; packet: TftpPacket } | { ok: false; reason: DecodeFailure; detail: string };

const MODES: ReadonlySet<string> = new Set(['netascii', 'octet', 'mail']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(reason: DecodeFailure, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

/** Reads a NUL-terminated string starting at `start`; returns the bytes and the offset after the NUL. */
function cstring(buf: Buffer, start: number): { bytes: Buffer; next: number } | null {
  const end = buf.indexOf(0, start);
  if (end < 0) return null;
  return { bytes: buf.subarray(start, end), next: end + 1 };
}

/**
 * RFC 2347, "Packet Formats": after the mode, zero or more `name NUL value NUL` pairs. A tail of NUL
 * bytes after the last complete pair is accepted and ignored: padding carries nothing, and dropping the
 * request for it would only cost a boot.
 */
function decodeOptions(
  buf: Buffer,
  start: number,
): { ok: true; options: Map<string, string> } | { ok: false; reason: DecodeFailure; detail: string } {
  const options = new Map<string, string>();
  let at = start;
  while (at < buf.length) {
    if (buf.subarray(at).every((b) => b === 0)) break;
    const name = cstring(buf, at);
    if (!name) return { ok: false, reason: 'unterminated-string', detail: `option name at offset ${at}` };
    if (name.bytes.length === 0) return { ok: false, reason: 'empty-option-name', detail: `at offset ${at}` };
    const value = cstring(buf, name.next);
    if (!value) {
      return { ok: false, reason: 'option-without-value', detail: `option ${name.bytes.toString('latin1')}` };
    }
    // Option names are case-insensitive (RFC 2347, "Packet Formats"); values here are ASCII digits or words.
    const key = name.bytes.toString('latin1').toLowerCase();
    if (options.has(key)) return { ok: false, reason: 'duplicate-option', detail: key };
    options.set(key, value.bytes.toString('latin1'));
    at = value.next;
  }
  return { ok: true, options };
}

function decodeRequest(buf: Buffer, op: 'RRQ' | 'WRQ'): DecodeResult {
  // Minimum: 2 (opcode) + 1 (one-byte filename) + 1 (NUL) + 1 (one-byte mode) + 1 (NUL) = 6.
  if (buf.length < 6) return fail('too-short', `${op} of ${buf.length} bytes, minimum is 6`);
  if (buf.length > MAX_REQUEST_SIZE) {
    return fail('too-long', `${op} of ${buf.length} bytes, RFC 2347 allows ${MAX_REQUEST_SIZE}`);
  }
  const name = cstring(buf, 2);
  if (!name) return fail('unterminated-string', 'filename');
  if (name.bytes.length === 0) return fail('empty-filename', op);
  let filename: string;
  try {
    filename = utf8.decode(name.bytes);
  } catch {
    return fail('invalid-utf8', 'filename');
  }
  const mode = cstring(buf, name.next);
  if (!mode) return fail('unterminated-string', 'mode');
  const modeText = mode.bytes.toString('latin1').toLowerCase();
  // A filename with an embedded NUL ("a\0../../x\0octet") shows up here as an unknown mode.
  if (!MODES.has(modeText)) return fail('unknown-mode', JSON.stringify(modeText.slice(0, 32)));
  const opts = decodeOptions(buf, mode.next);
  if (!opts.ok) return opts;
  return { ok: true, packet: { op, filename, mode: modeText as TransferMode, options: opts.options } };
}

/** Decodes one datagram. Never throws. */
export function decodePacket(buf: Buffer): DecodeResult {
  // Every packet starts with a 2-byte opcode.
  if (buf.length < 2) return fail('too-short', `${buf.length} bytes, no opcode`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
      return decodeRequest(buf, 'RRQ');
    case Opcode.WRQ:
      return decodeRequest(buf, 'WRQ');
    case Opcode.DATA: {
      // 2 (opcode) + 2 (block) = 4; the payload may be empty (the final block of a file whose size is a
      // multiple of blksize, RFC 1350 section 6).
      if (buf.length < 4) return fail('too-short', `DATA of ${buf.length} bytes, minimum is 4`);
      if (buf.length > MAX_DATA_PACKET) {
        return fail('too-long', `DATA of ${buf.length} bytes, maximum is ${MAX_DATA_PACKET}`);
      }
      return { ok: true, packet: { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    }
    case Opcode.ACK: {
      // Exactly 2 (opcode) + 2 (block).
      if (buf.length < 4) return fail('too-short', `ACK of ${buf.length} bytes, must be 4`);
      if (buf.length > 4) return fail('trailing-bytes', `ACK of ${buf.length} bytes, must be 4`);
      return { ok: true, packet: { op: 'ACK', block: buf.readUInt16BE(2) } };
    }
    case Opcode.ERROR: {
      // 2 (opcode) + 2 (code) = 4, then the message. A missing final NUL is tolerated: an ERROR ends the
      // transfer either way, and dropping it would only make us retransmit into a peer that gave up.
      if (buf.length < 4) return fail('too-short', `ERROR of ${buf.length} bytes, minimum is 4`);
      const code = buf.readUInt16BE(2);
      const end = buf.indexOf(0, 4);
      const text = buf.subarray(4, end < 0 ? buf.length : end).toString('latin1');
      if (end >= 0 && end !== buf.length - 1) return fail('trailing-bytes', 'after ERROR message');
      return { ok: true, packet: { op: 'ERROR', code, message: text } };
    }
    case Opcode.OACK: {
      // 2 (opcode) + at least one option: 1 (name) + 1 (NUL) + 0 (value may be empty) + 1 (NUL) = 5.
      // An OACK acknowledges at least one option (RFC 2347, "Negotiation Protocol").
      if (buf.length < 5) return fail('too-short', `OACK of ${buf.length} bytes, minimum is 5`);
      const opts = decodeOptions(buf, 2);
      if (!opts.ok) return opts;
      if (opts.options.size === 0) return fail('too-short', 'OACK without options');
      return { ok: true, packet: { op: 'OACK', options: opts.options } };
    }
    default:
      return fail('unknown-opcode', String(opcode));
  }
}

function assertU16(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`${what} ${value} is not a 16-bit unsigned integer`);
  }
}

function assertCString(value: string, what: string): void {
  if (value.includes('\0')) throw new RangeError(`${what} contains a NUL byte`);
}

function encodeOptionList(options: ReadonlyMap<string, string>): Buffer[] {
  const parts: Buffer[] = [];
  for (const [name, value] of options) {
    assertCString(name, 'option name');
    assertCString(value, 'option value');
    if (name.length === 0) throw new RangeError('empty option name');
    parts.push(Buffer.from(`${name}\0${value}\0`, 'latin1'));
  }
  return parts;
}

function opcodeBytes(op: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(op, 0);
  return b;
}

/**
 * Writes the 4-byte DATA header into `into` (allocated if omitted). The transfer sends header and
 * payload as two buffers (sendmsg with an iovec), so the file data is never copied into a packet.
 */
export function encodeDataHeader(block: number, into: Buffer = Buffer.allocUnsafe(4)): Buffer {
  assertU16(block, 'block');
  into.writeUInt16BE(Opcode.DATA, 0);
  into.writeUInt16BE(block, 2);
  return into;
}

/**
 * Encodes a packet. Throws RangeError on values that cannot be represented (a NUL inside a string, a
 * block number over 65535, a payload over 65464 bytes): those are programming errors, not input.
 */
export function encodePacket(packet: TftpPacket): Buffer {
  switch (packet.op) {
    case 'RRQ':
    case 'WRQ': {
      if (packet.filename.length === 0) throw new RangeError('empty filename');
      assertCString(packet.filename, 'filename');
      const head = Buffer.concat([
        opcodeBytes(packet.op === 'RRQ' ? Opcode.RRQ : Opcode.WRQ),
        Buffer.from(`${packet.filename}\0`, 'utf8'),
        Buffer.from(`${packet.mode}\0`, 'latin1'),
      ]);
      return Buffer.concat([head, ...encodeOptionList(packet.options)]);
    }
    case 'DATA': {
      if (packet.data.length > MAX_BLKSIZE)
        throw new RangeError(`DATA payload of ${packet.data.length} bytes`);
      return Buffer.concat([encodeDataHeader(packet.block), packet.data]);
    }
    case 'ACK': {
      assertU16(packet.block, 'block');
      const b = Buffer.allocUnsafe(4);
      b.writeUInt16BE(Opcode.ACK, 0);
      b.writeUInt16BE(packet.block, 2);
      return b;
    }
    case 'ERROR': {
      assertU16(packet.code, 'error code');
      assertCString(packet.message, 'error message');
      const b = Buffer.allocUnsafe(4);
      b.writeUInt16BE(Opcode.ERROR, 0);
      b.writeUInt16BE(packet.code, 2);
      return Buffer.concat([b, Buffer.from(`${packet.message}\0`, 'latin1')]);
    }
    case 'OACK': {
      if (packet.options.size === 0) throw new RangeError('OACK without options (RFC 2347)');
      return Buffer.concat([opcodeBytes(Opcode.OACK), ...encodeOptionList(packet.options)]);
    }
  }
}

/** Convenience for the common reply. */
export function encodeError(code: number, message: string): Buffer {
  return encodePacket({ op: 'ERROR', code, message });
}
