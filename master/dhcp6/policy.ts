/**
 * The DHCPv6 decision (pure), like DHCP's decide(): a decoded message, where it came from, the frozen
 * config and a read-only view of the bindings → the reply (already wrapped for the relays it came
 * through), the binding effects to commit first, and a note for the log. Section numbers are RFC 8415's.
 */
import type { Lease6Effect, Lease6View } from './allocator.js';
import { formatIPv6, inPrefix, type Prefix6 } from './address.js';
import {
  MSG,
  MSG_NAMES,
  OPT6,
  STATUS,
  decodeClientArch,
  decodeIaNa,
  decodeOro,
  decodeUserClass,
  decodeVendorClass,
  encodeIaNa,
  macFromDuid,
  macFromLinkLayerOption,
  option,
  statusOption,
  vendorClassOption,
  type ClientMessage,
  type IaNa,
  type Message6,
  type Option6,
  type RelayMessage,
} from './codec.js';
import { addressToBytes } from './address.js';
import { emptyOptions } from '../dhcp/codec.js';
import { chooseBoot, type BootConfig } from '../dhcp/pxe.js';

export interface Policy6Config {
  /** Our DUID (option 2), stable across restarts. */
  readonly serverDuid: Buffer;
  readonly prefix: Prefix6;
  readonly leaseSeconds: number;
  readonly dns: readonly bigint[];
  /** Option 24's data (RFC 3646 §4), when the cluster zone is on (master/dns). */
  readonly domainList?: Buffer;
  readonly rapidCommit: boolean;
  /**
   * Boot choices as for DHCPv4; `tftpServer` is the master's IPv6 address and `httpBaseUrl` its HTTP base
   * over IPv6. TFTP choices become tftp://[address]/FILE URLs (RFC 5970 §3.1: option 59 is a URL).
   */
  readonly boot: BootConfig;
}

export interface Arrival6 {
  address: string;
  port: number;
}

export interface Decision6 {
  effects: Lease6Effect[];
  reply: { message: Message6; address: string; port: number } | null;
  note: string;
  level: 'debug' | 'info' | 'warn';
  tag?: 'no-addrs' | 'unknown-link' | 'malformed';
  /**
   * A firmware's own network boot (vendor class PXEClient or HTTPClient, not iPXE) from a client whose MAC
   * is known: the server records it in the node's boot timeline (boot/activity.ts), which tells a
   * firmware's next boot option from a node coming back (boot/local-fallback.ts).
   */
  boot?: Boot6Seen;
}

/** What decide6 saw of a boot client, for the boot timeline. */
export interface Boot6Seen {
  mac: string;
  message: string;
  reply: string | null;
  vendorClass: string;
  userClass: string | null;
  arch: number | null;
  /** Option 59 as sent, if any. */
  bootFile: string | null;
}

/** A SOLICIT or REQUEST from a firmware's network boot (not iPXE's own DHCPv6), or undefined. */
function bootSeen(client: ClientMessage, mac: string | null, d: Decision6): Boot6Seen | undefined {
  if (!mac || (client.type !== MSG.SOLICIT && client.type !== MSG.REQUEST)) return undefined;
  const vendor = decodeVendorClass(option(client.options, OPT6.VENDOR_CLASS));
  const userClass = decodeUserClass(option(client.options, OPT6.USER_CLASS));
  const first = typeof vendor === 'object' ? vendor.items[0] : undefined;
  if (!first || !/^(PXEClient|HTTPClient)/.test(first)) return undefined;
  const users = typeof userClass === 'string' ? [] : userClass;
  const arch = decodeClientArch(option(client.options, OPT6.CLIENT_ARCH_TYPE));
  const reply = d.reply?.message;
  const url =
    reply?.kind === 'client' ? reply.options.find((o) => o.code === OPT6.BOOTFILE_URL)?.data : undefined;
  return {
    mac,
    message: typeName(client.type),
    reply: reply ? typeName(reply.type) : null,
    vendorClass: first,
    userClass: users.length ? users.join(',') : null,
    arch: typeof arch === 'string' ? null : (arch[0] ?? null),
    bootFile: url ? url.toString('utf8') : null,
  };
}

