import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../../master/store/db.js';
import { Lease6Store } from '../../master/store/dhcp6-leases.js';
import { silentLogger } from '../../master/util/logger.js';
import { Lease6Allocator } from '../../master/dhcp6/allocator.js';
import { formatIPv6, parseIPv6, parsePrefix6 } from '../../master/dhcp6/address.js';
import {
  MAX_RELAY_DEPTH,
  MSG,
  OPT6,
  STATUS,
  decodeIaNa,
  decodeMessage6,
  decodeStatus,
  decodeVendorClass,
  encodeIaNa,
  encodeMessage6,
  option,
  vendorClassOption,
  type ClientMessage,
  type Message6,
  type Option6,
} from '../../master/dhcp6/codec.js';
import { decide6, type Decision6, type Policy6Config } from '../../master/dhcp6/policy.js';
import { resolveBootFiles, BootFilesSchema } from '../../master/dhcp/boot-files.js';

const T0 = Date.parse('2026-12-06T12:00:00Z');
const SERVER_DUID = Buffer.from('0004' + 'ab'.repeat(16), 'hex');
/** DUID-LL (type 3), Ethernet, MAC 52:54:00:06:00:01. */
const CLIENT_DUID = Buffer.from('00030001525400060001', 'hex');
const CLIENT = { address: 'fe80::5054:ff:fe06:1%m0', port: 546 };
const u16 = (...n: number[]): Buffer => Buffer.from(n.flatMap((x) => [x >> 8, x & 0xff]));

function harness(range = ['fd00:55::100', 'fd00:55::101']) {
  const store = openStore({ path: ':memory:', logger: silentLogger() });
  const leases = new Lease6Store(store);
  const alloc = new Lease6Allocator(leases, parseIPv6(range[0]!)!, parseIPv6(range[1]!)!);
  const config: Policy6Config = {
    serverDuid: SERVER_DUID,
    prefix: parsePrefix6('fd00:55::/64')!,
    leaseSeconds: 3600,
    dns: [],
    rapidCommit: true,
    boot: resolveBootFiles(
      BootFilesSchema.parse({}),
      { biosFile: 'undionly.kpxe', uefiFile: 'ipxe.efi' },
      'http://[fd00:55::1]:8080',
      'fd00:55::1',
    ),
  };
  const run = (m: Message6, from = CLIENT, now = T0): Decision6 => {
    const d = decide6(m, from, config, alloc, now);
    for (const e of d.effects) alloc.apply(e, now);
    alloc.flush();
    return d;
  };
  return { store, leases, alloc, config, run };
}

function msg(type: number, options: Option6[], duid = CLIENT_DUID): ClientMessage {
  return {
    kind: 'client',
    type,
    transactionId: 0xabcdef,
    options: [{ code: OPT6.CLIENTID, data: duid }, ...options],
  };
}
const ia = (iaid: number, address?: string): Option6 =>
  encodeIaNa({
    iaid,
    t1: 0,
    t2: 0,
    addresses: address ? [{ address: parseIPv6(address)!, preferred: 0, valid: 0, options: [] }] : [],
    options: [],
  });

function replyOf(d: Decision6): ClientMessage {
  assert.ok(d.reply, `no reply: ${d.note}`);
  // Through the codec and back: the reply must be encodable and decode to what was built.
  const decoded = decodeMessage6(encodeMessage6(d.reply.message));
  assert.ok(decoded.ok);
  let m = decoded.message;
  while (m.kind === 'relay') m = m.inner;
  return m;
}
function leasedAddress(m: ClientMessage): string | undefined {
  const raw = option(m.options, OPT6.IA_NA);
  const parsed = raw ? decodeIaNa(raw) : undefined;
  return parsed && typeof parsed !== 'string' && parsed.addresses[0]
    ? formatIPv6(parsed.addresses[0].address)
    : undefined;
}

describe('dhcp6 addresses', () => {
  it('parses and formats per RFC 5952', () => {
    assert.equal(formatIPv6(parseIPv6('FD00:0055:0:0:0:0:0:0100')!), 'fd00:55::100');
    assert.equal(formatIPv6(parseIPv6('2001:db8:0:1:1:1:1:1')!), '2001:db8:0:1:1:1:1:1');
    assert.equal(formatIPv6(parseIPv6('2001:0:0:1:0:0:0:1')!), '2001:0:0:1::1');
    assert.equal(formatIPv6(0n), '::');
    assert.equal(parseIPv6('10.0.0.1'), null);
    assert.equal(parsePrefix6('fd00:55::1/64'), null, 'host bits set');
  });
});

