/**
 * The DHCP decision (pure): a decoded request, where it arrived, the frozen config and a read-only view
 * of the leases → the reply to send (and where), the lease changes to commit first, and a note for the
 * log. No I/O and no clock of its own: the server applies the effects, then sends.
 *
 * Section numbers are RFC 2131's unless stated otherwise.
 */
import type { Availability, LeaseEffect, LeaseView } from './allocator.js';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DHCPACK,
  DHCPDECLINE,
  DHCPDISCOVER,
  DHCPINFORM,
  DHCPNAK,
  DHCPOFFER,
  DHCPRELEASE,
  DHCPREQUEST,
  FLAG_BROADCAST,
  MESSAGE_TYPE_NAMES,
  OPT,
  PXE,
  PXE_DISCOVERY_USE_BOOTFILE,
  decodePxeVendorOptions,
  encodePxeVendorOptions,
  type DhcpPacket,
} from './codec.js';
import { OPT_DOMAIN_SEARCH } from './domain-search.js';
import { formatIp, parseIp, poolContaining, type Pool } from './pool.js';
import { chooseBoot, isHttpClient, isIpxe, isPxeClient, type BootChoice, type BootConfig } from './pxe.js';

export type { LeaseEffect };

export interface PolicyConfig {
  readonly mode: 'server' | 'proxy';
  /** Our address: option 54 (server identifier) in every reply. */
  readonly serverAddress: string;
  /** First pool: the master's own segment; the others are chosen by a relay's giaddr. Empty in proxy mode. */
  readonly pools: readonly Pool[];
  readonly leaseSeconds: number;
  readonly boot: BootConfig;
}

/** Where a request came in: UDP 67 (`dhcp`) or the PXE boot server port 4011 (`pxe`), and from whom. */
export interface Arrival {
  port: 'dhcp' | 'pxe';
  source: { address: string; port: number };
}

export interface Destination {
  address: string;
  port: number;
  why: string;
}

export interface Decision {
  /** Effects are committed before the reply is sent; if committing fails, nothing is sent. */
  effects: LeaseEffect[];
  reply: { packet: DhcpPacket; to: Destination } | null;
  note: string;
  /** `warn` when the operator should act (pool exhausted, address declined, relay on no subnet). */
  level: 'debug' | 'info' | 'warn';
  /** For counters and log rate limits: which operator-relevant event this was. */
  tag?: 'pool-exhausted' | 'declined' | 'unknown-relay';
}

const ZERO = '0.0.0.0';
const BROADCAST = '255.255.255.255';
const SERVER_PORT = 67;
const CLIENT_PORT = 68;

function silent(
  note: string,
  level: Decision['level'] = 'debug',
  effects: LeaseEffect[] = [],
  tag?: Decision['tag'],
): Decision {
  return { effects, reply: null, note, level, ...(tag ? { tag } : {}) };
}

function typeName(type: number): string {
  return MESSAGE_TYPE_NAMES[type] ?? `message type ${type}`;
}

/**
 * What to do with one client message (RFC 2131 §4.3; proxyDHCP per PXE 2.1). Reads the leases through
 * `view`, changes nothing: lease changes come back as `effects` for the server to commit.
 */
export function decide(
  req: DhcpPacket,
  arrival: Arrival,
  config: PolicyConfig,
  view: LeaseView,
  now: number,
): Decision {
  if (req.op !== BOOTREQUEST) return silent('not a BOOTREQUEST');
  const type = req.options.messageType;
  if (type === undefined) return silent('BOOTP request without option 53: plain BOOTP is not served', 'info');
  if (req.htype !== 1 || req.hlen !== 6) {
    return silent(
      `hardware type ${req.htype} length ${req.hlen} is not Ethernet; leases are keyed by MAC`,
      'info',
    );
  }
  if (config.mode === 'proxy') return decideProxy(req, type, arrival, config);
  if (arrival.port === 'pxe') return silent('port 4011 is served in proxyDHCP mode only');

  const pool = selectPool(req, config.pools);
  if (!pool) {
    return silent(
      `${typeName(type)} via relay ${req.giaddr}: no pool's subnet holds that address`,
      'warn',
      [],
      'unknown-relay',
    );
  }
  switch (type) {
    case DHCPDISCOVER:
      return discover(req, pool, config, view, now);
    case DHCPREQUEST:
      return request(req, pool, config, view, now);
    case DHCPDECLINE:
      return decline(req, config);
    case DHCPRELEASE:
      return release(req, config);
    case DHCPINFORM:
      return inform(req, pool, config, view);
    default:
      return silent(`${typeName(type)} is not a client message`);
  }
}