/** EDK2 sends and expects enterprise 343 (Intel) with "HTTPClient"; other clients get their own echoed. */
const HTTP_CLIENT_ENTERPRISE = 343;

const silent = (note: string, level: Decision6['level'] = 'debug', tag?: Decision6['tag']): Decision6 => ({
  effects: [],
  reply: null,
  note,
  level,
  ...(tag ? { tag } : {}),
});

const typeName = (t: number): string => MSG_NAMES[t] ?? `message type ${t}`;

export function decide6(
  msg: Message6,
  arrival: Arrival6,
  config: Policy6Config,
  view: Lease6View,
  now: number,
): Decision6 {
  // §19: unwrap the relay chain, outermost first; the innermost relay sits on the client's link.
  const relays: RelayMessage[] = [];
  let m: Message6 = msg;
  while (m.kind === 'relay') {
    if (m.type !== MSG.RELAY_FORW) return silent(`${typeName(m.type)} is not for a server`);
    relays.push(m);
    m = m.inner;
  }
  const client = m;
  const nearest = relays[relays.length - 1];
  if (nearest && nearest.linkAddress !== 0n && !inPrefix(nearest.linkAddress, config.prefix)) {
    return silent(
      `relayed ${typeName(client.type)} from link ${formatIPv6(nearest.linkAddress)}: not on ${config.prefix.text}`,
      'warn',
      'unknown-link',
    );
  }
  const mac =
    macFromLinkLayerOption(nearest ? option(nearest.options, OPT6.CLIENT_LINKLAYER_ADDR) : undefined) ??
    macFromDuid(option(client.options, OPT6.CLIENTID) ?? Buffer.alloc(0));
  const decided = decideClient(client, config, view, now, mac);
  const boot = bootSeen(client, mac, decided);
  const d = boot ? { ...decided, boot } : decided;
  if (!d.reply) return d;
  if (!relays.length) return { ...d, reply: { ...d.reply, address: arrival.address, port: arrival.port } };
  // §19.3: wrap the reply in one RELAY-REPL per RELAY-FORW, innermost first, copying hop-count,
  // link-address and peer-address, and echoing Interface-Id (§21.18). It goes back to the relay that sent
  // the outermost RELAY-FORW, to the port it came from (547 for a relay per §7.2).
  let wrapped: Message6 = d.reply.message;
  for (let i = relays.length - 1; i >= 0; i--) {
    const r = relays[i]!;
    const interfaceId = r.options.filter((o) => o.code === OPT6.INTERFACE_ID);
    wrapped = {
      kind: 'relay',
      type: MSG.RELAY_REPL,
      hopCount: r.hopCount,
      linkAddress: r.linkAddress,
      peerAddress: r.peerAddress,
      options: interfaceId,
      inner: wrapped,
    };
  }
  return { ...d, reply: { message: wrapped, address: arrival.address, port: arrival.port } };
}

interface Request6 {
  msg: ClientMessage;
  clientId: Buffer;
  duid: string;
  mac: string | null;
  oro: number[];
}

function decideClient(
  msg: ClientMessage,
  config: Policy6Config,
  view: Lease6View,
  now: number,
  mac: string | null,
): Decision6 {
  const clientId = option(msg.options, OPT6.CLIENTID);
  const serverId = option(msg.options, OPT6.SERVERID);
  const ours = serverId !== undefined && serverId.equals(config.serverDuid);
  const name = typeName(msg.type);
  const oro = decodeOro(option(msg.options, OPT6.ORO));
  if (typeof oro === 'string') return silent(`${name}: ${oro}`, 'info', 'malformed');
  // §16: which messages need a Client Identifier, and whose Server Identifier.
  if (!clientId && msg.type !== MSG.INFORMATION_REQUEST)
    return silent(`${name} without a Client Identifier`, 'info');
  const req: Request6 = {
    msg,
    clientId: clientId ?? Buffer.alloc(0),
    duid: (clientId ?? Buffer.alloc(0)).toString('hex'),
    mac,
    oro,
  };
  switch (msg.type) {
    case MSG.SOLICIT:
      if (serverId) return silent('SOLICIT with a Server Identifier (§16.2)', 'info');
      return solicit(req, config, view, now);
    case MSG.REQUEST:
      if (!ours) return silent(`REQUEST for ${serverId ? 'another server' : 'no server'}`);
      return offerOrBind(req, config, view, now, 'REPLY', true);
    case MSG.RENEW:
    case MSG.REBIND:
      if (msg.type === MSG.RENEW && !ours)
        return silent(`RENEW for ${serverId ? 'another server' : 'no server'}`);
      if (msg.type === MSG.REBIND && serverId)
        return silent('REBIND with a Server Identifier (§16.7)', 'info');
      return extend(req, config, view, now);
    case MSG.CONFIRM:
      if (serverId) return silent('CONFIRM with a Server Identifier (§16.5)', 'info');
      return confirm(req, config);
    case MSG.RELEASE:
    case MSG.DECLINE:
      if (!ours) return silent(`${name} for ${serverId ? 'another server' : 'no server'}`);
      return giveBack(req, config, view, now);
    case MSG.INFORMATION_REQUEST:
      if (serverId && !ours) return silent('INFORMATION-REQUEST for another server');
      return informationRequest(req, config);
    default:
      return silent(`${name} is not a client message`);
  }
}

