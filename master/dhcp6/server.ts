/**
 * The DHCPv6 socket layer (RFC 8415 §7.2): one UDP socket on [::]:547 that joins All_DHCP_Relay_Agents_and_Servers
 * (ff02::1:2) on the provisioning interface; decode → decide6() → commit the binding effects → send.
 * Everything that decides lives in policy.ts; this file only moves bytes.
 *
 * No datagram may stop the master: one from source port 0 or a multicast/unspecified source is dropped
 * unread and counted; a malformed one (truncated option, length overrun, relay nesting over 8) is counted
 * and logged (rate-limited); the handler is guarded so an exception is a counted fault, never a crash.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Lease6Store } from '../store/dhcp6-leases.js';
import { CorralError } from '../util/errors.js';
import { SubsystemFaults } from '../util/faults.js';
import type { Logger } from '../util/logger.js';
import { impossibleSource } from '../util/udp-source.js';
import { formatIPv6 } from './address.js';
import type { BootActivitySink } from '../boot/activity.js';
import { Lease6Allocator } from './allocator.js';
import { decodeMessage6, encodeMessage6, MSG_NAMES, type Message6 } from './codec.js';
import { decide6, type Decision6, type Policy6Config } from './policy.js';

export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS = 'ff02::1:2';

export interface Dhcp6ServerOptions {
  /** The provisioning interface: the multicast group is joined there, and link-local replies leave there. */
  interfaceName: string;
  port?: number;
  range: [bigint, bigint];
  policy: Policy6Config;
  leases: Lease6Store;
  logger: Logger;
  faults?: SubsystemFaults;
  now?: () => number;
  /**
   * A binding was stored (REQUEST, RENEW, REBIND, Rapid Commit) for a client whose MAC is known (DUID-LL/LLT
   * or relay option 79), as DHCPv4's onBound: the master records it as the node's address.
   */
  onBound?: (mac: string, address: string) => void;
  /** Whether a MAC's node is recorded at an address (allocator.ts: not given to another client meanwhile). */
  nodeHolds?: (address: string, mac: string) => boolean;
  /** The boot timeline: a firmware's (or iPXE's) boot SOLICIT/REQUEST is a `dhcp` step of its MAC. */
  activity?: BootActivitySink;
}

export interface Dhcp6Stats {
  received: number;
  malformed: number;
  droppedSource: number;
  ignored: number;
  replies: number;
  noAddrs: number;
  storeErrors: number;
  sendErrors: number;
  bound: number;
}

export interface Dhcp6Server {
  readonly port: number;
  stats(): Dhcp6Stats;
  close(): Promise<void>;
}