/**
 * The subnet a message is for. Relayed: the relay's, by giaddr (§4.3.1). Not relayed but with ciaddr set,
 * whatever the message type: the client already has an address and names its subnet by it. A RENEWING
 * DHCPREQUEST "will be unicast, so no relay agents will be involved in its transmission. Because 'giaddr'
 * is therefore not filled in, the DHCP server will trust the value in 'ciaddr'" (§4.3.2), and a
 * DHCPINFORM's client has its address too (§4.3.5): a rack node that leased through a relay renews
 * straight to us, and must be matched against its rack's pool, not ours. Otherwise the message came from
 * our own segment: pools[0]. A ciaddr on no pool's subnet falls back to pools[0] too, whose check then
 * NAKs a DHCPREQUEST for that address as on the wrong subnet.
 */
function selectPool(req: DhcpPacket, pools: readonly Pool[]): Pool | undefined {
  if (req.giaddr !== ZERO) return poolContaining(pools, parseIp(req.giaddr) ?? 0);
  if (req.ciaddr !== ZERO) return poolContaining(pools, parseIp(req.ciaddr) ?? 0) ?? pools[0];
  return pools[0];
}

function baseReply(req: DhcpPacket, type: number, config: PolicyConfig): DhcpPacket {
  // §4.3.1 table 3: xid, flags, giaddr and chaddr come from the client; hops and secs are 0.
  return {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: ZERO,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options: {
      messageType: type,
      serverId: config.serverAddress,
      // RFC 3046 §2.2: a server that understands option 82 echoes it in every reply.
      ...(req.options.relayAgentInfo ? { relayAgentInfo: req.options.relayAgentInfo } : {}),
      other: new Map(),
    },
  };
}

/** Subnet configuration, and the lease times when an address is leased (§4.4.5: T1 = 0.5, T2 = 0.875). */
function addNetworkConfig(reply: DhcpPacket, pool: Pool, leaseSeconds: number | null): void {
  const o = reply.options;
  o.subnetMask = formatIp(pool.mask);
  if (pool.router) o.routers = [pool.router];
  if (pool.dns.length) o.dnsServers = [...pool.dns];
  if (pool.domain) o.domainName = pool.domain;
  if (pool.searchOption) o.other.set(OPT_DOMAIN_SEARCH, pool.searchOption);
  if (leaseSeconds !== null) {
    o.leaseTime = leaseSeconds;
    o.renewalTime = Math.floor(leaseSeconds * 0.5);
    o.rebindingTime = Math.floor(leaseSeconds * 0.875);
  }
}

function requested(req: DhcpPacket, code: number): boolean {
  return req.options.paramRequestList?.includes(code) ?? false;
}

/** The BOOTP file field holds 127 bytes and a NUL. */
const FILE_FIELD_MAX = 127;

/**
 * Boot information. PXE ROMs read siaddr and the `file` field (PXE 2.1 §2.2); options 66/67 go in too
 * when the client asks for them (RFC 2132 §9.4/9.5), and 67 always when a URL is too long for `file`.
 */
function addBoot(reply: DhcpPacket, req: DhcpPacket, boot: BootConfig): BootChoice {
  const choice = chooseBoot(req.options, req.chaddr, boot);
  const o = reply.options;
  if (choice.kind === 'tftp') {
    reply.siaddr = choice.server;
    reply.file = choice.file;
    if (requested(req, OPT.TFTP_SERVER_NAME)) o.tftpServerName = choice.server;
    if (requested(req, OPT.BOOTFILE_NAME)) o.bootfileName = choice.file;
  } else if (choice.kind === 'http') {
    const fits = Buffer.byteLength(choice.url, 'latin1') <= FILE_FIELD_MAX;
    if (fits) reply.file = choice.url;
    if (!fits || requested(req, OPT.BOOTFILE_NAME)) o.bootfileName = choice.url;
  } else if (choice.kind === 'uefi-http') {
    // UEFI 2.5+ §24.7.2 (EDK2 HttpBootDhcp4ParseOffer): an offer counts as an HTTP boot offer only when
    // option 60 says "HTTPClient", and its URI is read from option 67 first, so both always go in.
    if (Buffer.byteLength(choice.url, 'latin1') <= FILE_FIELD_MAX) reply.file = choice.url;
    o.bootfileName = choice.url;
    o.vendorClassId = 'HTTPClient';
  }
  return choice;
}