function replyMessage(req: Request6, type: number, config: Policy6Config, options: Option6[]): ClientMessage {
  const head: Option6[] = [{ code: OPT6.SERVERID, data: config.serverDuid }];
  if (req.clientId.length) head.push({ code: OPT6.CLIENTID, data: req.clientId });
  return { kind: 'client', type, transactionId: req.msg.transactionId, options: [...head, ...options] };
}

function iasOf(req: Request6): IaNa[] | string {
  const out: IaNa[] = [];
  for (const o of req.msg.options) {
    if (o.code !== OPT6.IA_NA) continue;
    const ia = decodeIaNa(o.data);
    if (typeof ia === 'string') return ia;
    out.push(ia);
  }
  return out;
}

/** §21.4: T1 0.5 and T2 0.8 of the preferred lifetime (the recommended values). */
function iaWith(ia: IaNa, address: bigint, config: Policy6Config): Option6 {
  const l = config.leaseSeconds;
  return encodeIaNa({
    iaid: ia.iaid,
    t1: Math.floor(l * 0.5),
    t2: Math.floor(l * 0.8),
    addresses: [{ address, preferred: l, valid: l, options: [] }],
    options: [],
  });
}

function iaStatus(ia: IaNa, code: number, message: string): Option6 {
  return encodeIaNa({ iaid: ia.iaid, t1: 0, t2: 0, addresses: [], options: [statusOption(code, message)] });
}

/** Configuration options the client asked for (ORO, §21.7), and the boot URL (RFC 5970 §3.1). */
function configOptions(req: Request6, config: Policy6Config): { options: Option6[]; boot: string } {
  const options: Option6[] = [];
  if (req.oro.includes(OPT6.DNS_SERVERS) && config.dns.length)
    options.push({ code: OPT6.DNS_SERVERS, data: Buffer.concat(config.dns.map(addressToBytes)) });
  if (req.oro.includes(OPT6.DOMAIN_LIST) && config.domainList)
    options.push({ code: OPT6.DOMAIN_LIST, data: config.domainList });
  if (!req.oro.includes(OPT6.BOOTFILE_URL)) return { options, boot: '' };
  const boot = bootUrl(req, config);
  if (!boot.url) return { options, boot: `, no boot URL: ${boot.why}` };
  options.push({ code: OPT6.BOOTFILE_URL, data: Buffer.from(boot.url, 'utf8') });
  if (boot.httpClient !== null) options.push(vendorClassOption(boot.httpClient, ['HTTPClient']));
  return { options, boot: `, boot ${boot.url}` };
}

/**
 * The DHCPv4 choice (pxe.ts) on the same facts: vendor class (option 16's first item, e.g.
 * "PXEClient:Arch:00007:UNDI:003000" or "HTTPClient:Arch:00016…"), architecture (option 61, RFC 5970
 * §3.3) and user class "iPXE" (option 15). A client that names an architecture but no class is treated
 * as a PXE client, since option 61 exists for network boot only.
 */