describe('dhcp6 codec: hostile input is refused, never thrown (RFC 8415 §8, §9, §21.1)', () => {
  it('truncated headers and options, length overruns', () => {
    for (const hex of [
      '',
      '01',
      '0100',
      '01abcdef0001',
      '01abcdef000100',
      '01abcdef00010010aabb',
      '0c00' + '00'.repeat(20),
    ]) {
      const d = decodeMessage6(Buffer.from(hex, 'hex'));
      assert.equal(d.ok, false, hex);
    }
  });

  it('relay nesting is bounded at MAX_RELAY_DEPTH', () => {
    let inner: Message6 = msg(MSG.SOLICIT, []);
    for (let i = 0; i < MAX_RELAY_DEPTH; i++)
      inner = {
        kind: 'relay',
        type: MSG.RELAY_FORW,
        hopCount: i,
        linkAddress: 0n,
        peerAddress: 0n,
        options: [],
        inner,
      };
    assert.equal(decodeMessage6(encodeMessage6(inner)).ok, true, 'eight relays are legal');
    const deeper: Message6 = {
      kind: 'relay',
      type: MSG.RELAY_FORW,
      hopCount: 8,
      linkAddress: 0n,
      peerAddress: 0n,
      options: [],
      inner,
    };
    const d = decodeMessage6(encodeMessage6(deeper));
    assert.equal(d.ok, false);
    assert.match(d.ok ? '' : d.reason, /nesting deeper than 8/);
  });

  it('a malformed IA_NA, ORO or vendor class gets no reply, not an exception', () => {
    const h = harness();
    assert.equal(h.run(msg(MSG.SOLICIT, [{ code: OPT6.IA_NA, data: Buffer.alloc(5) }])).reply, null);
    assert.equal(h.run(msg(MSG.SOLICIT, [ia(1), { code: OPT6.ORO, data: Buffer.alloc(3) }])).reply, null);
    assert.equal(typeof decodeVendorClass(Buffer.from('0000015700ff41', 'hex')), 'string');
    h.store.close();
  });
});