function bootNote(choice: BootChoice): string {
  if (choice.kind === 'tftp') return `, boot ${choice.file} (arch ${choice.arch})`;
  if (choice.kind === 'http') return `, boot script ${choice.url}`;
  if (choice.kind === 'uefi-http') return `, UEFI HTTP boot ${choice.url} (arch ${choice.arch})`;
  return '';
}

/** A reservation's hostname goes to the client as option 12. Returns it for the lease record. */
function addHostname(reply: DhcpPacket, mac: string, view: LeaseView): string | null {
  const hostname = view.reservationFor(mac)?.hostname ?? null;
  if (hostname) reply.options.hostname = hostname;
  return hostname;
}

/**
 * §4.1: where a reply goes. A renewing client off our segment gets its DHCPACK unicast to ciaddr like any
 * other ("If the 'giaddr' field is zero and the 'ciaddr' field is nonzero, then the server unicasts
 * DHCPOFFER and DHCPACK messages to the address in 'ciaddr'"), routed back the way its request came.
 */
function destination(req: DhcpPacket, type: number): Destination {
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: SERVER_PORT, why: 'relay agent (giaddr)' };
  if (type === DHCPNAK) return { address: BROADCAST, port: CLIENT_PORT, why: 'DHCPNAK is always broadcast' };
  if (req.ciaddr !== ZERO)
    return { address: req.ciaddr, port: CLIENT_PORT, why: 'client has an address (ciaddr)' };
  // §4.1 would unicast to chaddr/yiaddr when the broadcast bit is clear, which needs an ARP entry we
  // cannot set from a UDP socket; every client we serve also accepts the broadcast.
  const why = req.flags & FLAG_BROADCAST ? 'broadcast flag' : 'client has no address yet';
  return { address: BROADCAST, port: CLIENT_PORT, why };
}

function replyTo(req: DhcpPacket, packet: DhcpPacket): { packet: DhcpPacket; to: Destination } {
  return { packet, to: destination(req, packet.options.messageType ?? 0) };
}

/** §4.3.1 */
function discover(req: DhcpPacket, pool: Pool, config: PolicyConfig, view: LeaseView, now: number): Decision {
  const mac = req.chaddr;
  const choice = view.choose(mac, pool, req.options.requestedIp ?? null, now);
  if (!choice)
    return silent(`pool ${pool.subnet} exhausted: no address to offer ${mac}`, 'warn', [], 'pool-exhausted');
  const reply = baseReply(req, DHCPOFFER, config);
  reply.yiaddr = choice.ip;
  addNetworkConfig(reply, pool, config.leaseSeconds);
  addHostname(reply, mac, view);
  const boot = addBoot(reply, req, config.boot);
  const note = `DHCPOFFER ${choice.ip} (${choice.source})${bootNote(boot)}`;
  return {
    effects: [{ kind: 'hold', mac, ip: choice.ip }],
    reply: replyTo(req, reply),
    note: choice.warning ? `${note}; ${choice.warning}` : note,
    level: choice.warning ? 'warn' : 'debug',
  };
}

function ack(
  req: DhcpPacket,
  ip: string,
  pool: Pool,
  config: PolicyConfig,
  view: LeaseView,
  how: string,
): Decision {
  const mac = req.chaddr;
  const reply = baseReply(req, DHCPACK, config);
  reply.ciaddr = req.ciaddr; // table 3: "'ciaddr' from DHCPREQUEST or 0"
  reply.yiaddr = ip;
  addNetworkConfig(reply, pool, config.leaseSeconds);
  const reserved = addHostname(reply, mac, view);
  const boot = addBoot(reply, req, config.boot);
  const hostname = req.options.hostname ?? reserved;
  return {
    effects: [
      {
        kind: 'bind',
        mac,
        ip,
        clientId: req.options.clientId?.toString('hex') ?? null,
        hostname,
        leaseSeconds: config.leaseSeconds,
      },
    ],
    reply: replyTo(req, reply),
    note: `DHCPACK ${ip} (${how})${bootNote(boot)}`,
    level: 'info',
  };
}

