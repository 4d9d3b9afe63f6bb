import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, type Store } from '../../master/store/db.js';
import { LeaseStore } from '../../master/store/leases.js';
import { silentLogger } from '../../master/util/logger.js';
import { LeaseAllocator } from '../../master/dhcp/allocator.js';
import {
  DHCPACK,
  DHCPDECLINE,
  DHCPDISCOVER,
  DHCPINFORM,
  DHCPNAK,
  DHCPOFFER,
  DHCPRELEASE,
  DHCPREQUEST,
  FLAG_BROADCAST,
  PXE,
  decodePxeVendorOptions,
  emptyOptions,
  type DhcpOptions,
  type DhcpPacket,
} from '../../master/dhcp/codec.js';
import { validatePools, type PoolSpec } from '../../master/dhcp/pool.js';
import { decide, type Arrival, type Decision, type PolicyConfig } from '../../master/dhcp/policy.js';

const SERVER = '10.0.0.1';
const LOCAL: Arrival = { port: 'dhcp', source: { address: '0.0.0.0', port: 68 } };
const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const MAC_C = '52:54:00:00:00:0c';
const PXE_BIOS: Partial<DhcpOptions> = { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0] };
const T0 = Date.parse('2026-11-23T12:00:00Z');

const LOCAL_POOL: PoolSpec = {
  subnet: '10.0.0.0/24',
  rangeStart: '10.0.0.100',
  rangeEnd: '10.0.0.102',
  router: '10.0.0.254',
  dns: ['10.0.0.53'],
  domain: 'lab.example',
};
const RACK_POOL: PoolSpec = {
  subnet: '10.1.0.0/24',
  rangeStart: '10.1.0.50',
  rangeEnd: '10.1.0.60',
  router: '10.1.0.1',
};

function request(
  type: number,
  mac: string,
  options: Partial<DhcpOptions> = {},
  fields: Partial<DhcpPacket> = {},
): DhcpPacket {
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x1234,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: mac,
    sname: '',
    file: '',
    ...fields,
    options: { ...emptyOptions(), messageType: type, ...options },
  };
}

interface Harness {
  store: Store;
  leases: LeaseStore;
  allocator: LeaseAllocator;
  config: PolicyConfig;
  now: number;
  /** Decides and applies the effects, as the server does. */
  run(req: DhcpPacket, arrival?: Arrival): Decision;
  /** DISCOVER then REQUEST(selecting): the bound address. */
  lease(mac: string, options?: Partial<DhcpOptions>): string;
}

function harness(mode: 'server' | 'proxy' = 'server', pools: PoolSpec[] = [LOCAL_POOL, RACK_POOL]): Harness {
  const store = openStore({ path: ':memory:', logger: silentLogger() });
  const leases = new LeaseStore(store);
  const allocator = new LeaseAllocator({ leases, logger: silentLogger() });
  const config: PolicyConfig = Object.freeze({
    mode,
    serverAddress: SERVER,
    pools: pools.length === 0 ? [] : validatePools(pools, SERVER),
    leaseSeconds: 3600,
    boot: {
      httpBaseUrl: 'http://10.0.0.1:8080/',
      biosFile: 'undionly.kpxe',
      uefiFile: 'ipxe.efi',
      tftpServer: SERVER,
    },
  });
  const h: Harness = {
    store,
    leases,
    allocator,
    config,
    now: T0,
    run(req, arrival = LOCAL) {
      const d = decide(req, arrival, config, allocator, h.now);
      for (const e of d.effects) allocator.apply(e, h.now);
      allocator.flush();
      return d;
    },
    lease(mac, options = {}) {
      const offer = h.run(request(DHCPDISCOVER, mac, options));
      const ip = offer.reply?.packet.yiaddr;
      assert.ok(ip, `no offer for ${mac}: ${offer.note}`);
      const ack = h.run(request(DHCPREQUEST, mac, { ...options, serverId: SERVER, requestedIp: ip }));
      assert.equal(ack.reply?.packet.options.messageType, DHCPACK, ack.note);
      return ip;
    },
  };
  return h;
}

function replyOf(d: Decision): { packet: DhcpPacket; to: { address: string; port: number } } {
  assert.ok(d.reply, `expected a reply, got silence: ${d.note}`);
  return d.reply;
}