describe('decide6 (RFC 8415 §18.3)', () => {
  it('SOLICIT → ADVERTISE (held, not bound); REQUEST → REPLY, bound and persisted', () => {
    const h = harness();
    const adv = replyOf(h.run(msg(MSG.SOLICIT, [ia(7)])));
    assert.equal(adv.type, MSG.ADVERTISE);
    assert.equal(adv.transactionId, 0xabcdef);
    assert.deepEqual(option(adv.options, OPT6.SERVERID), SERVER_DUID);
    assert.equal(leasedAddress(adv), 'fd00:55::100');
    assert.equal(h.leases.all().length, 0, 'an advertise binds nothing');
    const rep = replyOf(
      h.run(msg(MSG.REQUEST, [{ code: OPT6.SERVERID, data: SERVER_DUID }, ia(7, 'fd00:55::100')])),
    );
    assert.equal(rep.type, MSG.REPLY);
    assert.equal(leasedAddress(rep), 'fd00:55::100');
    const [row] = h.leases.all();
    assert.deepEqual(
      [row?.address, row?.state, row?.iaid, row?.mac],
      ['fd00:55::100', 'bound', 7, '52:54:00:06:00:01'],
    );
    h.store.close();
  });

  it('REQUEST for another server is ignored; SOLICIT with a Server Identifier is ignored (§16)', () => {
    const h = harness();
    assert.equal(
      h.run(msg(MSG.REQUEST, [{ code: OPT6.SERVERID, data: Buffer.from('000400', 'hex') }, ia(1)])).reply,
      null,
    );
    assert.equal(h.run(msg(MSG.SOLICIT, [{ code: OPT6.SERVERID, data: SERVER_DUID }, ia(1)])).reply, null);
    h.store.close();
  });

  it('Rapid Commit: SOLICIT with option 14 → REPLY carrying option 14, bound at once', () => {
    const h = harness();
    const r = replyOf(h.run(msg(MSG.SOLICIT, [ia(1), { code: OPT6.RAPID_COMMIT, data: Buffer.alloc(0) }])));
    assert.equal(r.type, MSG.REPLY);
    assert.ok(option(r.options, OPT6.RAPID_COMMIT));
    assert.equal(h.leases.all()[0]?.state, 'bound');
    h.store.close();
  });

  it('RENEW extends a binding; RENEW of an unknown address → NoBinding; RELEASE frees it', () => {
    const h = harness();
    h.run(msg(MSG.SOLICIT, [ia(1), { code: OPT6.RAPID_COMMIT, data: Buffer.alloc(0) }]));
    const sid = { code: OPT6.SERVERID, data: SERVER_DUID };
    const renew = h.run(msg(MSG.RENEW, [sid, ia(1, 'fd00:55::100')]), CLIENT, T0 + 1000);
    assert.equal(leasedAddress(replyOf(renew)), 'fd00:55::100');
    const bad = replyOf(h.run(msg(MSG.RENEW, [sid, ia(1, 'fd00:55::101')])));
    const iaOpt = decodeIaNa(option(bad.options, OPT6.IA_NA)!);
    assert.ok(typeof iaOpt !== 'string');
    assert.equal(decodeStatus(option(iaOpt.options, OPT6.STATUS_CODE))?.code, STATUS.NoBinding);
    h.run(msg(MSG.RELEASE, [sid, ia(1, 'fd00:55::100')]));
    assert.equal(h.leases.all()[0]?.state, 'released');
    h.store.close();
  });

  it('an exhausted range → IA_NA with NoAddrsAvail', () => {
    const h = harness(['fd00:55::100', 'fd00:55::100']);
    const rc = { code: OPT6.RAPID_COMMIT, data: Buffer.alloc(0) };
    h.run(msg(MSG.SOLICIT, [ia(1), rc]));
    const d = h.run(msg(MSG.SOLICIT, [ia(1)], Buffer.from('00030001525400060002', 'hex')));
    assert.equal(d.tag, 'no-addrs');
    const iaOpt = decodeIaNa(option(replyOf(d).options, OPT6.IA_NA)!);
    assert.ok(typeof iaOpt !== 'string');
    assert.equal(decodeStatus(option(iaOpt.options, OPT6.STATUS_CODE))?.code, STATUS.NoAddrsAvail);
    h.store.close();
  });

  it('option 59 by client architecture (option 61) and class, only when asked for in the ORO (RFC 5970)', () => {
    const h = harness();
    const oro = { code: OPT6.ORO, data: u16(OPT6.BOOTFILE_URL) };
    const url = (opts: Option6[]): string | undefined =>
      option(replyOf(h.run(msg(MSG.SOLICIT, [ia(1), ...opts]))).options, OPT6.BOOTFILE_URL)?.toString();
    assert.equal(url([{ code: OPT6.CLIENT_ARCH_TYPE, data: u16(7) }]), undefined, 'not requested');
    assert.equal(url([oro, { code: OPT6.CLIENT_ARCH_TYPE, data: u16(7) }]), 'tftp://[fd00:55::1]/ipxe.efi');
    assert.equal(
      url([oro, { code: OPT6.USER_CLASS, data: Buffer.from('000469505845', 'hex') }]),
      'http://[fd00:55::1]:8080/boot/ipxe?mac=52:54:00:06:00:01&platform=${platform}',
    );
    const http = replyOf(
      h.run(
        msg(MSG.SOLICIT, [
          ia(1),
          oro,
          { code: OPT6.CLIENT_ARCH_TYPE, data: u16(16) },
          vendorClassOption(343, ['HTTPClient:Arch:00016:UNDI:003001']),
        ]),
      ),
    );
    assert.equal(
      option(http.options, OPT6.BOOTFILE_URL)?.toString(),
      'http://[fd00:55::1]:8080/boot/loader/ipxe.efi',
    );
    assert.deepEqual(decodeVendorClass(option(http.options, OPT6.VENDOR_CLASS)), {
      enterprise: 343,
      items: ['HTTPClient'],
    });
    // A boot class (PXEClient/HTTPClient) is what the server records in the boot timeline (d.boot); an OS's
    // own client and iPXE's user class alone are not a firmware's boot option.
    const seen = h.run(
      msg(MSG.SOLICIT, [
        ia(1),
        oro,
        { code: OPT6.CLIENT_ARCH_TYPE, data: u16(7) },
        vendorClassOption(343, ['PXEClient:Arch:00007:UNDI:003016']),
      ]),
    ).boot;
    assert.deepEqual(seen, {
      mac: '52:54:00:06:00:01',
      message: 'SOLICIT',
      reply: 'ADVERTISE',
      vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
      userClass: null,
      arch: 7,
      bootFile: 'tftp://[fd00:55::1]/ipxe.efi',
    });
    assert.equal(h.run(msg(MSG.SOLICIT, [ia(1), oro])).boot, undefined);
    h.store.close();
  });

  it('RELAY-FORW → RELAY-REPL per relay, Interface-Id echoed, sent back to the relay; a foreign link is refused', () => {
    const h = harness();
    const interfaceId = { code: OPT6.INTERFACE_ID, data: Buffer.from('port-7') };
    const inner: Message6 = {
      kind: 'relay',
      type: MSG.RELAY_FORW,
      hopCount: 0,
      linkAddress: parseIPv6('fd00:55::fe')!,
      peerAddress: parseIPv6('fe80::1')!,
      options: [
        interfaceId,
        { code: OPT6.CLIENT_LINKLAYER_ADDR, data: Buffer.from('0001525400aa00bb', 'hex') },
      ],
      inner: msg(MSG.SOLICIT, [ia(1), { code: OPT6.RAPID_COMMIT, data: Buffer.alloc(0) }]),
    };
    const outer: Message6 = {
      kind: 'relay',
      type: MSG.RELAY_FORW,
      hopCount: 1,
      linkAddress: 0n,
      peerAddress: parseIPv6('fd00:1::2')!,
      options: [],
      inner,
    };
    const relay = { address: 'fd00:1::2', port: 547 };
    const d = h.run(outer, relay);
    assert.ok(d.reply);
    assert.deepEqual([d.reply.address, d.reply.port], ['fd00:1::2', 547]);
    const top = d.reply.message;
    assert.ok(top.kind === 'relay' && top.type === MSG.RELAY_REPL && top.hopCount === 1);
    const second = top.inner;
    assert.ok(second.kind === 'relay' && second.type === MSG.RELAY_REPL);
    assert.equal(formatIPv6(second.linkAddress), 'fd00:55::fe');
    assert.deepEqual(option(second.options, OPT6.INTERFACE_ID), Buffer.from('port-7'));
    assert.equal(h.leases.all()[0]?.mac, '52:54:00:aa:00:bb', 'MAC from RFC 6939 option 79');
    const foreign = { ...inner, linkAddress: parseIPv6('fd99::1')! };
    assert.equal(h.run(foreign, relay).tag, 'unknown-link');
    h.store.close();
  });
});

