/**
 * The TFTP socket server: reads requests on the listening port and gives each read transfer its own
 * ephemeral UDP socket, whose port is the server's transfer ID (RFC 1350 section 4). All protocol
 * decisions are in codec.ts, paths.ts and transfer.ts; this file only moves datagrams and keeps count.
 *
 * A malformed datagram is logged once (peer, reason) and dropped; a refused request gets an ERROR packet
 * and a log line; only a failure of the listening socket itself stops the server.
 */
import dgram from 'node:dgram';
import { realpath, stat } from 'node:fs/promises';
import type { Logger } from '../util/logger.js';
import { CorralError } from '../util/errors.js';
import { decodePacket, encodeError, ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE } from './codec.js';
import type { DecodeFailure, RequestPacket } from './codec.js';
import { openInRoot, type OpenedFile } from './paths.js';
import { BlockReader, fileHandleSource } from './block-reader.js';
import { negotiateOptions, ReadTransfer } from './transfer.js';
import type { NegotiationLimits } from './transfer.js';
import type { BootActivitySink } from '../boot/activity.js';

export interface TftpServerOptions {
  /** The boot root; only regular files inside it are served (see paths.ts). */
  root: string;
  address: string;
  /** 69 in production; 0 picks a free port (tests). */
  port: number;
  logger: Logger;
  /** Largest blksize agreed to (RFC 2348); default 1468, one Ethernet frame (see transfer.ts). */
  maxBlksize?: number;
  /** Largest windowsize agreed to (RFC 7440); default 64. */
  maxWindowsize?: number;
  /** Retransmissions of one window before a transfer is abandoned; default 5. */
  retries?: number;
  /** Retransmission timeout when the client negotiates none; default 1000 ms. */
  timeoutMs?: number;
  /** Concurrent transfers; further requests get ERROR 0 "Server busy". Default 256 (2 fds each). */
  maxTransfers?: number;
  /** The boot timeline (issue 22): transfers and refusals, attributed to a MAC by the peer's address. */
  activity?: BootActivitySink;
}

export interface TftpStats {
  active: number;
  completed: number;
  failed: number;
  /** Requests answered with an ERROR before any transfer began (path rules, WRQ, mode, busy). */
  refused: number;
}

export interface TftpServer {
  port: number;
  close(): Promise<void>;
  stats(): TftpStats;
}

interface Settings {
  rootReal: string;
  address: string;
  port: number;
  limits: NegotiationLimits;
  retries: number;
  maxTransfers: number;
}

/** One client endpoint's request, from the moment it is accepted (the file may still be opening). */
interface Session {
  /** The client's endpoint, "address:port": its TID. */
  key: string;
  file: string;
  transfer: ReadTransfer | null;
}

const DEFAULTS = { maxBlksize: 1468, maxWindowsize: 64, retries: 5, timeoutMs: 1000, maxTransfers: 256 };

function integerIn(key: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new CorralError(
      'CONFIG_INVALID',
      `tftp.${key} must be an integer from ${min} to ${max}, got ${value}`,
      {
        key: `tftp.${key}`,
      },
    );
  }
  return value;
}

async function validate(opts: TftpServerOptions): Promise<Settings> {
  let rootReal: string;
  try {
    rootReal = await realpath(opts.root);
    if (!(await stat(rootReal)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new CorralError('CONFIG_INVALID', `TFTP root ${opts.root} is not a readable directory (${why})`, {
      key: 'tftp.root',
    });
  }
  const timeoutMs = integerIn('timeoutMs', opts.timeoutMs ?? DEFAULTS.timeoutMs, 10, 255_000);
  return Object.freeze({
    rootReal,
    address: opts.address,
    port: integerIn('port', opts.port, 0, 65535),
    limits: Object.freeze({
      maxBlksize: integerIn('maxBlksize', opts.maxBlksize ?? DEFAULTS.maxBlksize, MIN_BLKSIZE, MAX_BLKSIZE),
      maxWindowsize: integerIn('maxWindowsize', opts.maxWindowsize ?? DEFAULTS.maxWindowsize, 1, 1024),
      defaultTimeoutMs: timeoutMs,
    }),
    retries: integerIn('retries', opts.retries ?? DEFAULTS.retries, 0, 100),
    maxTransfers: integerIn('maxTransfers', opts.maxTransfers ?? DEFAULTS.maxTransfers, 1, 65535),
  });
}

/**
 * At most `perSecond` malformed-packet lines per second, then one line with the number left out, so a
 * flood of garbage cannot flood the log as well.
 */
class MalformedLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perSecond = 20,
  ) {}

  report(peer: string, reason: DecodeFailure, detail: string, file?: string): void {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'malformed packets not logged');
      this.windowStart = now;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count >= this.perSecond) {
      this.suppressed++;
      return;
    }
    this.count++;
    this.log.warn({ peer, reason, detail, ...(file ? { file } : {}) }, 'malformed packet dropped');
  }
}