describe('dhcp policy: server mode (RFC 2131 §4.3)', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });
  afterEach(() => h.store.close());

  it('DHCPDISCOVER → DHCPOFFER with the lowest free address and the subnet configuration (§4.3.1)', () => {
    const d = h.run(request(DHCPDISCOVER, MAC_A));
    const { packet, to } = replyOf(d);
    assert.equal(packet.op, 2);
    assert.equal(packet.options.messageType, DHCPOFFER);
    assert.equal(packet.yiaddr, '10.0.0.100');
    assert.equal(packet.ciaddr, '0.0.0.0');
    assert.equal(packet.xid, 0x1234);
    assert.equal(packet.options.serverId, SERVER);
    assert.equal(packet.options.leaseTime, 3600);
    assert.equal(packet.options.renewalTime, 1800);
    assert.equal(packet.options.rebindingTime, 3150);
    assert.equal(packet.options.subnetMask, '255.255.255.0');
    assert.deepEqual(packet.options.routers, ['10.0.0.254']);
    assert.deepEqual(packet.options.dnsServers, ['10.0.0.53']);
    assert.equal(packet.options.domainName, 'lab.example');
    assert.deepEqual(to, { address: '255.255.255.255', port: 68, why: 'client has no address yet' });
    assert.deepEqual(d.effects, [{ kind: 'hold', mac: MAC_A, ip: '10.0.0.100' }]);
    // Not a PXE client: an address, no boot file.
    assert.equal(packet.file, '');
    assert.equal(packet.siaddr, '0.0.0.0');
  });

  it('an offered address is held: a second client gets another one', () => {
    h.run(request(DHCPDISCOVER, MAC_A));
    assert.equal(replyOf(h.run(request(DHCPDISCOVER, MAC_B))).packet.yiaddr, '10.0.0.101');
    // ... and the first client, asking again, gets the same offer back.
    assert.equal(replyOf(h.run(request(DHCPDISCOVER, MAC_A))).packet.yiaddr, '10.0.0.100');
  });

  it('DHCPREQUEST (selecting) → DHCPACK, committed to the store first (§4.3.2, §3.1)', () => {
    h.run(request(DHCPDISCOVER, MAC_A));
    const d = h.run(
      request(DHCPREQUEST, MAC_A, { serverId: SERVER, requestedIp: '10.0.0.100', hostname: 'n1' }),
    );
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPACK);
    assert.equal(packet.yiaddr, '10.0.0.100');
    assert.equal(packet.options.leaseTime, 3600);
    assert.equal(to.address, '255.255.255.255');
    const row = h.leases.get('10.0.0.100');
    assert.equal(row?.mac, MAC_A);
    assert.equal(row?.state, 'bound');
    assert.equal(row?.hostname, 'n1');
    assert.equal(row?.expiresAt, T0 + 3600_000);
  });

  it('DHCPREQUEST for another server’s offer → silence, and our offer is withdrawn', () => {
    h.run(request(DHCPDISCOVER, MAC_A));
    const d = h.run(request(DHCPREQUEST, MAC_A, { serverId: '10.0.0.2', requestedIp: '10.0.0.200' }));
    assert.equal(d.reply, null);
    assert.deepEqual(d.effects, [{ kind: 'unhold', mac: MAC_A }]);
    assert.equal(replyOf(h.run(request(DHCPDISCOVER, MAC_B))).packet.yiaddr, '10.0.0.100');
  });

  it('DHCPREQUEST (selecting) for an address bound to someone else → DHCPNAK', () => {
    h.lease(MAC_A);
    const d = h.run(request(DHCPREQUEST, MAC_B, { serverId: SERVER, requestedIp: '10.0.0.100' }));
    assert.equal(replyOf(d).packet.options.messageType, DHCPNAK);
    assert.match(d.note, /taken/);
  });

  it('DHCPREQUEST (init-reboot) on the wrong subnet → DHCPNAK, broadcast (§4.3.2, §4.1)', () => {
    const d = h.run(request(DHCPREQUEST, MAC_A, { requestedIp: '192.168.1.20' }));
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPNAK);
    assert.equal(packet.yiaddr, '0.0.0.0');
    assert.equal(packet.options.leaseTime, undefined);
    assert.match(packet.options.message ?? '', /not on subnet/);
    assert.equal(to.address, '255.255.255.255');
    assert.equal(to.port, 68);
  });

  it('DHCPNAK through a relay goes to the relay with the broadcast bit set (§4.3.2)', () => {
    const d = h.run(request(DHCPREQUEST, MAC_A, { requestedIp: '10.0.0.100' }, { giaddr: '10.1.0.1' }));
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPNAK);
    assert.equal(packet.flags & FLAG_BROADCAST, FLAG_BROADCAST);
    assert.deepEqual([to.address, to.port], ['10.1.0.1', 67]);
  });

  it('DHCPREQUEST (init-reboot): ACK for the address on record, silence for a stranger, NAK for a taken address', () => {
    const ip = h.lease(MAC_A);
    assert.equal(
      replyOf(h.run(request(DHCPREQUEST, MAC_A, { requestedIp: ip }))).packet.options.messageType,
      DHCPACK,
    );
    // "If the DHCP server has no record of this client, then it MUST remain silent."
    assert.equal(h.run(request(DHCPREQUEST, MAC_B, { requestedIp: '10.0.0.101' })).reply, null);
    assert.equal(
      replyOf(h.run(request(DHCPREQUEST, MAC_B, { requestedIp: ip }))).packet.options.messageType,
      DHCPNAK,
    );
    // A known client asking for an address other than its own is corrected.
    assert.equal(
      replyOf(h.run(request(DHCPREQUEST, MAC_A, { requestedIp: '10.0.0.102' }))).packet.options.messageType,
      DHCPNAK,
    );
  });

  it('RENEWING: DHCPACK unicast to ciaddr, lease extended', () => {
    const ip = h.lease(MAC_A);
    h.now += 1800_000;
    const d = h.run(request(DHCPREQUEST, MAC_A, {}, { ciaddr: ip }));
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPACK);
    assert.equal(packet.ciaddr, ip);
    assert.equal(packet.yiaddr, ip);
    assert.deepEqual([to.address, to.port], [ip, 68]);
    assert.equal(h.leases.get(ip)?.expiresAt, h.now + 3600_000);
  });

  it('RENEWING a relayed lease straight to the server (giaddr 0, ciaddr on the rack) → DHCPACK to ciaddr (§4.3.2, §4.1)', () => {
    const relayed = { giaddr: '10.1.0.1', hops: 1 };
    const offer = replyOf(h.run(request(DHCPDISCOVER, MAC_A, {}, relayed))).packet;
    const ip = offer.yiaddr;
    assert.equal(ip, '10.1.0.50');
    const bound = h.run(request(DHCPREQUEST, MAC_A, { serverId: SERVER, requestedIp: ip }, relayed));
    assert.equal(replyOf(bound).packet.options.messageType, DHCPACK);
    // At T1 the client unicasts to the server identifier: no relay, so giaddr is 0 and ciaddr says where it is.
    h.now += 1800_000;
    const from: Arrival = { port: 'dhcp', source: { address: ip, port: 68 } };
    const d = h.run(request(DHCPREQUEST, MAC_A, {}, { ciaddr: ip }), from);
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPACK, d.note);
    assert.equal(packet.yiaddr, ip);
    assert.equal(packet.ciaddr, ip);
    assert.equal(packet.giaddr, '0.0.0.0');
    assert.equal(packet.flags & FLAG_BROADCAST, 0);
    // The rack's configuration, not the local segment's.
    assert.deepEqual(packet.options.routers, ['10.1.0.1']);
    assert.equal(packet.options.subnetMask, '255.255.255.0');
    assert.deepEqual(to, { address: ip, port: 68, why: 'client has an address (ciaddr)' });
    assert.equal(h.leases.get(ip)?.expiresAt, h.now + 3600_000);
    assert.equal(h.leases.get(ip)?.mac, MAC_A);
  });

  it('RENEWING with a ciaddr on no configured subnet → DHCPNAK, broadcast (§4.1)', () => {
    h.lease(MAC_A);
    const d = h.run(request(DHCPREQUEST, MAC_A, {}, { ciaddr: '172.16.0.9' }));
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPNAK);
    assert.match(packet.options.message ?? '', /172\.16\.0\.9 is not on subnet/);
    assert.deepEqual([to.address, to.port], ['255.255.255.255', 68]);
  });

  it('DHCPRELEASE frees the address (§4.3.4); the client gets it back later as its previous address', () => {
    const ip = h.lease(MAC_A);
    const d = h.run(request(DHCPRELEASE, MAC_A, { serverId: SERVER }, { ciaddr: ip }));
    assert.equal(d.reply, null);
    assert.equal(h.leases.get(ip)?.state, 'released');
    // Free for anyone now...
    assert.equal(h.allocator.check(MAC_B, ip, h.config.pools[0]!, h.now), 'ok');
    // ... and offered to its previous holder first (§4.3.1).
    assert.equal(replyOf(h.run(request(DHCPDISCOVER, MAC_A))).packet.yiaddr, ip);
  });

  it('DHCPRELEASE from a client that does not hold the address changes nothing', () => {
    const ip = h.lease(MAC_A);
    h.run(request(DHCPRELEASE, MAC_B, { serverId: SERVER }, { ciaddr: ip }));
    assert.equal(h.leases.get(ip)?.state, 'bound');
  });

  it('DHCPDECLINE quarantines the address (§4.3.3), even from the client that declined it', () => {
    const ip = h.lease(MAC_A);
    const d = h.run(request(DHCPDECLINE, MAC_A, { serverId: SERVER, requestedIp: ip }));
    assert.equal(d.reply, null);
    assert.equal(d.level, 'warn');
    assert.equal(h.leases.get(ip)?.state, 'declined');
    assert.equal(replyOf(h.run(request(DHCPDISCOVER, MAC_A))).packet.yiaddr, '10.0.0.101');
    assert.equal(replyOf(h.run(request(DHCPDISCOVER, MAC_B))).packet.yiaddr, '10.0.0.102');
  });

  it('DHCPINFORM → DHCPACK with configuration, no yiaddr and no lease time (§4.3.5)', () => {
    const d = h.run(request(DHCPINFORM, MAC_A, { paramRequestList: [1, 3, 6] }, { ciaddr: '10.0.0.7' }));
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPACK);
    assert.equal(packet.yiaddr, '0.0.0.0');
    assert.equal(packet.ciaddr, '10.0.0.7');
    assert.equal(packet.options.leaseTime, undefined);
    assert.equal(packet.options.renewalTime, undefined);
    assert.deepEqual(packet.options.routers, ['10.0.0.254']);
    assert.deepEqual([to.address, to.port], ['10.0.0.7', 68]);
    assert.deepEqual(d.effects, []);
  });

  it('pool exhausted → no offer, logged as a warning', () => {
    h.lease(MAC_A);
    h.lease(MAC_B);
    h.lease(MAC_C);
    const d = h.run(request(DHCPDISCOVER, '52:54:00:00:00:0d'));
    assert.equal(d.reply, null);
    assert.equal(d.level, 'warn');
    assert.equal(d.tag, 'pool-exhausted');
    assert.match(d.note, /pool 10\.0\.0\.0\/24 exhausted/);
  });

  it('a reservation is honoured, even outside the dynamic range, and given to no one else', () => {
    h.leases.reserve({ mac: MAC_B, ip: '10.0.0.20', hostname: 'db-1' });
    h.leases.reserve({ mac: MAC_C, ip: '10.0.0.100', hostname: null });
    const offer = replyOf(h.run(request(DHCPDISCOVER, MAC_B))).packet;
    assert.equal(offer.yiaddr, '10.0.0.20');
    assert.equal(offer.options.hostname, 'db-1');
    assert.equal(h.lease(MAC_B), '10.0.0.20');
    // 10.0.0.100 is MAC_C's reservation: MAC_A skips it.
    assert.equal(h.lease(MAC_A), '10.0.0.101');
    const d = h.run(request(DHCPREQUEST, MAC_A, { serverId: SERVER, requestedIp: '10.0.0.100' }));
    assert.equal(replyOf(d).packet.options.messageType, DHCPNAK);
    assert.match(d.note, /reserved/);
  });

  it('a reservation whose address is still leased to another client: a dynamic offer, and a warning', () => {
    const ip = h.lease(MAC_A);
    h.leases.reserve({ mac: MAC_B, ip, hostname: null });
    const d = h.run(request(DHCPDISCOVER, MAC_B));
    assert.equal(replyOf(d).packet.yiaddr, '10.0.0.101');
    assert.equal(d.level, 'warn');
    assert.match(d.note, /reserved address 10\.0\.0\.100 is leased to another client/);
  });

  it('a reservation added after a dynamic lease: the old address is NAKed on renew and reboot, the reservation offered', () => {
    const old = h.lease(MAC_A);
    assert.equal(old, '10.0.0.100');
    h.leases.reserve({ mac: MAC_A, ip: '10.0.0.20', hostname: 'db-1' });
    h.now += 1800_000;
    // RENEWING (ciaddr) and INIT-REBOOT (option 50) for the old address are both refused ...
    for (const req of [
      request(DHCPREQUEST, MAC_A, {}, { ciaddr: old }),
      request(DHCPREQUEST, MAC_A, { requestedIp: old }),
    ]) {
      const d = h.run(req);
      const { packet, to } = replyOf(d);
      assert.equal(packet.options.messageType, DHCPNAK, d.note);
      assert.equal(
        packet.options.message,
        `${old} is not the address reserved for ${MAC_A} (10.0.0.20); ask again`,
      );
      assert.equal(to.address, '255.255.255.255');
      assert.deepEqual(d.effects, []);
    }
    // ... and the client, back in INIT, is offered and bound to its reservation; the old lease is let go.
    assert.equal(h.lease(MAC_A), '10.0.0.20');
    assert.equal(h.leases.get('10.0.0.20')?.hostname, 'db-1');
    assert.equal(h.leases.get(old)?.state, 'released');
    // Renewing the reservation is acknowledged.
    const renew = h.run(request(DHCPREQUEST, MAC_A, {}, { ciaddr: '10.0.0.20' }));
    assert.equal(replyOf(renew).packet.options.messageType, DHCPACK);
  });

  it('a reservation still leased to another client does not NAK the dynamic address until that lease ends', () => {
    const held = h.lease(MAC_A);
    const dynamic = h.lease(MAC_B);
    h.leases.reserve({ mac: MAC_B, ip: held, hostname: null });
    // MAC_B cannot have its reservation yet: refusing its dynamic address would leave it nothing.
    const renew = h.run(request(DHCPREQUEST, MAC_B, {}, { ciaddr: dynamic }));
    assert.equal(replyOf(renew).packet.options.messageType, DHCPACK, renew.note);
    // Once MAC_A lets go, MAC_B's next renewal is refused and it moves to the reservation.
    h.run(request(DHCPRELEASE, MAC_A, { serverId: SERVER }, { ciaddr: held }));
    const moved = h.run(request(DHCPREQUEST, MAC_B, {}, { ciaddr: dynamic }));
    assert.equal(replyOf(moved).packet.options.messageType, DHCPNAK, moved.note);
    assert.equal(h.lease(MAC_B), held);
  });

  it('a reservation on another pool’s subnet does not disturb a lease on this one', () => {
    const ip = h.lease(MAC_A);
    h.leases.reserve({ mac: MAC_A, ip: '10.1.0.55', hostname: null });
    const d = h.run(request(DHCPREQUEST, MAC_A, {}, { ciaddr: ip }));
    assert.equal(replyOf(d).packet.options.messageType, DHCPACK, d.note);
  });

  it('the requested address (option 50) is offered when free', () => {
    assert.equal(
      replyOf(h.run(request(DHCPDISCOVER, MAC_A, { requestedIp: '10.0.0.102' }))).packet.yiaddr,
      '10.0.0.102',
    );
    // Out of range or taken: ignored, the lowest free one instead.
    assert.equal(
      replyOf(h.run(request(DHCPDISCOVER, MAC_B, { requestedIp: '10.0.0.102' }))).packet.yiaddr,
      '10.0.0.100',
    );
    assert.equal(
      replyOf(h.run(request(DHCPDISCOVER, MAC_C, { requestedIp: '10.0.0.9' }))).packet.yiaddr,
      '10.0.0.101',
    );
  });

  it('a relayed request (giaddr) gets an address from the relay’s subnet and goes back to the relay', () => {
    const relayed = { giaddr: '10.1.0.1', hops: 1 };
    const d = h.run(request(DHCPDISCOVER, MAC_A, PXE_BIOS, relayed));
    const { packet, to } = replyOf(d);
    assert.equal(packet.yiaddr, '10.1.0.50');
    assert.equal(packet.giaddr, '10.1.0.1');
    assert.equal(packet.hops, 0);
    assert.deepEqual(packet.options.routers, ['10.1.0.1']);
    assert.equal(packet.file, 'undionly.kpxe');
    assert.deepEqual([to.address, to.port], ['10.1.0.1', 67]);
    const ack = h.run(request(DHCPREQUEST, MAC_A, { serverId: SERVER, requestedIp: '10.1.0.50' }, relayed));
    assert.equal(replyOf(ack).packet.options.messageType, DHCPACK);
    assert.equal(replyOf(ack).to.address, '10.1.0.1');
    // A relay on no configured subnet is ignored, with a warning.
    const lost = h.run(request(DHCPDISCOVER, MAC_B, {}, { giaddr: '172.16.0.1' }));
    assert.equal(lost.reply, null);
    assert.equal(lost.tag, 'unknown-relay');
  });

  it('echoes the relay agent information option (RFC 3046 §2.2)', () => {
    const info = Buffer.from([1, 4, 0x65, 0x74, 0x68, 0x30]);
    const d = h.run(request(DHCPDISCOVER, MAC_A, { relayAgentInfo: info }, { giaddr: '10.1.0.1' }));
    assert.deepStrictEqual(replyOf(d).packet.options.relayAgentInfo, info);
  });

  it('ignores replies, plain BOOTP and non-Ethernet hardware', () => {
    assert.equal(h.run({ ...request(DHCPOFFER, MAC_A), op: 2 }).reply, null);
    const bootp = request(DHCPDISCOVER, MAC_A);
    delete bootp.options.messageType;
    assert.equal(h.run(bootp).reply, null);
    assert.equal(h.run(request(DHCPDISCOVER, '', {}, { htype: 32, hlen: 0 })).reply, null);
  });

  it('answers nothing on port 4011 in server mode', () => {
    assert.equal(
      h.run(request(DHCPREQUEST, MAC_A, PXE_BIOS), { port: 'pxe', source: { address: '10.0.0.9', port: 68 } })
        .reply,
      null,
    );
  });
});

