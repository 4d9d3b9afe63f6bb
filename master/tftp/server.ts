/**
 * The TFTP socket server: reads requests on the listening port and gives each read transfer its own
 * ephemeral UDP socket, whose port is the server's transfer ID (RFC 1350 section 4). All protocol
 * decisions are in codec.ts, paths.ts, admit.ts and transfer.ts; this file only moves datagrams and keeps
 * count.
 *
 * A malformed datagram is logged once (peer, reason) and dropped; a refused request gets an ERROR packet
 * and a log line; only a failure of the listening socket itself stops the server. Datagrams from an
 * impossible source (port 0, broadcast or multicast address) are dropped unread, and every handler, send
 * and timer is guarded: an exception there is a counted fault of the `tftp` subsystem that ends at most
 * the one transfer it belongs to (issue 14, finding 1).
 */
import dgram from 'node:dgram';
import { realpath, stat } from 'node:fs/promises';
import type { Logger } from '../util/logger.js';
import { CorralError } from '../util/errors.js';
import { RateLimitedLog, SubsystemFaults } from '../util/faults.js';
import { impossibleSource } from '../util/udp-source.js';
import { admit } from './admit.js';
import { decodePacket, encodeError, ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE } from './codec.js';
import type { DecodeFailure, RequestPacket } from './codec.js';
import { normalizeRequestPath, openInRoot } from './paths.js';
import { BlockReader, bufferSource, fileHandleSource, type FileSource } from './block-reader.js';
import { open } from 'node:fs/promises';
import { negotiateOptions, ReadTransfer, realTimers } from './transfer.js';
import type { NegotiationLimits, Timers } from './transfer.js';
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
  /**
   * Concurrent transfers; further requests are left unanswered (admit.ts: deferred) until a slot frees and
   * the client retransmits. Default 256 (2 fds each).
   */
  maxTransfers?: number;
  /** Concurrent transfers per client address (see admit.ts); default 4. */
  maxPerClient?: number;
  /**
   * Retransmission timeout until a client's first ACK, however long a timeout it negotiated (see
   * transfer.ts); default 3000 ms. With the default retries an unanswered transfer ends after 18 s.
   */
  firstAckTimeoutMs?: number;
  /** Where faults and dropped datagrams are counted; the master passes its `tftp` subsystem's. */
  faults?: SubsystemFaults;
  /** The boot timeline (issue 22): transfers and refusals, attributed to a MAC by the peer's address. */
  activity?: BootActivitySink;
  /**
   * Files the master makes rather than keeps in the root (issue 18: network GRUB reads its per-node
   * grub.cfg, kernel and initrd over TFTP only). Asked first, with the normalised name and the client's
   * address; undefined: the root's file, if any. A `path` is the master's own file, opened as is.
   */
  generated?: (relative: string, peer: string) => GeneratedFile | undefined;
}

export type GeneratedFile = { data: Buffer } | { path: string };

/** What a transfer reads: a file of the root, or a generated one. */
interface Served {
  source: FileSource;
  relative: string;
  size: number;
}

export interface TftpStats {
  active: number;
  completed: number;
  failed: number;
  /** Requests answered with an ERROR before any transfer began (path rules, WRQ, mode, busy). */
  refused: number;
  /** Of `refused`: requests over the per-client limit (tftp.maxPerClient). */
  clientLimited: number;
  /** Requests left unanswered because every transfer slot was taken (maxTransfers): the client retries. */
  deferred: number;
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
  maxPerClient: number;
  firstAckTimeoutMs: number;
}

/** One client endpoint's request, from the moment it is accepted (the file may still be opening). */
interface Session {
  /** The client's endpoint, "address:port": its TID. */
  key: string;
  /** The client's address alone, for the per-client limit. */
  address: string;
  file: string;
  transfer: ReadTransfer | null;
  /** When the request was accepted (Date.now()): copies of it read later are told apart by age (admit.ts). */
  startedAt: number;
}

