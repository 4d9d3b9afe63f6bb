import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NODE_STATES } from '../../master/store/nodes.js';
import { TRANSITIONS, canTransition, transition } from '../../master/nodes/lifecycle.js';
import { enlist, nodeName } from '../../master/nodes/enlist.js';
import { EnlistSchema, normaliseMac } from '../../master/nodes/inventory.js';
import { tempRepos, testConfig } from '../helpers/repos.js';

const NO_CTX = { sourceIp: null, credential: undefined, leaseIp: undefined };

test('transition table covers every state and never targets an unknown one', () => {
  for (const s of NODE_STATES) {
    assert.ok(TRANSITIONS[s], s);
    for (const t of TRANSITIONS[s]) assert.ok(NODE_STATES.includes(t));
  }
  assert.ok(canTransition('deploying', 'failed'));
  assert.ok(!canTransition('discovered', 'deployed'));
  assert.ok(!canTransition('deployed', 'diskless'));
});

test('enlist creates once, then updates; names follow the pattern; events recorded', () => {
  const t = tempRepos();
  try {
    const config = testConfig({ nodes: { namePattern: 'rack1-{n}' } });
    const req = EnlistSchema.parse({
      mac: '52-54-00-AA-BB-01',
      inventory: { memoryBytes: 1024, firmware: 'bios' },
    });
    const ctx = (sourceIp: string | null, credential?: string) => ({
      sourceIp,
      credential,
      leaseIp: undefined,
    });
    const first = enlist(t.repos, config, req, ctx('10.99.0.10'));
    assert.equal(first.created, true);
    assert.equal(first.node.name, 'rack1-1');
    assert.equal(first.node.mac, '52:54:00:aa:bb:01');
    assert.equal(first.reply.action, 'wait');
    // The agent refreshes with the credential of its first reply; a request's address never moves the node.
    const again = enlist(
      t.repos,
      config,
      { ...req, inventory: { memoryBytes: 2048 } },
      ctx('10.99.0.11', first.reply.credential),
    );
    assert.equal(again.created, false);
    assert.equal(again.reply.credential, undefined, 'a credential is issued once');
    assert.equal(t.repos.nodes.list().length, 1);
    assert.equal(t.repos.nodes.get('52:54:00:aa:bb:01')?.inventory['memoryBytes'], 2048);
    assert.equal(t.repos.nodes.get('52:54:00:aa:bb:01')?.ip, '10.99.0.10');
    const second = enlist(
      t.repos,
      config,
      EnlistSchema.parse({ mac: '52:54:00:aa:bb:02', inventory: {} }),
      ctx(null),
    );
    assert.equal(second.node.name, 'rack1-2');
    const kinds = t.repos.events.list({ nodeMac: '52:54:00:aa:bb:01' }).map((e) => e.kind);
    assert.deepEqual(kinds, ['node.enlisted', 'node.discovered']);
  } finally {
    t.cleanup();
  }
});

test('enlist skips names an operator already took', () => {
  const t = tempRepos();
  try {
    const config = testConfig();
    const a = enlist(
      t.repos,
      config,
      EnlistSchema.parse({ mac: '52:54:00:00:00:01', inventory: {} }),
      NO_CTX,
    );
    t.repos.store.write((j) => t.repos.nodes.patchIn(j, a.node.mac, { name: 'node-2' }));
    const b = enlist(
      t.repos,
      config,
      EnlistSchema.parse({ mac: '52:54:00:00:00:02', inventory: {} }),
      NO_CTX,
    );
    assert.equal(b.node.name, 'node-3');
  } finally {
    t.cleanup();
  }
});

test('guarded transitions record an event; forbidden ones throw a coded error', () => {
  const t = tempRepos();
  try {
    const config = testConfig({ nodes: { discoverAction: 'poweroff' } });
    const { node, reply } = enlist(
      t.repos,
      config,
      EnlistSchema.parse({ mac: '52:54:00:00:00:09', inventory: {} }),
      NO_CTX,
    );
    assert.equal(reply.action, 'poweroff');
    assert.throws(
      () => transition(t.repos, node.mac, { to: 'deployed' }),
      /cannot go from discovered to deployed/,
    );
    const moved = transition(t.repos, node.mac, { to: 'deploying', actor: 'admin' });
    assert.equal(moved.state, 'deploying');
    const ev = t.repos.events.list({ nodeMac: node.mac, kind: 'node.state' })[0];
    assert.equal(ev?.actor, 'admin');
    assert.deepEqual(ev?.data, { from: 'discovered', to: 'deploying' });
    // A deploying node re-enlisting is told to reboot into its install.
    const re = enlist(t.repos, config, EnlistSchema.parse({ mac: node.mac, inventory: {} }), {
      ...NO_CTX,
      credential: reply.credential,
    });
    assert.equal(re.reply.action, 'reboot');
    assert.throws(() => transition(t.repos, '52:54:00:ff:ff:ff', { to: 'ready' }), /no node with MAC/);
  } finally {
    t.cleanup();
  }
});

test('MAC normalisation and name patterns', () => {
  assert.equal(normaliseMac('52-54-00-AB-CD-EF'), '52:54:00:ab:cd:ef');
  assert.equal(normaliseMac('525400abcdef'), '52:54:00:ab:cd:ef');
  assert.equal(normaliseMac('52:54:00:ab:cd'), undefined);
  assert.equal(normaliseMac('zz:54:00:ab:cd:ef'), undefined);
  assert.equal(nodeName('n{n}-{mac}', 7, '52:54:00:ab:cd:ef'), 'n7-525400abcdef');
  const bad = EnlistSchema.safeParse({ mac: '52:54:00:00:00:01', inventory: { memoryBytes: 'lots' } });
  assert.equal(bad.success, false);
  const huge = EnlistSchema.safeParse({
    mac: '52:54:00:00:00:01',
    inventory: { cpu: { model: 'x'.repeat(1000) } },
  });
  assert.equal(huge.success, false);
});