describe('dhcp policy: PXE boot information', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });
  afterEach(() => h.store.close());

  const offer = (options: Partial<DhcpOptions>, mac = MAC_A): DhcpPacket =>
    replyOf(h.run(request(DHCPDISCOVER, mac, options))).packet;

  it('BIOS PXE ROM (arch 0) → undionly.kpxe from next-server', () => {
    const p = offer({ ...PXE_BIOS, paramRequestList: [1, 3, 66, 67] });
    assert.equal(p.file, 'undionly.kpxe');
    assert.equal(p.siaddr, SERVER);
    assert.equal(p.options.bootfileName, 'undionly.kpxe');
    assert.equal(p.options.tftpServerName, SERVER);
    // Server mode leases the address itself: no proxyDHCP markers.
    assert.equal(p.options.vendorClassId, undefined);
    assert.equal(p.options.vendorSpecific, undefined);
  });

  it('options 66/67 only when asked for; a ROM without option 93 is BIOS', () => {
    const p = offer({ vendorClassId: 'PXEClient' });
    assert.equal(p.file, 'undionly.kpxe');
    assert.equal(p.options.bootfileName, undefined);
    assert.equal(p.options.tftpServerName, undefined);
  });

  it('UEFI x86-64 (arch 7 and 9) → ipxe.efi; IA32 UEFI (6) → the UEFI file; ARM → nothing', () => {
    assert.equal(
      offer({ vendorClassId: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7] }).file,
      'ipxe.efi',
    );
    assert.equal(offer({ vendorClassId: 'PXEClient', clientArch: [9] }, MAC_B).file, 'ipxe.efi');
    assert.equal(offer({ vendorClassId: 'PXEClient', clientArch: [6] }, MAC_C).file, 'ipxe.efi');
    h.lease(MAC_A);
    h.lease(MAC_B);
    h.run(request(DHCPRELEASE, MAC_A, { serverId: SERVER }, { ciaddr: '10.0.0.100' }));
    const arm = offer(
      { vendorClassId: 'PXEClient:Arch:00011:UNDI:003016', clientArch: [11] },
      '52:54:00:00:00:1f',
    );
    assert.equal(arm.file, '');
    assert.notEqual(arm.yiaddr, '0.0.0.0');
  });

  it('the architecture comes from the vendor class when option 93 is missing', () => {
    assert.equal(offer({ vendorClassId: 'PXEClient:Arch:00007:UNDI:003016' }).file, 'ipxe.efi');
  });

  it('iPXE (user class "iPXE") → the HTTP URL of its boot script, so it chainloads exactly once', () => {
    const p = offer({ ...PXE_BIOS, userClass: ['iPXE'], paramRequestList: [67] });
    assert.equal(p.file, `http://10.0.0.1:8080/boot/ipxe?mac=${MAC_A}&platform=\${platform}`);
    assert.equal(p.options.bootfileName, p.file);
    const ack = replyOf(
      h.run(
        request(DHCPREQUEST, MAC_A, {
          ...PXE_BIOS,
          userClass: ['iPXE'],
          serverId: SERVER,
          requestedIp: p.yiaddr,
        }),
      ),
    );
    assert.equal(ack.packet.file, p.file);
  });
});

