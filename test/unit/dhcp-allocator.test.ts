import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, type Store } from '../../master/store/db.js';
import { ChangeStore } from '../../master/store/changes.js';
import { LeaseStore } from '../../master/store/leases.js';
import { silentLogger } from '../../master/util/logger.js';
import { LeaseAllocator } from '../../master/dhcp/allocator.js';
import { parseRange, validatePools, type Pool } from '../../master/dhcp/pool.js';

const T0 = Date.parse('2026-11-23T12:00:00Z');
const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const MAC_C = '52:54:00:00:00:0c';
const LEASE = { clientId: null, hostname: null, leaseSeconds: 600 };

function pool(start: string, end: string): Pool {
  const pools = validatePools([{ subnet: '10.0.0.0/24', rangeStart: start, rangeEnd: end }], '10.0.0.1');
  return pools[0] as Pool;
}

describe('dhcp allocator: leases survive a restart', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-dhcp-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a lease in SQLite survives reopening and is never given to another MAC', () => {
    const path = join(dir, 'corral.db');
    const p = pool('10.0.0.100', '10.0.0.101');
    {
      const store = openStore({ path, logger: silentLogger() });
      const alloc = new LeaseAllocator({ leases: new LeaseStore(store), logger: silentLogger() });
      const choice = alloc.choose(MAC_A, p, null, T0);
      assert.deepEqual(choice, { ip: '10.0.0.100', source: 'free' });
      alloc.bind(MAC_A, '10.0.0.100', LEASE, T0);
      // Nothing is in the store until the batch is committed ...
      assert.equal(new LeaseStore(store).get('10.0.0.100'), undefined);
      assert.equal(alloc.flush(), 1);
      // ... then it is, journaled for replication in the same transaction.
      const changes = new ChangeStore(store).since(0).filter((c) => c.entity === 'leases');
      assert.equal(changes.length, 1);
      assert.equal(changes[0]?.key, '10.0.0.100');
      store.close();
    }
    // A new process: nothing in memory, only the database.
    const store = openStore({ path, logger: silentLogger() });
    const alloc = new LeaseAllocator({ leases: new LeaseStore(store), logger: silentLogger() });
    assert.deepEqual(alloc.choose(MAC_B, p, '10.0.0.100', T0 + 1000), { ip: '10.0.0.101', source: 'free' });
    assert.equal(alloc.check(MAC_B, '10.0.0.100', p, T0 + 1000), 'taken');
    alloc.hold(MAC_B, '10.0.0.101', T0 + 1000);
    // Pool full: MAC_C gets nothing rather than MAC_A's address.
    assert.equal(alloc.choose(MAC_C, p, null, T0 + 1000), null);
    // MAC_A still gets its own address back.
    assert.deepEqual(alloc.choose(MAC_A, p, null, T0 + 2000), { ip: '10.0.0.100', source: 'current' });
    store.close();
  });
});