/** The client sees only the generic text of a code; the reason (with real paths) stays in our log. */
const ERROR_TEXT: Record<number, string> = {
  [ErrorCode.FILE_NOT_FOUND]: 'File not found',
  [ErrorCode.ACCESS_VIOLATION]: 'Access violation',
};

/**
 * A transfer socket only ever sends to the address its request came from, already a literal IP. The
 * default resolver would re-check it with dns.lookup (a regex and a deferred tick) on every datagram.
 */
function literalAddress(
  address: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

function bindSocket(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const settings = await validate(opts);
  const log = opts.logger.child({ module: 'tftp' });
  const malformed = new MalformedLog(log);
  const type = settings.address.includes(':') ? 'udp6' : 'udp4';
  const sessions = new Map<string, Session>();
  const finishing = new Set<Promise<void>>();
  const counts = { completed: 0, failed: 0, refused: 0 };
  let closing = false;

  const listener = dgram.createSocket({ type });
  try {
    await bindSocket(listener, settings.address, settings.port);
  } catch (err) {
    await closeSocket(listener);
    const why = err instanceof Error ? err.message : String(err);
    throw new CorralError(
      'CONFIG_INVALID',
      `TFTP cannot listen on ${settings.address}:${settings.port} (${why})`,
      {
        key: 'tftp.address',
      },
    );
  }
  const port = listener.address().port;

  function replyError(rinfo: dgram.RemoteInfo, code: number, message: string): void {
    listener.send(encodeError(code, message), rinfo.port, rinfo.address, (err) => {
      if (err)
        log.debug({ peer: `${rinfo.address}:${rinfo.port}`, err: err.message }, 'error reply not sent');
    });
  }

  function refuse(
    rinfo: dgram.RemoteInfo,
    code: number,
    message: string,
    fields: Record<string, unknown>,
  ): void {
    counts.refused++;
    log.warn({ peer: `${rinfo.address}:${rinfo.port}`, code, ...fields }, 'request refused');
    opts.activity?.recordByIp(rinfo.address, {
      kind: 'tftp',
      file: String(fields['file'] ?? ''),
      ok: false,
      bytes: 0,
      ms: 0,
      error: message,
    });
    replyError(rinfo, code, message);
  }

  /** Resolves the file, or refuses the request; then hands over to runTransfer. */
  async function serveRead(req: RequestPacket, rinfo: dgram.RemoteInfo, session: Session): Promise<void> {
    const opened = await openInRoot(settings.rootReal, req.filename);
    if (!opened.ok) {
      release(session);
      refuse(rinfo, opened.code, ERROR_TEXT[opened.code] ?? 'Access violation', {
        file: req.filename,
        reason: opened.reason,
      });
      return;
    }
    // RFC 1350 section 4: the transfer gets its own port, the server's TID.
    const socket = dgram.createSocket({ type, lookup: literalAddress });
    try {
      await bindSocket(socket, settings.address, 0);
    } catch (err) {
      await Promise.all([opened.handle.close(), closeSocket(socket)]);
      release(session);
      refuse(rinfo, ErrorCode.NOT_DEFINED, 'Server busy', {
        file: req.filename,
        reason: `no transfer socket: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    // The server may have closed, or the client restarted, while the file was opening.
    if (closing || sessions.get(session.key) !== session) {
      await Promise.all([opened.handle.close(), closeSocket(socket)]);
      release(session);
      return;
    }
    try {
      await runTransfer(req, rinfo, session, opened, socket);
    } finally {
      await closeSocket(socket);
      release(session);
    }
  }

  async function runTransfer(
    req: RequestPacket,
    rinfo: dgram.RemoteInfo,
    session: Session,
    opened: OpenedFile,
    socket: dgram.Socket,
  ): Promise<void> {
    const peer = session.key;
    const negotiated = negotiateOptions(req.options, opened.size, settings.limits);
    const reader = new BlockReader(
      fileHandleSource(opened.handle, opened.size),
      negotiated.blksize,
      negotiated.windowsize,
    );
    const transfer = new ReadTransfer({ ...negotiated, retries: settings.retries }, reader, {
      send(packet, payload) {
        socket.send(payload ? [packet, payload] : packet, rinfo.port, rinfo.address);
      },
    });
    session.transfer = transfer;

    socket.on('message', (msg, from) => {
      if (from.port !== rinfo.port || from.address !== rinfo.address) {
        // RFC 1350 section 4: a packet from a foreign TID gets ERROR 5 and leaves the transfer alone.
        log.debug({ peer, from: `${from.address}:${from.port}` }, 'packet from unknown TID');
        socket.send(encodeError(ErrorCode.UNKNOWN_TID, 'Unknown transfer ID'), from.port, from.address);
        return;
      }
      const decoded = decodePacket(msg);
      if (!decoded.ok) {
        malformed.report(peer, decoded.reason, decoded.detail, req.filename);
        return;
      }
      transfer.handle(decoded.packet);
    });
    socket.on('error', (err) => transfer.abort(`transfer socket failed: ${err.message}`));

    const started = Date.now();
    const fields = {
      peer,
      file: opened.relative,
      size: opened.size,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      options: negotiated.oack ? Object.fromEntries(negotiated.oack) : {},
    };
    log.info(fields, 'transfer started');
    transfer.start();

    const outcome = await transfer.done;
    const end = {
      ...fields,
      bytes: outcome.bytes,
      ms: Date.now() - started,
      retransmits: outcome.retransmits,
    };
    if (outcome.ok) {
      counts.completed++;
      log.info(end, 'transfer complete');
    } else {
      counts.failed++;
      log.warn({ ...end, reason: outcome.reason }, 'transfer failed');
    }
    opts.activity?.recordByIp(rinfo.address, {
      kind: 'tftp',
      file: opened.relative,
      ok: outcome.ok,
      bytes: outcome.bytes,
      ms: end.ms,
      ...(outcome.reason ? { error: outcome.reason } : {}),
    });
  }

  function release(session: Session): void {
    if (sessions.get(session.key) === session) sessions.delete(session.key);
  }

  function onRead(req: RequestPacket, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = sessions.get(key);
    if (existing) {
      // A client that heard nothing yet retransmits its RRQ (RFC 1350 section 2); our transfer already
      // retransmits on its own timer, and a second transfer would only draw ERROR 5 from the client.
      if (existing.file === req.filename && !existing.transfer?.heardFromClient) {
        log.debug({ peer: key, file: req.filename }, 'retransmitted request ignored');
        return;
      }
      // Same endpoint, a new request after progress: the client restarted; the old transfer is moot.
      existing.transfer?.abort('superseded by a new request from the same client port');
      sessions.delete(key);
    }
    if (req.mode !== 'octet') {
      // Boot ROMs always use octet; netascii would make tsize and block offsets depend on content.
      refuse(rinfo, ErrorCode.NOT_DEFINED, 'Only octet (binary) mode is supported', {
        file: req.filename,
        mode: req.mode,
      });
      return;
    }
    if (sessions.size >= settings.maxTransfers) {
      refuse(rinfo, ErrorCode.NOT_DEFINED, 'Server busy', {
        file: req.filename,
        reason: 'maxTransfers reached',
      });
      return;
    }
    const session: Session = { key, file: req.filename, transfer: null };
    sessions.set(key, session);
    const done = serveRead(req, rinfo, session).catch((err: unknown) => {
      // Not expected (every step handles its own failures); logged so it is never silent.
      release(session);
      counts.failed++;
      log.error({ peer: key, file: req.filename, err }, 'transfer crashed');
    });
    finishing.add(done);
    void done.finally(() => finishing.delete(done));
  }

  listener.on('message', (msg, rinfo) => {
    if (closing) return;
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      malformed.report(`${rinfo.address}:${rinfo.port}`, decoded.reason, decoded.detail);
      return;
    }
    const packet = decoded.packet;
    switch (packet.op) {
      case 'RRQ':
        onRead(packet, rinfo);
        return;
      case 'WRQ':
        // Corral's boot root is read-only over the network.
        refuse(rinfo, ErrorCode.ACCESS_VIOLATION, 'Write requests are not accepted', {
          file: packet.filename,
        });
        return;
      case 'DATA':
      case 'ACK':
        // These belong to a transfer, and no transfer lives on the listening port.
        replyError(rinfo, ErrorCode.UNKNOWN_TID, 'Unknown transfer ID');
        return;
      case 'ERROR':
      case 'OACK':
        // Never answer an ERROR (RFC 1350 section 7), and an OACK is only ever sent by a server.
        return;
    }
  });

  let closed: Promise<void> | null = null;
  async function close(): Promise<void> {
    closing = true;
    for (const session of sessions.values()) {
      session.transfer?.abort('server closing', {
        code: ErrorCode.NOT_DEFINED,
        message: 'Server shutting down',
      });
    }
    await closeSocket(listener);
    await Promise.all([...finishing]);
  }

  listener.on('error', (err) => {
    // The only failure that stops the server: without its listening socket it cannot take requests.
    log.error({ err, address: settings.address, port }, 'TFTP listening socket failed; server stopped');
    closed ??= close();
  });

  log.info(
    { address: settings.address, port, root: settings.rootReal, ...settings.limits },
    'TFTP server listening',
  );

  return {
    port,
    close: () => (closed ??= close()),
    stats: () => ({ active: sessions.size, ...counts }),
  };
}