const DEFAULTS = {
  maxBlksize: 1468,
  maxWindowsize: 64,
  retries: 5,
  timeoutMs: 1000,
  // A rack room booting at once (issue 19): at 256, 1000 machines asking for the loader together
  // queued on their own RRQ retransmissions, and iPXE and PXE ROMs give up after ~16 s of silence (442 of
  // 1000 in the boot storm, docs/scale.md); a slow transfer still makes progress and resets their
  // timers. The cost per transfer is a socket, a file handle and up to three 64 KiB chunks.
  maxTransfers: 1024,
  maxPerClient: 4,
  firstAckTimeoutMs: 3000,
};

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
    maxPerClient: integerIn('maxPerClient', opts.maxPerClient ?? DEFAULTS.maxPerClient, 1, 65535),
    firstAckTimeoutMs: integerIn(
      'firstAckTimeoutMs',
      opts.firstAckTimeoutMs ?? DEFAULTS.firstAckTimeoutMs,
      10,
      255_000,
    ),
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
  // IPv6 sockets are IPv6 only, so `::` and `0.0.0.0` (dual-stack http.bind) can both hold port 69.
  const v6only = type === 'udp6' ? { ipv6Only: true } : {};
  const sessions = new Map<string, Session>();
  const finishing = new Set<Promise<void>>();
  const counts = { completed: 0, failed: 0, refused: 0, clientLimited: 0, deferred: 0 };
  const faults = opts.faults ?? new SubsystemFaults('tftp', log);
  // A flood of refused requests (issue 14) must not become a flood of log lines: bounded per kind.
  const refusals = new RateLimitedLog(log);
  let closing = false;

  const listener = dgram.createSocket({ type, ...v6only });
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

  /** Sends an ERROR from `socket`; a send that throws is a fault, not an uncaught exception. */
  function sendError(socket: dgram.Socket, to: dgram.RemoteInfo, code: number, message: string): void {
    const peer = `${to.address}:${to.port}`;
    try {
      socket.send(encodeError(code, message), to.port, to.address, (err) => {
        if (err) log.debug({ peer, err: err.message }, 'error reply not sent');
      });
    } catch (err) {
      faults.record(err, { peer }, 'TFTP error reply could not be sent');
    }
  }

  function replyError(rinfo: dgram.RemoteInfo, code: number, message: string): void {
    sendError(listener, rinfo, code, message);
  }

  function refuse(
    rinfo: dgram.RemoteInfo,
    code: number,
    message: string,
    fields: Record<string, unknown>,
  ): void {
    counts.refused++;
    refusals.write(
      'warn',
      message,
      { peer: `${rinfo.address}:${rinfo.port}`, code, ...fields },
      'request refused',
    );
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

  /** A generated file if the master makes one under this name, else the root's (paths.ts rules). */
  async function openRequested(
    filename: string,
    peer: string,
  ): Promise<({ ok: true } & Served) | Exclude<Awaited<ReturnType<typeof openInRoot>>, { ok: true }>> {
    const name = normalizeRequestPath(filename);
    const made = name.ok ? opts.generated?.(name.relative, peer) : undefined;
    if (name.ok && made) {
      if ('data' in made) {
        return { ok: true, source: bufferSource(made.data), relative: name.relative, size: made.data.length };
      }
      try {
        const handle = await open(made.path, 'r');
        const { size } = await handle.stat().catch(async (err: unknown) => {
          await handle.close();
          throw err;
        });
        return { ok: true, source: fileHandleSource(handle, size), relative: name.relative, size };
      } catch (err) {
        return {
          ok: false,
          code: ErrorCode.FILE_NOT_FOUND,
          reason: `generated ${made.path}: ${String(err)}`,
        };
      }
    }
    const opened = await openInRoot(settings.rootReal, filename);
    if (!opened.ok) return opened;
    return {
      ok: true,
      source: fileHandleSource(opened.handle, opened.size),
      relative: opened.relative,
      size: opened.size,
    };
  }

  /** Resolves the file, or refuses the request; then hands over to runTransfer. */
  async function serveRead(req: RequestPacket, rinfo: dgram.RemoteInfo, session: Session): Promise<void> {
    const opened = await openRequested(req.filename, rinfo.address);
    if (!opened.ok) {
      release(session);
      refuse(rinfo, opened.code, ERROR_TEXT[opened.code] ?? 'Access violation', {
        file: req.filename,
        reason: opened.reason,
      });
      return;
    }
    // RFC 1350 section 4: the transfer gets its own port, the server's TID.
    const socket = dgram.createSocket({ type, ...v6only, lookup: literalAddress });
    try {
      await bindSocket(socket, settings.address, 0);
    } catch (err) {
      await Promise.all([opened.source.close(), closeSocket(socket)]);
      release(session);
      refuse(rinfo, ErrorCode.NOT_DEFINED, 'Server busy', {
        file: req.filename,
        reason: `no transfer socket: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    // The server may have closed, or the client restarted, while the file was opening.
    if (closing || sessions.get(session.key) !== session) {
      await Promise.all([opened.source.close(), closeSocket(socket)]);
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
    opened: Served,
    socket: dgram.Socket,
  ): Promise<void> {
    const peer = session.key;
    const negotiated = negotiateOptions(req.options, opened.size, settings.limits);
    const reader = new BlockReader(opened.source, negotiated.blksize, negotiated.windowsize);
    // A timer callback that throws is this transfer's fault: counted, and the transfer (only) ends.
    const timers: Timers = {
      now: realTimers.now,
      set: (fn, ms) =>
        realTimers.set(() => {
          try {
            fn();
          } catch (err) {
            faults.record(err, { peer, file: req.filename }, 'TFTP transfer timer failed');
            transfer.abort('internal error in a timer');
          }
        }, ms),
    };
    const transfer = new ReadTransfer(
      { ...negotiated, retries: settings.retries, firstAckTimeoutMs: settings.firstAckTimeoutMs },
      reader,
      {
        send(packet, payload) {
          socket.send(payload ? [packet, payload] : packet, rinfo.port, rinfo.address);
        },
        timers,
      },
    );
    session.transfer = transfer;

    socket.on('message', (msg, from) => {
      try {
        if (from.port !== rinfo.port || from.address !== rinfo.address) {
          const impossible = impossibleSource(from.address, from.port, false);
          if (impossible) return faults.drop(impossible, `${from.address}:${from.port}`);
          // RFC 1350 section 4: a packet from a foreign TID gets ERROR 5 and leaves the transfer alone.
          log.debug({ peer, from: `${from.address}:${from.port}` }, 'packet from unknown TID');
          sendError(socket, from, ErrorCode.UNKNOWN_TID, 'Unknown transfer ID');
          return;
        }
        const decoded = decodePacket(msg);
        if (!decoded.ok) {
          malformed.report(peer, decoded.reason, decoded.detail, req.filename);
          return;
        }
        transfer.handle(decoded.packet);
      } catch (err) {
        faults.record(err, { peer, file: req.filename }, 'TFTP transfer packet handling failed');
        transfer.abort('internal error handling a packet');
      }
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

  /** Sessions open for one client address, whatever their source ports. */
  function openFor(address: string): number {
    let n = 0;
    for (const s of sessions.values()) if (s.address === address) n++;
    return n;
  }

  function onRequest(req: RequestPacket, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = sessions.get(key);
    const verdict = admit(
      { op: req.op, mode: req.mode, filename: req.filename, clientAddress: rinfo.address },
      {
        existing: existing
          ? {
              file: existing.file,
              heardFromClient: existing.transfer?.heardFromClient ?? false,
              ageMs: Date.now() - existing.startedAt,
            }
          : null,
        active: sessions.size,
        activeForClient: openFor(rinfo.address),
      },
      { maxTransfers: settings.maxTransfers, maxPerClient: settings.maxPerClient },
    );
    if (verdict.verdict === 'ignore') {
      log.debug({ peer: key, file: req.filename }, `${verdict.why} ignored`);
      return;
    }
    if (verdict.verdict === 'defer') {
      counts.deferred++;
      refusals.write(
        'warn',
        'busy',
        { peer: key, file: req.filename, reason: verdict.detail },
        'request deferred: every transfer slot is taken; the client will retransmit it',
      );
      return;
    }
    if (verdict.verdict === 'refuse') {
      if (verdict.reason === 'client-limit') counts.clientLimited++;
      refuse(rinfo, verdict.code, verdict.message, { file: req.filename, reason: verdict.detail });
      return;
    }
    if (existing && verdict.supersede) {
      existing.transfer?.abort('superseded by a new request from the same client port');
      sessions.delete(key);
    }
    const session: Session = {
      key,
      address: rinfo.address,
      file: req.filename,
      transfer: null,
      startedAt: Date.now(),
    };
    sessions.set(key, session);
    const done = serveRead(req, rinfo, session).catch((err: unknown) => {
      // Not expected (every step handles its own failures); a fault, counted so it is never silent.
      release(session);
      counts.failed++;
      faults.record(err, { peer: key, file: req.filename }, 'TFTP transfer crashed');
    });
    finishing.add(done);
    void done.finally(() => finishing.delete(done));
  }

  const onListenerMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    if (closing) return;
    const impossible = impossibleSource(rinfo.address, rinfo.port, false);
    if (impossible) {
      faults.drop(impossible, `${rinfo.address}:${rinfo.port}`);
      return;
    }
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      malformed.report(`${rinfo.address}:${rinfo.port}`, decoded.reason, decoded.detail);
      return;
    }
    const packet = decoded.packet;
    switch (packet.op) {
      case 'RRQ':
      case 'WRQ':
        onRequest(packet, rinfo);
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
  };
  listener.on('message', faults.guard('tftp request', onListenerMessage));

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
    faults.record(err, { address: settings.address, port }, 'TFTP listening socket failed');
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