function nak(req: DhcpPacket, config: PolicyConfig, why: string): Decision {
  const reply = baseReply(req, DHCPNAK, config);
  reply.options.message = why;
  // §4.3.2: a relayed client may not have a usable address, so the relay must broadcast the NAK.
  if (req.giaddr !== ZERO) reply.flags |= FLAG_BROADCAST;
  return { effects: [], reply: replyTo(req, reply), note: `DHCPNAK: ${why}`, level: 'info' };
}

/** §4.3.2: the client's state decides what a DHCPREQUEST means. */
function request(req: DhcpPacket, pool: Pool, config: PolicyConfig, view: LeaseView, now: number): Decision {
  const mac = req.chaddr;
  const o = req.options;
  if (o.serverId !== undefined) {
    // SELECTING: the client answers one server's offer; every other server learns it was not chosen.
    if (o.serverId !== config.serverAddress) {
      return silent(`${mac} chose server ${o.serverId}; offer withdrawn`, 'debug', [{ kind: 'unhold', mac }]);
    }
    const ip = o.requestedIp ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
    if (ip === undefined) return nak(req, config, 'DHCPREQUEST names no address');
    const availability = view.check(mac, ip, pool, now);
    if (availability !== 'ok') return nak(req, config, unavailable(mac, ip, availability, view));
    return ack(req, ip, pool, config, view, 'selecting');
  }
  // INIT-REBOOT names its address in option 50 with ciaddr 0; RENEWING and REBINDING put it in ciaddr.
  const rebooting = req.ciaddr === ZERO;
  const ip = rebooting ? o.requestedIp : req.ciaddr;
  if (ip === undefined) return silent('DHCPREQUEST with no server id, ciaddr or requested address', 'info');
  const state = rebooting ? 'init-reboot' : 'renewing';
  const availability = view.check(mac, ip, pool, now);
  if (availability === 'wrong-subnet') return nak(req, config, `${ip} is not on subnet ${pool.subnet}`);
  if (availability === 'ok' && view.isOnRecord(mac, ip)) return ack(req, ip, pool, config, view, state);
  // A client whose reservation came after its dynamic lease is NAKed here (`not-its-reservation`, in
  // RENEWING, REBINDING and INIT-REBOOT alike), as Kea does: an ACK cannot move a client to another
  // address, while after a DHCPNAK it "cannot reuse its remembered network address" and restarts the
  // configuration process (§3.2 step 3, §3.1 step 5), and its DHCPDISCOVER is offered the reservation.
  // §4.3.2's "should return a DHCPACK message regardless" to a renewal is about not extending the lease
  // of an address the client may keep, not about one it may no longer have.
  if (availability !== 'ok') return nak(req, config, unavailable(mac, ip, availability, view));
  // "If the DHCP server has no record of this client, then it MUST remain silent."
  if (!view.knows(mac)) return silent(`${state} ${ip} from ${mac}: no record of this client`, 'info');
  return nak(req, config, `${ip} is not the address on record for ${mac}`);
}

/** The DHCPNAK's message (option 56): why the client cannot have `ip`. */
function unavailable(mac: string, ip: string, availability: Availability, view: LeaseView): string {
  if (availability === 'not-its-reservation') {
    return `${ip} is not the address reserved for ${mac} (${view.reservationFor(mac)?.ip ?? 'none'}); ask again`;
  }
  return `${ip} is not available (${availability})`;
}

function forOtherServer(req: DhcpPacket, config: PolicyConfig): boolean {
  return req.options.serverId !== undefined && req.options.serverId !== config.serverAddress;
}

/** §4.3.3 */
function decline(req: DhcpPacket, config: PolicyConfig): Decision {
  if (forOtherServer(req, config)) return silent('DHCPDECLINE for another server');
  const ip = req.options.requestedIp;
  if (ip === undefined) return silent('DHCPDECLINE without a requested address', 'info');
  const effects: LeaseEffect[] = [{ kind: 'decline', mac: req.chaddr, ip }];
  return silent(
    `${req.chaddr} declined ${ip}: another host uses it; quarantined`,
    'warn',
    effects,
    'declined',
  );
}