function bind(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
    socket.once('error', reject);
    socket.bind({ address: '::', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** Link-local peers need their zone for the reply to leave on the right interface. */
export function withZone(address: string, iface: string): string {
  return /^fe[89ab]/i.test(address) && !address.includes('%') ? `${address}%${iface}` : address;
}

export async function startDhcp6Server(opts: Dhcp6ServerOptions): Promise<Dhcp6Server> {
  const now = opts.now ?? Date.now;
  const logger = opts.logger.child({ module: 'dhcp6', iface: opts.interfaceName });
  const faults = opts.faults ?? new SubsystemFaults('dhcp6', logger, now);
  const allocator = new Lease6Allocator(
    opts.leases,
    opts.range[0],
    opts.range[1],
    undefined,
    undefined,
    opts.nodeHolds,
  );
  const counters = {
    received: 0,
    malformed: 0,
    droppedSource: 0,
    ignored: 0,
    replies: 0,
    noAddrs: 0,
    storeErrors: 0,
    sendErrors: 0,
  };
  let socket: Socket;
  try {
    socket = await bind(opts.port ?? 547);
    socket.addMembership(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, `::%${opts.interfaceName}`);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CorralError(
      'CONFIG_INVALID',
      `dhcp6: cannot listen on UDP port ${opts.port ?? 547} of ${opts.interfaceName}: ${e.message} (is dhcp6.interface an interface with IPv6, and no other DHCPv6 server running?)`,
    );
  }

  let outbox: { message: Message6; address: string; port: number }[] = [];
  let bound: { mac: string; address: string }[] = [];
  let scheduled = false;
  let malformedLogged = 0;
  const flush = (): void => {
    scheduled = false;
    const replies = outbox;
    const binds = bound;
    outbox = [];
    bound = [];
    try {
      allocator.flush();
    } catch (err) {
      counters.storeErrors++;
      logger.error({ err, dropped: replies.length }, 'could not record DHCPv6 leases; replies not sent');
      return;
    }
    for (const b of binds) {
      try {
        opts.onBound?.(b.mac, b.address);
      } catch (err) {
        logger.error({ err, mac: b.mac, address: b.address }, 'onBound callback failed');
      }
    }
    for (const r of replies) {
      const bytes = encodeMessage6(r.message);
      socket.send(bytes, r.port, r.address, (err) => {
        if (err) {
          counters.sendErrors++;
          logger.warn({ err: err.message, to: r.address }, 'could not send DHCPv6 reply');
        }
      });
      counters.replies++;
    }
  };
  const guardedFlush = faults.guard('dhcp6 commit', flush);

  const onMessage = (buf: Buffer, rinfo: RemoteInfo): void => {
    counters.received++;
    const impossible = impossibleSource(rinfo.address, rinfo.port, false);
    if (impossible) {
      counters.droppedSource++;
      faults.drop(impossible, `[${rinfo.address}]:${rinfo.port}`);
      return;
    }
    const decoded = decodeMessage6(buf);
    if (!decoded.ok) {
      counters.malformed++;
      // At most 10 lines per minute of the process: a flood must not flood the log.
      if (malformedLogged++ < 10)
        logger.warn(
          { from: rinfo.address, bytes: buf.length, reason: decoded.reason },
          'dropped malformed DHCPv6 message',
        );
      return;
    }
    const t = now();
    const d: Decision6 = decide6(
      decoded.message,
      { address: withZone(rinfo.address, opts.interfaceName), port: rinfo.port },
      opts.policy,
      allocator,
      t,
    );
    for (const e of d.effects) {
      allocator.apply(e, t);
      if (e.kind === 'bind' && e.mac && opts.onBound)
        bound.push({ mac: e.mac, address: formatIPv6(e.address) });
    }
    if (d.boot && opts.activity) {
      const given = d.effects[0]?.address;
      opts.activity.record(d.boot.mac, {
        kind: 'dhcp',
        message: d.boot.message,
        reply: d.boot.reply,
        pxe: true,
        arch: d.boot.arch,
        vendorClass: d.boot.vendorClass,
        userClass: d.boot.userClass,
        bootFile: d.boot.bootFile,
        ip: given === undefined ? null : formatIPv6(given),
        clientIp: null,
        note: d.note,
        problem: null,
      });
    }
    if (d.tag === 'no-addrs') counters.noAddrs++;
    if (d.tag === 'malformed') counters.malformed++;
    const fields = { from: rinfo.address, type: MSG_NAMES[buf[0] ?? 0] ?? buf[0] };
    // An exhausted range warns on the first refusal and every 100th after it, not once per SOLICIT.
    const quiet = d.tag === 'no-addrs' && counters.noAddrs % 100 !== 1;
    logger[quiet ? 'debug' : d.level](fields, d.note);
    if (!d.reply) {
      counters.ignored++;
      if (!d.effects.length) return;
    } else outbox.push(d.reply);
    if (outbox.length >= 256) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(guardedFlush);
    }
  };
  socket.on('message', faults.guard('dhcp6 message', onMessage));
  socket.on('error', (err) => faults.record(err, {}, 'DHCPv6 socket error'));
  logger.info({ port: socket.address().port, prefix: opts.policy.prefix.text }, 'DHCPv6 server listening');

  let closed: Promise<void> | null = null;
  return {
    port: socket.address().port,
    stats: () => ({ ...counters, bound: allocator.bound(now()) }),
    close() {
      closed ??= new Promise<void>((resolve) => {
        flush();
        socket.close(() => resolve());
      });
      return closed;
    },
  };
}