function bootUrl(
  req: Request6,
  config: Policy6Config,
): { url?: string; why: string; httpClient: number | null } {
  const o = req.msg.options;
  const vendor = decodeVendorClass(option(o, OPT6.VENDOR_CLASS));
  const arch = decodeClientArch(option(o, OPT6.CLIENT_ARCH_TYPE));
  const userClass = decodeUserClass(option(o, OPT6.USER_CLASS));
  if (typeof vendor === 'string' || typeof arch === 'string' || typeof userClass === 'string')
    return { why: 'malformed class or architecture option', httpClient: null };
  const first = vendor?.items[0];
  const v4 = {
    ...emptyOptions(),
    ...(first ? { vendorClassId: first } : arch.length ? { vendorClassId: 'PXEClient' } : {}),
    ...(arch.length ? { clientArch: arch } : {}),
    ...(userClass.length ? { userClass } : {}),
  };
  const choice = chooseBoot(v4, req.mac ?? '', config.boot);
  switch (choice.kind) {
    case 'none':
      return { why: choice.reason, httpClient: null };
    case 'tftp':
      return { url: `tftp://[${choice.server}]/${choice.file}`, why: '', httpClient: null };
    case 'http':
      return { url: choice.url, why: '', httpClient: null };
    case 'uefi-http':
      return { url: choice.url, why: '', httpClient: vendor?.enterprise ?? HTTP_CLIENT_ENTERPRISE };
  }
}

/** §18.3.1 (SOLICIT) and §18.3.2 (REQUEST): one address per IA_NA, or NoAddrsAvail for that IA. */
function addresses(
  req: Request6,
  config: Policy6Config,
  view: Lease6View,
  now: number,
  bind: boolean,
): { options: Option6[]; effects: Lease6Effect[]; given: string[]; missing: number } | string {
  const ias = iasOf(req);
  if (typeof ias === 'string') return ias;
  const options: Option6[] = [];
  const effects: Lease6Effect[] = [];
  const given: string[] = [];
  let missing = 0;
  for (const ia of ias) {
    const hint = ia.addresses[0]?.address ?? null;
    const address = view.choose(req.duid, ia.iaid, hint, now);
    if (address === null) {
      missing++;
      options.push(iaStatus(ia, STATUS.NoAddrsAvail, 'no addresses left in the range'));
      continue;
    }
    options.push(iaWith(ia, address, config));
    given.push(formatIPv6(address));
    effects.push(
      bind
        ? {
            kind: 'bind',
            duid: req.duid,
            iaid: ia.iaid,
            mac: req.mac,
            address,
            validSeconds: config.leaseSeconds,
          }
        : { kind: 'hold', duid: req.duid, iaid: ia.iaid, address },
    );
  }
  return { options, effects, given, missing };
}

function solicit(req: Request6, config: Policy6Config, view: Lease6View, now: number): Decision6 {
  const rapid = config.rapidCommit && option(req.msg.options, OPT6.RAPID_COMMIT) !== undefined;
  return offerOrBind(req, config, view, now, rapid ? 'REPLY (rapid commit)' : 'ADVERTISE', rapid);
}

function offerOrBind(
  req: Request6,
  config: Policy6Config,
  view: Lease6View,
  now: number,
  label: string,
  bind: boolean,
): Decision6 {
  const a = addresses(req, config, view, now, bind);
  if (typeof a === 'string') return silent(`${typeName(req.msg.type)}: ${a}`, 'info', 'malformed');
  const c = configOptions(req, config);
  const extra: Option6[] = [];
  // §18.3.1: a REPLY to a Rapid Commit SOLICIT carries Rapid Commit itself.
  if (label.includes('rapid')) extra.push({ code: OPT6.RAPID_COMMIT, data: Buffer.alloc(0) });
  const type = bind ? MSG.REPLY : MSG.ADVERTISE;
  const message = replyMessage(req, type, config, [...a.options, ...extra, ...c.options]);
  const who = req.mac ?? req.duid;
  const note = `${label} to ${who}: ${a.given.join(', ') || 'no address'}${c.boot}`;
  return {
    effects: a.effects,
    reply: { message, address: '', port: 0 },
    note,
    level: a.missing ? 'warn' : bind ? 'info' : 'debug',
    ...(a.missing ? { tag: 'no-addrs' as const } : {}),
  };
}