/** §4.3.4 */
function release(req: DhcpPacket, config: PolicyConfig): Decision {
  if (forOtherServer(req, config)) return silent('DHCPRELEASE for another server');
  return silent(`${req.chaddr} released ${req.ciaddr}`, 'info', [
    { kind: 'release', mac: req.chaddr, ip: req.ciaddr },
  ]);
}

/** §4.3.5: configuration only — no yiaddr and no lease time. */
function inform(req: DhcpPacket, pool: Pool, config: PolicyConfig, view: LeaseView): Decision {
  const reply = baseReply(req, DHCPACK, config);
  reply.ciaddr = req.ciaddr;
  addNetworkConfig(reply, pool, null);
  addHostname(reply, req.chaddr, view);
  const boot = addBoot(reply, req, config.boot);
  return {
    effects: [],
    reply: replyTo(req, reply),
    note: `DHCPACK to DHCPINFORM${bootNote(boot)}`,
    level: 'debug',
  };
}

/**
 * proxyDHCP (PXE 2.1 §2.2.3, "ProxyDHCP service"): another server leases addresses; we answer PXE clients
 * only, with boot information and no address. On port 67 a DHCPDISCOVER gets a DHCPOFFER; on port 4011
 * a DHCPREQUEST (the client now has an address) gets a DHCPACK sent back to where it came from.
 */
function decideProxy(req: DhcpPacket, type: number, arrival: Arrival, config: PolicyConfig): Decision {
  const httpClient = isHttpClient(req.options);
  if (!isPxeClient(req.options) && !isIpxe(req.options) && !httpClient) {
    return silent('not a PXE or HTTP boot client: proxyDHCP leaves it to the network DHCP server');
  }
  const onDhcpPort = arrival.port === 'dhcp';
  if (onDhcpPort && type !== DHCPDISCOVER)
    return silent(`proxyDHCP: ${typeName(type)} on port 67 is for the DHCP server`);
  if (!onDhcpPort && type !== DHCPREQUEST && type !== DHCPINFORM)
    return silent(`proxyDHCP: ${typeName(type)} on port 4011`);

  const reply = baseReply(req, onDhcpPort ? DHCPOFFER : DHCPACK, config);
  if (!onDhcpPort) reply.ciaddr = req.ciaddr;
  const boot = addBoot(reply, req, config.boot);
  if (boot.kind === 'none')
    return silent(`proxyDHCP: nothing to boot for ${req.chaddr}: ${boot.reason}`, 'info');
  const o = reply.options;
  if (req.options.clientUuid) o.clientUuid = req.options.clientUuid;
  if (!httpClient) {
    // "PXEClient" in option 60 marks the offer as PXE boot information rather than an address lease.
    o.vendorClassId = 'PXEClient';
    o.vendorSpecific = pxeVendorOptions(req);
  }
  // An HTTPClient's proxy offer is "HTTPClient" (set by addBoot) plus the URI and no address: EDK2 calls it
  // HttpOfferTypeProxyUri and pairs it with the address from the network's DHCP server. HTTP boot clients
  // never use port 4011 (that is PXE boot server discovery), but one that did would be answered alike.
  const to: Destination = onDhcpPort
    ? destination(req, DHCPOFFER)
    : {
        address: arrival.source.address,
        port: arrival.source.port,
        why: 'PXE boot server reply to the sender',
      };
  return {
    effects: [],
    reply: { packet: reply, to },
    note: `proxyDHCP ${onDhcpPort ? 'DHCPOFFER' : 'DHCPACK'} (no address)${bootNote(boot)}`,
    level: 'debug',
  };
}

/**
 * Option 43 for a PXE client: discovery control "use the boot file in this offer, no menu, no boot server
 * discovery", and, on port 4011, the client's PXE_BOOT_ITEM echoed back as the spec's boot server does.
 */
function pxeVendorOptions(req: DhcpPacket): Buffer {
  const sub: [number, Buffer][] = [[PXE.DISCOVERY_CONTROL, Buffer.from([PXE_DISCOVERY_USE_BOOTFILE])]];
  const item = req.options.vendorSpecific
    ? decodePxeVendorOptions(req.options.vendorSpecific)?.get(PXE.BOOT_ITEM)
    : undefined;
  if (item && item.length === 4) sub.push([PXE.BOOT_ITEM, item]);
  return encodePxeVendorOptions(sub);
}
