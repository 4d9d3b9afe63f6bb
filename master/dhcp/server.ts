/**
 * The DHCP socket layer: receive a datagram, decode it, ask the policy, commit the lease effects, send the
 * reply. Everything that decides lives in policy.ts, pxe.ts and allocator.ts; this file only moves bytes.
 *
 * Sockets (all with SO_REUSEADDR, which is what lets the first two share port 67):
 *  - 0.0.0.0:67 receives broadcasts (clients without an address);
 *  - serverAddress:67 receives unicasts (renewals, relays, perfdhcp) and sends every reply on port 67:
 *    bound to our address, a reply to 255.255.255.255 leaves through the interface that holds that
 *    address (Linux picks the device from the source address for limited broadcasts), not through
 *    whatever interface the default route names;
 *  - in proxyDHCP mode, 0.0.0.0:4011 for PXE boot server requests, answered from the same socket.
 *
 * No datagram may stop the master (issue 14, finding 1): one from an impossible source (port 0, a
 * broadcast or multicast address) is dropped unread, and the message handler, every send, the commit
 * and the sweep are guarded, so an exception in them is a counted fault of the `dhcp` subsystem.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { LeaseRecord, LeaseStore } from '../store/leases.js';
import { CorralError } from '../util/errors.js';
import { SubsystemFaults } from '../util/faults.js';
import type { Logger } from '../util/logger.js';
import { impossibleSource } from '../util/udp-source.js';
import { LeaseAllocator } from './allocator.js';
import {
  DHCPACK,
  DHCPNAK,
  DHCPOFFER,
  MESSAGE_TYPE_NAMES,
  decodePacket,
  encodePacket,
  type DhcpPacket,
} from './codec.js';
import { parseIp, validatePools, type PoolSpec } from './pool.js';
import { decide, type Arrival, type Decision, type PolicyConfig } from './policy.js';
import type { BootConfig } from './pxe.js';
import { dhcpStep, type BootActivitySink } from '../boot/activity.js';

export interface DhcpServerOptions {
  /** `server` leases addresses; `proxy` answers PXE clients with boot information only, beside another DHCP server. */
  mode: 'server' | 'proxy';
  /** Our address: option 54 (server identifier), and the address the reply socket binds. */
  serverAddress: string;
  /** The provisioning interface, for log lines only (a UDP socket cannot be tied to one; see docs/dhcp.md). */
  interfaceName?: string;
  /** Address of the broadcast-receiving socket; 0.0.0.0 unless the host's firewall design says otherwise. */
  bindAddress?: string;
  /** 67 unless testing. */
  port?: number;
  /** 4011 (PXE boot server port), proxy mode only. */
  proxyPort?: number;
  /** Server mode: at least one; the first is the local segment, the others are picked by a relay's giaddr. */
  pools: PoolSpec[];
  leaseSeconds: number;
  boot: BootConfig;
  leases: LeaseStore;
  logger: Logger;
  /** Milliseconds since the epoch; tests pass their own clock. */
  now?: () => number;
  offerHoldSeconds?: number;
  declineQuarantineSeconds?: number;
  /** How often expired leases are marked so in the store (decisions never depend on it). Default 60 s. */
  sweepIntervalMs?: number;
  /** Called after a binding is committed and before its DHCPACK is sent; the master records the node's ip. */
  onBound?: (mac: string, ip: string, hostname: string | null) => void;
  /** Where faults and dropped datagrams are counted; the master passes its `dhcp` subsystem's. */
  faults?: SubsystemFaults;
  /** The boot timeline (issue 22): one step per request from a boot ROM or a followed MAC. */
  activity?: BootActivitySink;
}

export interface DhcpStats {
  received: number;
  malformed: number;
  ignored: number;
  discovers: number;
  requests: number;
  declines: number;
  releases: number;
  informs: number;
  offers: number;
  acks: number;
  naks: number;
  poolExhausted: number;
  storeErrors: number;
  sendErrors: number;
  leasesBound: number;
}

export interface DhcpServer {
  /** The ports actually bound (useful when 0 was asked for). */
  readonly ports: { dhcp: number; pxe: number | null };
  close(): Promise<void>;
  stats(): DhcpStats;
}