describe('dhcp policy: proxyDHCP mode (PXE 2.1 §2.2.3)', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness('proxy', []);
  });
  afterEach(() => h.store.close());

  const uuid = Buffer.from('00' + '11'.repeat(16), 'hex');

  it('a PXE DHCPDISCOVER on port 67 gets boot information and no address', () => {
    const d = h.run(
      request(DHCPDISCOVER, MAC_A, { ...PXE_BIOS, clientUuid: uuid }, { flags: FLAG_BROADCAST }),
    );
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPOFFER);
    assert.equal(packet.yiaddr, '0.0.0.0');
    assert.equal(packet.siaddr, SERVER);
    assert.equal(packet.file, 'undionly.kpxe');
    assert.equal(packet.options.serverId, SERVER);
    assert.equal(packet.options.vendorClassId, 'PXEClient');
    assert.deepStrictEqual(packet.options.clientUuid, uuid);
    assert.equal(packet.options.leaseTime, undefined);
    assert.equal(packet.options.subnetMask, undefined);
    const pxe = decodePxeVendorOptions(packet.options.vendorSpecific ?? Buffer.alloc(0));
    assert.deepEqual([...(pxe?.get(PXE.DISCOVERY_CONTROL) ?? [])], [8]);
    assert.deepEqual([to.address, to.port], ['255.255.255.255', 68]);
    assert.deepEqual(d.effects, []);
  });

  it('non-PXE clients and other messages on port 67 are left to the real DHCP server', () => {
    assert.equal(h.run(request(DHCPDISCOVER, MAC_A)).reply, null);
    assert.equal(
      h.run(request(DHCPREQUEST, MAC_A, { ...PXE_BIOS, serverId: '10.0.0.2', requestedIp: '10.0.0.40' }))
        .reply,
      null,
    );
  });

  it('a DHCPREQUEST on port 4011 gets a DHCPACK back to its source, echoing the boot item', () => {
    const item = Buffer.from([0x80, 0, 0, 0]);
    const vendorSpecific = Buffer.from([PXE.BOOT_ITEM, 4, ...item, 255]);
    const arrival: Arrival = { port: 'pxe', source: { address: '10.0.0.40', port: 4011 } };
    const d = h.run(
      request(DHCPREQUEST, MAC_A, { ...PXE_BIOS, clientArch: [7], vendorSpecific }, { ciaddr: '10.0.0.40' }),
      arrival,
    );
    const { packet, to } = replyOf(d);
    assert.equal(packet.options.messageType, DHCPACK);
    assert.equal(packet.yiaddr, '0.0.0.0');
    assert.equal(packet.ciaddr, '10.0.0.40');
    assert.equal(packet.file, 'ipxe.efi');
    assert.deepEqual([to.address, to.port], ['10.0.0.40', 4011]);
    const pxe = decodePxeVendorOptions(packet.options.vendorSpecific ?? Buffer.alloc(0));
    assert.deepStrictEqual(pxe?.get(PXE.BOOT_ITEM), item);
  });

  it('iPXE in proxy mode gets the boot script URL', () => {
    const p = replyOf(h.run(request(DHCPDISCOVER, MAC_A, { ...PXE_BIOS, userClass: ['iPXE'] }))).packet;
    assert.equal(p.file, `http://10.0.0.1:8080/boot/ipxe?mac=${MAC_A}&platform=\${platform}`);
    assert.equal(p.yiaddr, '0.0.0.0');
  });

  it('an architecture with no boot file gets no proxy offer', () => {
    assert.equal(
      h.run(request(DHCPDISCOVER, MAC_A, { vendorClassId: 'PXEClient', clientArch: [11] })).reply,
      null,
    );
  });
});
