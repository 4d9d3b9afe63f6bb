/**
 * Issue 14, findings 2 and 6, at the domain level (temporary SQLite store): a known node cannot be taken
 * over by an enlist from another address, its address only comes from its lease or first contact, a
 * rebooted node gets a new credential only from that address in a state that boots the node environment;
 * the strict inventory schema, the new-MAC token buckets and the refusal record. The same over HTTP,
 * against a real master in namespaces, is test/integration/enlist-trust.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enlist, type EnlistContext } from '../../master/nodes/enlist.js';
import { EnlistSchema } from '../../master/nodes/inventory.js';
import { credentialMatches, hashCredential } from '../../master/nodes/credentials.js';
import { NewMacLimiter, TokenBucket } from '../../master/nodes/enlist-rate.js';
import { EnlistGuard } from '../../master/nodes/enlist-guard.js';
import { transition } from '../../master/nodes/lifecycle.js';
import { CorralError } from '../../master/util/errors.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos, testConfig } from '../helpers/repos.js';

const MAC = '52:54:00:14:02:01';
const LEASE = '10.99.0.120';
const ATTACKER = '10.99.0.66';
const body = (memoryBytes: number): ReturnType<typeof EnlistSchema.parse> =>
  EnlistSchema.parse({ mac: MAC, mode: 'discover', inventory: { memoryBytes } });
const ctx = (sourceIp: string | null, credential?: string, leaseIp?: string): EnlistContext => ({
  sourceIp,
  credential,
  leaseIp,
});
const code = (c: string) => (e: unknown) => e instanceof CorralError && e.code === c;

test('server mode: an enlist naming a known MAC from another address changes nothing and gets no credential', () => {
  const t = tempRepos();
  try {
    const config = testConfig({ dhcp: { mode: 'server', range: '10.99.0.100-10.99.0.199' } });
    const first = enlist(t.repos, config, body(1024), ctx(LEASE, undefined, LEASE));
    assert.equal(first.created, true);
    assert.equal(first.node.ip, LEASE);
    const cred = first.reply.credential;
    assert.match(cred ?? '', /^[0-9a-f]{64}$/);
    assert.equal(t.repos.nodeCredentials.get(MAC)?.hash, hashCredential(cred ?? ''), 'only the hash is kept');
    const before = t.repos.store.lastChangeSeq();

    // Today's takeover: the attacker names the MAC from its own address, without or with a made-up credential.
    assert.throws(
      () => enlist(t.repos, config, body(1), ctx(ATTACKER, undefined, LEASE)),
      code('NODE_CREDENTIAL_REQUIRED'),
    );
    assert.throws(
      () => enlist(t.repos, config, body(1), ctx(ATTACKER, 'e'.repeat(64), LEASE)),
      code('NODE_CREDENTIAL_INVALID'),
    );
    const node = t.repos.nodes.get(MAC);
    assert.equal(node?.ip, LEASE);
    assert.equal(node?.inventory['memoryBytes'], 1024);
    assert.equal(t.repos.store.lastChangeSeq(), before, 'a refused enlist writes nothing');
    assert.ok(credentialMatches(t.repos, MAC, cred), 'the node keeps its credential');

    // The credential works from anywhere, but never moves the address.
    const again = enlist(t.repos, config, body(2048), ctx(ATTACKER, cred, LEASE));
    assert.equal(again.node.ip, LEASE);
    assert.equal(again.reply.credential, undefined);
    assert.equal(again.node.inventory['memoryBytes'], 2048);
  } finally {
    t.cleanup();
  }
});

test('a rebooted node (no credential) gets a new one from its lease address in a node-environment state only', () => {
  const t = tempRepos();
  try {
    const config = testConfig({ dhcp: { mode: 'server', range: '10.99.0.100-10.99.0.199' } });
    const old = enlist(t.repos, config, body(1024), ctx(LEASE, undefined, LEASE)).reply.credential;
    const re = enlist(t.repos, config, body(1024), ctx(LEASE, undefined, LEASE));
    assert.match(re.reply.credential ?? '', /^[0-9a-f]{64}$/);
    assert.equal(re.credentialIssued, 'recovery');
    assert.equal(credentialMatches(t.repos, MAC, old), false, 'the previous credential stops working');
    assert.equal(t.repos.nodeCredentials.get(MAC)?.reason, 'recovery');
    // A node that moved to another lease: the lease, not the request, is where it is.
    assert.throws(
      () => enlist(t.repos, config, body(1), ctx(LEASE, undefined, '10.99.0.121')),
      code('NODE_CREDENTIAL_REQUIRED'),
    );
    const moved = enlist(t.repos, config, body(1), ctx('10.99.0.121', undefined, '10.99.0.121'));
    assert.equal(moved.node.ip, '10.99.0.121');

    // Deployed: its credential is on its disk; it never boots the node environment, so none is issued.
    transition(t.repos, MAC, { to: 'deploying' });
    transition(t.repos, MAC, { to: 'deployed' });
    assert.throws(
      () => enlist(t.repos, config, body(1), ctx('10.99.0.121', undefined, '10.99.0.121')),
      (e: unknown) =>
        e instanceof CorralError && e.code === 'NODE_CREDENTIAL_REQUIRED' && /is deployed/.test(e.message),
    );
  } finally {
    t.cleanup();
  }
});

test('proxy mode: the address is the first contact; a new credential only from it', () => {
  const t = tempRepos();
  try {
    const config = testConfig({ dhcp: { mode: 'proxy' } });
    const first = enlist(t.repos, config, body(1), ctx('192.168.5.20', undefined, '10.1.1.1'));
    assert.equal(first.node.ip, '192.168.5.20', 'no lease of ours in proxy mode: the first contact');
    assert.throws(
      () => enlist(t.repos, config, body(1), ctx('192.168.5.21')),
      code('NODE_CREDENTIAL_REQUIRED'),
    );
    assert.ok(enlist(t.repos, config, body(1), ctx('192.168.5.20')).reply.credential);
    assert.throws(() => enlist(t.repos, config, body(1), ctx(null)), code('NODE_CREDENTIAL_REQUIRED'));
  } finally {
    t.cleanup();
  }
});

test('the enlist schema is strict and bounded: unknown fields and oversized values are refused', () => {
  const ok = { mac: MAC, inventory: { cpu: { model: null, count: null }, memoryBytes: null } };
  assert.ok(EnlistSchema.safeParse(ok).success, 'nulls the agent prints for missing files');
  const refused: [string, unknown][] = [
    ['top-level field', { ...ok, junk: 'x' }],
    ['inventory field', { mac: MAC, inventory: { junk: 'x'.repeat(1000) } }],
    ['nested field', { mac: MAC, inventory: { dmi: { vendor: 'a', extra: 1 } } }],
    ['long string', { mac: MAC, inventory: { dmi: { vendor: 'v'.repeat(257) } } }],
    [
      'too many disks',
      { mac: MAC, inventory: { disks: Array.from({ length: 129 }, () => ({ name: 'd', sizeBytes: 1 })) } },
    ],
    ['unknown mode', { ...ok, mode: 'attack' }],
  ];
  for (const [what, value] of refused) assert.equal(EnlistSchema.safeParse(value).success, false, what);
});

test('token buckets: new MACs limited per address and in all, refilled over time', () => {
  let now = 0;
  const limiter = new NewMacLimiter(
    { perIpBurst: 3, perIpPerMinute: 60, globalBurst: 5, globalPerMinute: 60 },
    () => now,
  );
  const results = Array.from({ length: 5 }, () => limiter.admit('10.0.0.1').ok);
  assert.deepEqual(results, [true, true, true, false, false]);
  const refused = limiter.admit('10.0.0.1');
  assert.ok(!refused.ok && refused.scope === 'address' && refused.retryAfterSeconds === 1);
  assert.ok(limiter.admit('10.0.0.2').ok);
  assert.ok(limiter.admit('10.0.0.3').ok);
  const global = limiter.admit('10.0.0.4');
  assert.ok(!global.ok && global.scope === 'global');
  now += 1000; // one token per second in each bucket
  assert.ok(limiter.admit('10.0.0.1').ok);
  assert.equal(limiter.admit('10.0.0.1').ok, false);
  const b = new TokenBucket(2, 0, 0);
  b.take(0);
  b.take(0);
  assert.equal(b.waitMs(10_000), Infinity, 'no refill, no promise');
});

test('refusals are counted, and recorded as at most one event per reason per minute', () => {
  let now = 1_000_000;
  const t = tempRepos();
  try {
    const config = testConfig({ nodes: { enlistRate: { perIpBurst: 2, perIpPerMinute: 0 } } });
    const guard = new EnlistGuard({ repos: t.repos, config, logger: silentLogger(), clock: () => now });
    let refused = 0;
    for (let i = 0; i < 50; i++) {
      const mac = `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`;
      try {
        guard.admitNew('10.0.0.9', mac);
      } catch (err) {
        assert.ok(err instanceof CorralError && err.code === 'ENLIST_RATE_LIMITED' && err.status === 429);
        guard.refusedBecause('rate-limited', { ip: '10.0.0.9', mac, message: err.message });
        refused++;
      }
    }
    assert.equal(refused, 48);
    assert.equal(guard.stats().refused['rate-limited'], 48);
    const events = () => t.repos.events.list({ kind: 'node.enlist-refused', limit: 100 });
    assert.equal(events().length, 1, 'one event for the burst, not 48');
    now += 61_000;
    guard.refusedBecause('rate-limited', { ip: '10.0.0.9', mac: '02:00:00:00:01:00', message: 'm' });
    assert.equal(events().length, 2);
    assert.equal(events()[0]?.data?.['count'], 48, 'the next event says how many since the last');
  } finally {
    t.cleanup();
  }
});