const TYPE_COUNTERS: Partial<Record<number, 'discovers' | 'requests' | 'declines' | 'releases' | 'informs'>> =
  {
    1: 'discovers',
    3: 'requests',
    4: 'declines',
    7: 'releases',
    8: 'informs',
  };

function validate(opts: DhcpServerOptions): PolicyConfig {
  const bad = (what: string): never => {
    throw new CorralError('CONFIG_INVALID', `dhcp: ${what}`);
  };
  if (opts.mode !== 'server' && opts.mode !== 'proxy')
    bad(`mode must be "server" or "proxy", not "${String(opts.mode)}"`);
  if (parseIp(opts.serverAddress) === null) bad(`server address "${opts.serverAddress}" is not IPv4`);
  if (!Number.isInteger(opts.leaseSeconds) || opts.leaseSeconds < 60 || opts.leaseSeconds > 0x7fffffff) {
    bad(`lease time ${opts.leaseSeconds} s must be a whole number of seconds, at least 60`);
  }
  const boot = opts.boot;
  if (parseIp(boot.tftpServer) === null) bad(`boot.tftpServer "${boot.tftpServer}" is not IPv4`);
  if (!/^https?:\/\/[^/\s]+/.test(boot.httpBaseUrl))
    bad(`boot.httpBaseUrl "${boot.httpBaseUrl}" is not an http:// URL`);
  for (const [key, file] of [
    ['biosFile', boot.biosFile],
    ['uefiFile', boot.uefiFile],
    ['ia32UefiFile', boot.ia32UefiFile ?? boot.uefiFile],
    ['arm64UefiFile', boot.arm64UefiFile ?? boot.uefiFile],
  ] as const) {
    if (file.length === 0 || Buffer.byteLength(file, 'latin1') > 127) bad(`boot.${key} must be 1..127 bytes`);
  }
  const pools =
    opts.mode === 'proxy' && opts.pools.length === 0 ? [] : validatePools(opts.pools, opts.serverAddress);
  return Object.freeze({
    mode: opts.mode,
    serverAddress: opts.serverAddress,
    pools,
    leaseSeconds: opts.leaseSeconds,
    boot: Object.freeze({ ...boot }),
  });
}

/**
 * Keeps a flood of bad packets or repeated warnings from flooding the log: per key, `limit` lines per
 * window, then one line saying how many were suppressed.
 */
class LogLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly limit = 10,
    private readonly windowMs = 10_000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.windowMs) {
      if (w && w.count > this.limit)
        this.logger.warn({ suppressed: w.count - this.limit, key }, 'similar warnings suppressed');
      w = { start: t, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    if (w.count <= this.limit) this.logger.warn(fields, msg);
  }
}

/**
 * Receive buffer asked for the DHCP socket. A rack powering on sends a DHCPDISCOVER per machine within a
 * second, and their PXE retransmissions (4, 8, 16, 32 s) come in the same bursts; the kernel's default
 * (net.core.rmem_default, 208 KiB: a few hundred datagrams with their overhead) drops the rest whenever the
 * event loop is late. The boot storm at N=1000 (docs/scale.md) had 111 machines never answered in 60 s.
 * Linux caps it at net.core.rmem_max.
 */
const RECV_BUFFER_BYTES = 4 << 20;