describe('dhcp allocator: allocation rules', () => {
  const fresh = (path = ':memory:'): { store: Store; leases: LeaseStore; alloc: LeaseAllocator } => {
    const store = openStore({ path, logger: silentLogger() });
    const leases = new LeaseStore(store);
    return {
      store,
      leases,
      alloc: new LeaseAllocator({
        leases,
        logger: silentLogger(),
        offerHoldMs: 30_000,
        declineQuarantineMs: 60_000,
      }),
    };
  };

  it('expiry frees an address for another MAC, and the sweep records it', () => {
    const { store, leases, alloc } = fresh();
    const p = pool('10.0.0.100', '10.0.0.100');
    alloc.bind(MAC_A, '10.0.0.100', LEASE, T0);
    assert.equal(alloc.choose(MAC_B, p, null, T0 + 599_000), null);
    assert.deepEqual(alloc.choose(MAC_B, p, null, T0 + 600_000), { ip: '10.0.0.100', source: 'free' });
    assert.equal(alloc.sweep(T0 + 600_000), 1);
    alloc.flush();
    assert.equal(leases.get('10.0.0.100')?.state, 'expired');
    assert.equal(alloc.boundCount(T0 + 600_000), 0);
    store.close();
  });

  it('offers are held for a while, then the address returns to the pool', () => {
    const { store, alloc } = fresh();
    const p = pool('10.0.0.100', '10.0.0.100');
    alloc.hold(MAC_A, '10.0.0.100', T0);
    assert.equal(alloc.choose(MAC_B, p, null, T0 + 29_000), null);
    assert.deepEqual(alloc.choose(MAC_B, p, null, T0 + 30_000), { ip: '10.0.0.100', source: 'free' });
    store.close();
  });

  it('order: reservation, current, requested, lowest free', () => {
    const { store, leases, alloc } = fresh();
    const p = pool('10.0.0.100', '10.0.0.110');
    leases.reserve({ mac: MAC_A, ip: '10.0.0.5', hostname: 'a' });
    assert.deepEqual(alloc.choose(MAC_A, p, '10.0.0.105', T0), { ip: '10.0.0.5', source: 'reservation' });
    alloc.bind(MAC_B, '10.0.0.107', LEASE, T0);
    assert.deepEqual(alloc.choose(MAC_B, p, '10.0.0.105', T0), { ip: '10.0.0.107', source: 'current' });
    assert.deepEqual(alloc.choose(MAC_C, p, '10.0.0.105', T0), { ip: '10.0.0.105', source: 'requested' });
    assert.deepEqual(alloc.choose(MAC_C, p, '10.0.0.107', T0), { ip: '10.0.0.100', source: 'free' });
    store.close();
  });

  it('check: a client with a reservation it can have now may have no other address', () => {
    const { store, leases, alloc } = fresh();
    const p = pool('10.0.0.100', '10.0.0.110');
    alloc.bind(MAC_A, '10.0.0.100', LEASE, T0);
    alloc.bind(MAC_B, '10.0.0.101', LEASE, T0);
    leases.reserve({ mac: MAC_A, ip: '10.0.0.5', hostname: null });
    assert.equal(alloc.check(MAC_A, '10.0.0.100', p, T0), 'not-its-reservation');
    assert.equal(alloc.check(MAC_A, '10.0.0.5', p, T0), 'ok');
    // A reservation held by another client's lease does not count until that lease ends.
    leases.reserve({ mac: MAC_C, ip: '10.0.0.101', hostname: null });
    alloc.bind(MAC_C, '10.0.0.102', LEASE, T0);
    assert.equal(alloc.check(MAC_C, '10.0.0.102', p, T0), 'ok');
    assert.equal(alloc.check(MAC_C, '10.0.0.102', p, T0 + 600_000), 'not-its-reservation');
    store.close();
  });

  it('a failed commit rebuilds the index from the store: nothing staged survives', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-dhcp-'));
    const { store, leases, alloc } = fresh(join(dir, 'corral.db'));
    const p = pool('10.0.0.100', '10.0.0.101');
    alloc.bind(MAC_A, '10.0.0.100', LEASE, T0);
    alloc.flush();
    alloc.bind(MAC_B, '10.0.0.101', LEASE, T0);
    assert.equal(alloc.check(MAC_C, '10.0.0.101', p, T0), 'taken');
    // A second connection breaks the file, as a full disk would; the store's own handle stays in store/.
    const saboteur = new Database(join(dir, 'corral.db'));
    saboteur.exec("CREATE TRIGGER fail BEFORE INSERT ON leases BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    saboteur.close();
    assert.throws(() => alloc.flush(), /disk full/);
    assert.equal(alloc.pendingWrites, 0);
    assert.equal(alloc.check(MAC_C, '10.0.0.101', p, T0), 'ok');
    assert.equal(alloc.check(MAC_C, '10.0.0.100', p, T0), 'taken');
    assert.equal(leases.get('10.0.0.101'), undefined);
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binding a new address releases the client’s old one: one binding per client', () => {
    const { store, leases, alloc } = fresh();
    alloc.bind(MAC_A, '10.0.0.100', LEASE, T0);
    alloc.bind(MAC_A, '10.0.0.103', LEASE, T0 + 1);
    alloc.flush();
    assert.equal(leases.get('10.0.0.100')?.state, 'released');
    assert.equal(leases.get('10.0.0.103')?.state, 'bound');
    store.close();
  });

  it('only the holder can decline an address; a declined one is quarantined, then free', () => {
    const { store, leases, alloc } = fresh();
    const p = pool('10.0.0.100', '10.0.0.101');
    alloc.bind(MAC_A, '10.0.0.100', LEASE, T0);
    assert.equal(alloc.decline(MAC_B, '10.0.0.100', T0), false);
    assert.equal(alloc.decline(MAC_B, '10.0.0.101', T0), false);
    assert.equal(alloc.decline(MAC_A, '10.0.0.100', T0), true);
    alloc.flush();
    assert.equal(leases.get('10.0.0.100')?.state, 'declined');
    assert.equal(alloc.check(MAC_A, '10.0.0.100', p, T0 + 59_000), 'declined');
    assert.deepEqual(alloc.choose(MAC_B, p, null, T0 + 59_000), { ip: '10.0.0.101', source: 'free' });
    assert.equal(alloc.check(MAC_B, '10.0.0.100', p, T0 + 60_000), 'ok');
    store.close();
  });

  it('the scan finds a released address below the busy part of the pool', () => {
    const { store, alloc } = fresh();
    const p = pool('10.0.0.100', '10.0.0.199');
    const macs = Array.from({ length: 50 }, (_, i) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`);
    macs.forEach((mac, i) => {
      const c = alloc.choose(mac, p, null, T0);
      assert.equal(c?.ip, `10.0.0.${100 + i}`);
      alloc.bind(mac, c?.ip ?? '', LEASE, T0);
    });
    alloc.release(macs[7] ?? '', '10.0.0.107', T0 + 1);
    assert.equal(alloc.choose(MAC_C, p, null, T0 + 2)?.ip, '10.0.0.107');
    alloc.bind(MAC_C, '10.0.0.107', LEASE, T0 + 2);
    assert.equal(alloc.choose(MAC_B, p, null, T0 + 3)?.ip, '10.0.0.150');
    // When the leases end, the scan starts from the bottom again and finds the lowest expired address.
    assert.equal(alloc.choose('52:54:00:00:02:00', p, null, T0 + 600_000)?.ip, '10.0.0.100');
    store.close();
  });

  it('never offers an excluded address (server, router, DNS) nor the reserved address of another', () => {
    const { store, leases, alloc } = fresh();
    const [p] = validatePools(
      [
        {
          subnet: '10.0.0.0/24',
          rangeStart: '10.0.0.1',
          rangeEnd: '10.0.0.4',
          router: '10.0.0.2',
          dns: ['10.0.0.3'],
        },
      ],
      '10.0.0.1',
    );
    leases.reserve({ mac: MAC_B, ip: '10.0.0.4', hostname: null });
    assert.equal(alloc.choose(MAC_A, p as Pool, null, T0), null);
    store.close();
  });
});

describe('dhcp pools: configuration checks', () => {
  it('parseRange', () => {
    assert.deepEqual(parseRange('10.0.0.100-10.0.0.200'), { start: '10.0.0.100', end: '10.0.0.200' });
    assert.throws(() => parseRange('10.0.0.200-10.0.0.100'), /above/);
    assert.throws(() => parseRange('10.0.0.100'), /form/);
    assert.throws(() => parseRange('10.0.0.100-10.0.0.300'), /not an IPv4/);
  });

  it('validatePools rejects a range outside its subnet, overlaps, bad routers', () => {
    const ok = { subnet: '10.0.0.0/24', rangeStart: '10.0.0.100', rangeEnd: '10.0.0.200' };
    assert.equal(validatePools([ok], '10.0.0.1').length, 1);
    assert.throws(() => validatePools([{ ...ok, rangeEnd: '10.0.1.5' }], '10.0.0.1'), /not inside/);
    assert.throws(
      () => validatePools([{ ...ok, rangeStart: '10.0.0.0' }], '10.0.0.1'),
      /network or broadcast/,
    );
    assert.throws(() => validatePools([{ ...ok, router: '10.9.0.1' }], '10.0.0.1'), /router .* outside/);
    assert.throws(() => validatePools([ok, { ...ok, subnet: '10.0.0.0/16' }], '10.0.0.1'), /overlaps/);
    assert.throws(
      () =>
        validatePools(
          [ok, { subnet: '10.0.0.128/25', rangeStart: '10.0.0.130', rangeEnd: '10.0.0.140' }],
          '10.0.0.1',
        ),
      /overlaps/,
    );
    assert.throws(() => validatePools([{ ...ok, subnet: '10.0.0.5/24' }], '10.0.0.1'), /host bits/);
    assert.throws(() => validatePools([], '10.0.0.1'), /at least one pool/);
    assert.throws(
      () =>
        validatePools([{ subnet: '10.0.0.0/8', rangeStart: '10.0.0.1', rangeEnd: '10.2.0.0' }], '10.0.0.1'),
      /more than 65536/,
    );
  });
});