describe('the DHCPv6 allocator and a node environment on a released address', () => {
  it("keeps a released address from other clients while a node's record names it", () => {
    const store = openStore({ path: ':memory:', logger: silentLogger() });
    const leases = new Lease6Store(store);
    const first = parseIPv6('fd00:55::100')!;
    const last = parseIPv6('fd00:55::101')!;
    // The node booted from ::100 and its firmware released it as the kernel took over (OVMF does).
    const nodes = new Map([['fd00:55::100', '52:54:00:06:00:01']]);
    const alloc = new Lease6Allocator(leases, first, last, 30_000, 600_000, (a, mac) => nodes.get(a) === mac);
    alloc.apply(
      { kind: 'bind', duid: 'aa', iaid: 1, mac: '52:54:00:06:00:01', address: first, validSeconds: 3600 },
      T0,
    );
    alloc.apply({ kind: 'release', duid: 'aa', iaid: 1, address: first }, T0 + 1000);
    // Another machine, after the cursor went round the range: it gets ::101, never the node's ::100.
    assert.equal(formatIPv6(alloc.choose('bb', 7, first, T0 + 2000)!), 'fd00:55::101');
    alloc.apply(
      { kind: 'bind', duid: 'bb', iaid: 7, mac: '52:54:00:06:00:02', address: last, validSeconds: 3600 },
      T0 + 2000,
    );
    assert.equal(
      alloc.choose('cc', 9, null, T0 + 3000),
      null,
      'the range is full while the node lives at ::100',
    );
    // The node's record moved on (its next boot took another address): ::100 is free again.
    nodes.delete('fd00:55::100');
    assert.equal(formatIPv6(alloc.choose('cc', 9, null, T0 + 3000)!), 'fd00:55::100');
    store.close();
  });
});