function bindSocket(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const fail = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', fail);
    socket.bind({ address, port }, () => {
      socket.off('error', fail);
      socket.setBroadcast(true);
      try {
        socket.setRecvBufferSize(RECV_BUFFER_BYTES);
      } catch {
        // Refused: the kernel's default stays; the server works, with less room for a burst.
      }
      resolve(socket);
    });
  });
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const config = validate(opts);
  const now = opts.now ?? Date.now;
  const logger = opts.logger.child({
    module: 'dhcp',
    mode: config.mode,
    ...(opts.interfaceName ? { iface: opts.interfaceName } : {}),
  });
  const limiter = new LogLimiter(logger, now);
  const faults = opts.faults ?? new SubsystemFaults('dhcp', logger, now);
  const allocator = new LeaseAllocator({
    leases: opts.leases,
    logger,
    offerHoldMs: (opts.offerHoldSeconds ?? 30) * 1000,
    declineQuarantineMs: (opts.declineQuarantineSeconds ?? 600) * 1000,
  });
  const counters: Omit<DhcpStats, 'leasesBound'> = {
    received: 0,
    malformed: 0,
    ignored: 0,
    discovers: 0,
    requests: 0,
    declines: 0,
    releases: 0,
    informs: 0,
    offers: 0,
    acks: 0,
    naks: 0,
    poolExhausted: 0,
    storeErrors: 0,
    sendErrors: 0,
  };

  const port = opts.port ?? 67;
  const sockets: Socket[] = [];
  let replySocket: Socket;
  let pxeSocket: Socket | null = null;
  try {
    const broadcastSocket = await bindSocket(opts.bindAddress ?? '0.0.0.0', port);
    sockets.push(broadcastSocket);
    replySocket = await bindSocket(config.serverAddress, broadcastSocket.address().port);
    sockets.push(replySocket);
    if (config.mode === 'proxy') {
      pxeSocket = await bindSocket(opts.bindAddress ?? '0.0.0.0', opts.proxyPort ?? 4011);
      sockets.push(pxeSocket);
    }
  } catch (err) {
    await Promise.all(sockets.map(closeSocket));
    const e = err as NodeJS.ErrnoException;
    const hint =
      e.code === 'EADDRNOTAVAIL'
        ? `${config.serverAddress} is not an address of this host`
        : e.code === 'EACCES'
          ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
          : 'is another DHCP server running on this host?';
    throw new CorralError(
      'CONFIG_INVALID',
      `dhcp: cannot listen on UDP port ${port}: ${e.message} (${hint})`,
    );
  }

  // Replies wait in the outbox until the lease writes staged before them are committed (group commit,
  // see allocator.ts): one transaction per event-loop turn instead of one per DHCPACK.
  interface Outgoing {
    socket: Socket;
    packet: DhcpPacket;
    address: string;
    port: number;
  }
  let outbox: Outgoing[] = [];
  let boundRows: LeaseRecord[] = [];
  let flushScheduled = false;
  /** Bounds the replies held back for one commit (and the memory a burst can pin). */
  const MAX_BATCH = 256;

  const send = ({ socket, packet, address, port: toPort }: Outgoing): void => {
    const type = packet.options.messageType;
    if (type === DHCPOFFER) counters.offers++;
    else if (type === DHCPACK) counters.acks++;
    else if (type === DHCPNAK) counters.naks++;
    let bytes: Buffer;
    try {
      bytes = encodePacket(packet);
    } catch (err) {
      // The policy built a reply the codec cannot encode: a bug, logged, and the server goes on.
      logger.error({ err, xid: packet.xid, mac: packet.chaddr }, 'could not encode DHCP reply');
      return;
    }
    try {
      socket.send(bytes, toPort, address, (err) => {
        if (err) {
          counters.sendErrors++;
          limiter.warn(
            'send',
            { err: err.message, to: `${address}:${toPort}`, xid: packet.xid },
            'could not send DHCP reply',
          );
        }
      });
    } catch (err) {
      // dgram throws synchronously for a destination it rejects outright (port 0, a closed socket).
      counters.sendErrors++;
      faults.record(err, { to: `${address}:${toPort}`, xid: packet.xid }, 'DHCP reply could not be sent');
    }
  };

  const flush = (): void => {
    flushScheduled = false;
    const replies = outbox;
    const bound = boundRows;
    outbox = [];
    boundRows = [];
    try {
      allocator.flush();
    } catch (err) {
      counters.storeErrors++;
      logger.error(
        { err, dropped: replies.length },
        'could not record leases; the replies that depended on them were not sent',
      );
      return;
    }
    if (opts.onBound) {
      for (const row of bound) {
        try {
          opts.onBound(row.mac, row.ip, row.hostname);
        } catch (err) {
          logger.error({ err, mac: row.mac, ip: row.ip }, 'onBound callback failed');
        }
      }
    }
    for (const reply of replies) send(reply);
  };

  const guardedFlush = faults.guard('dhcp commit', flush);
  const scheduleFlush = (): void => {
    if (outbox.length >= MAX_BATCH) flush();
    else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(guardedFlush);
    }
  };

  const onMessage = (buf: Buffer, rinfo: RemoteInfo, via: Arrival['port']): void => {
    counters.received++;
    const impossible = impossibleSource(rinfo.address, rinfo.port, true);
    if (impossible) {
      faults.drop(impossible, `${rinfo.address}:${rinfo.port}`);
      return;
    }
    const decoded = decodePacket(buf);
    if (!decoded.ok) {
      counters.malformed++;
      const { reason, xid, chaddr } = decoded.error;
      limiter.warn(
        'malformed',
        {
          from: `${rinfo.address}:${rinfo.port}`,
          bytes: buf.length,
          reason,
          ...(xid !== undefined ? { xid, mac: chaddr } : {}),
        },
        'dropped malformed DHCP packet',
      );
      return;
    }
    const req = decoded.packet;
    const type = req.options.messageType ?? 0;
    const counter = TYPE_COUNTERS[type];
    if (counter) counters[counter]++;
    const t = now();
    const fields = {
      mac: req.chaddr,
      xid: req.xid,
      type: MESSAGE_TYPE_NAMES[type] ?? type,
      from: rinfo.address,
    };
    let decision: Decision;
    try {
      decision = decide(
        req,
        { port: via, source: { address: rinfo.address, port: rinfo.port } },
        config,
        allocator,
        t,
      );
      for (const effect of decision.effects) {
        const bound = allocator.apply(effect, t);
        if (bound) boundRows.push(bound);
      }
    } catch (err) {
      // A decision that throws is a bug; one client must not stop the server.
      logger.error({ ...fields, err }, 'DHCP policy failed');
      return;
    }
    if (decision.tag === 'pool-exhausted') counters.poolExhausted++;
    if (decision.level === 'warn') limiter.warn(decision.tag ?? 'policy', fields, decision.note);
    else logger[decision.level](fields, decision.note);
    opts.activity?.record(req.chaddr, dhcpStep(req, decision));
    if (decision.reply) {
      const socket = via === 'pxe' && pxeSocket ? pxeSocket : replySocket;
      outbox.push({
        socket,
        packet: decision.reply.packet,
        address: decision.reply.to.address,
        port: decision.reply.to.port,
      });
    } else {
      counters.ignored++;
    }
    if (decision.effects.length > 0 || decision.reply) scheduleFlush();
  };

  for (const socket of sockets) {
    const via: Arrival['port'] = socket === pxeSocket ? 'pxe' : 'dhcp';
    socket.on(
      'message',
      faults.guard('dhcp message', (buf: Buffer, rinfo: RemoteInfo) => onMessage(buf, rinfo, via)),
    );
    socket.on('error', (err) => faults.record(err, { via }, 'DHCP socket error'));
  }

  const sweep = (): void => {
    const expired = allocator.sweep(now());
    if (expired > 0) logger.info({ expired }, 'leases expired');
    flush();
  };
  sweep();
  const timer = setInterval(faults.guard('dhcp lease sweep', sweep), opts.sweepIntervalMs ?? 60_000);
  timer.unref();

  logger.info(
    {
      address: config.serverAddress,
      port: replySocket.address().port,
      pxePort: pxeSocket?.address().port ?? null,
      pools: config.pools.map((p) => p.subnet),
    },
    config.mode === 'proxy' ? 'proxyDHCP listening' : 'DHCP server listening',
  );

  let closed: Promise<void> | null = null;
  return {
    ports: { dhcp: replySocket.address().port, pxe: pxeSocket?.address().port ?? null },
    close(): Promise<void> {
      closed ??= (async () => {
        clearInterval(timer);
        flush();
        await Promise.all(sockets.map(closeSocket));
        logger.info('DHCP server stopped');
      })();
      return closed;
    },
    stats(): DhcpStats {
      return { ...counters, leasesBound: allocator.boundCount(now()) };
    },
  };
}