/** §18.3.4 (RENEW) and §18.3.5 (REBIND): extend a binding the client holds; NoBinding otherwise. */
function extend(req: Request6, config: Policy6Config, view: Lease6View, now: number): Decision6 {
  const ias = iasOf(req);
  if (typeof ias === 'string') return silent(`${typeName(req.msg.type)}: ${ias}`, 'info', 'malformed');
  const options: Option6[] = [];
  const effects: Lease6Effect[] = [];
  for (const ia of ias) {
    const held = ia.addresses.find((a) => view.boundTo(req.duid, ia.iaid, a.address, now));
    if (!held) {
      options.push(iaStatus(ia, STATUS.NoBinding, 'no binding for this IA'));
      continue;
    }
    options.push(iaWith(ia, held.address, config));
    effects.push({
      kind: 'bind',
      duid: req.duid,
      iaid: ia.iaid,
      mac: req.mac,
      address: held.address,
      validSeconds: config.leaseSeconds,
    });
  }
  const c = configOptions(req, config);
  return {
    effects,
    reply: {
      message: replyMessage(req, MSG.REPLY, config, [...options, ...c.options]),
      address: '',
      port: 0,
    },
    note: `REPLY to ${typeName(req.msg.type)}: ${effects.length}/${ias.length} bindings extended`,
    level: 'debug',
  };
}

/** §18.3.3: are the client's addresses on our link? */
function confirm(req: Request6, config: Policy6Config): Decision6 {
  const ias = iasOf(req);
  if (typeof ias === 'string') return silent(`CONFIRM: ${ias}`, 'info', 'malformed');
  const addrs = ias.flatMap((ia) => ia.addresses.map((a) => a.address));
  if (!addrs.length) return silent('CONFIRM with no addresses (§18.3.3: no reply)');
  const onLink = addrs.every((a) => inPrefix(a, config.prefix));
  const status = onLink
    ? statusOption(STATUS.Success, 'all addresses are on link')
    : statusOption(STATUS.NotOnLink, `not on ${config.prefix.text}`);
  return {
    effects: [],
    reply: { message: replyMessage(req, MSG.REPLY, config, [status]), address: '', port: 0 },
    note: `REPLY to CONFIRM: ${onLink ? 'on link' : 'NotOnLink'}`,
    level: 'debug',
  };
}

/** §18.3.7 (RELEASE) and §18.3.8 (DECLINE): free or quarantine the client's bound addresses. */
function giveBack(req: Request6, config: Policy6Config, view: Lease6View, now: number): Decision6 {
  const ias = iasOf(req);
  if (typeof ias === 'string') return silent(`${typeName(req.msg.type)}: ${ias}`, 'info', 'malformed');
  const effects: Lease6Effect[] = [];
  const options: Option6[] = [];
  const kind = req.msg.type === MSG.RELEASE ? 'release' : 'decline';
  for (const ia of ias) {
    const mine = ia.addresses.filter((a) => view.boundTo(req.duid, ia.iaid, a.address, now));
    if (!mine.length) options.push(iaStatus(ia, STATUS.NoBinding, 'no binding for this IA'));
    for (const a of mine) effects.push({ kind, duid: req.duid, iaid: ia.iaid, address: a.address });
  }
  options.push(statusOption(STATUS.Success, kind === 'release' ? 'released' : 'declined'));
  const listed = effects.map((e) => formatIPv6(e.address)).join(', ') || 'nothing';
  return {
    effects,
    reply: { message: replyMessage(req, MSG.REPLY, config, options), address: '', port: 0 },
    note: `${kind === 'release' ? 'RELEASE' : 'DECLINE'} of ${listed} by ${req.mac ?? req.duid}`,
    level: kind === 'decline' ? 'warn' : 'info',
  };
}

/** §18.3.6: configuration only. */
function informationRequest(req: Request6, config: Policy6Config): Decision6 {
  const c = configOptions(req, config);
  return {
    effects: [],
    reply: { message: replyMessage(req, MSG.REPLY, config, c.options), address: '', port: 0 },
    note: `REPLY to INFORMATION-REQUEST${c.boot}`,
    level: 'debug',
  };
}
