import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeService, findNode } from '../../master/nodes/service.js';
import { enlist } from '../../master/nodes/enlist.js';
import { EnlistSchema } from '../../master/nodes/inventory.js';
import { isCorralError } from '../../master/util/errors.js';
import type { Repos } from '../../master/store/repos.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { tempRepos, testConfig } from '../helpers/repos.js';

const CTX = { sourceIp: '10.99.0.10', credential: undefined, leaseIp: undefined };

function addNode(repos: Repos, mac: string): NodeRecord {
  return enlist(repos, testConfig(), EnlistSchema.parse({ mac, inventory: {} }), CTX).node;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isCorralError(err)) return err.code;
    throw err;
  }
  return 'no error';
}

test('findNode: by MAC in any notation or by name; NODE_NOT_FOUND otherwise', () => {
  const t = tempRepos();
  try {
    const n = addNode(t.repos, '52:54:00:aa:bb:01');
    for (const id of ['52:54:00:aa:bb:01', '52-54-00-AA-BB-01', '525400aabb01', n.name]) {
      assert.equal(findNode(t.repos.nodes, id).mac, n.mac, id);
    }
    assert.equal(
      code(() => findNode(t.repos.nodes, '52:54:00:aa:bb:02')),
      'NODE_NOT_FOUND',
    );
    assert.equal(
      code(() => findNode(t.repos.nodes, 'nobody')),
      'NODE_NOT_FOUND',
    );
  } finally {
    t.cleanup();
  }
});

test('update: renames, sets and clears role and address with one node.updated event; a taken name is CONFLICT', () => {
  const t = tempRepos();
  try {
    const svc = new NodeService(t.repos);
    const a = addNode(t.repos, '52:54:00:aa:bb:01');
    const b = addNode(t.repos, '52:54:00:aa:bb:02');
    const renamed = svc.update(a, { name: 'web-1', role: 'app', ip: '10.99.0.50' }, 'alice');
    assert.deepEqual([renamed.name, renamed.role, renamed.ip], ['web-1', 'app', '10.99.0.50']);
    assert.equal(svc.find('web-1').mac, a.mac);
    const ev = t.repos.events.list({ nodeMac: a.mac })[0];
    assert.equal(ev?.kind, 'node.updated');
    assert.equal(ev?.message, 'web-1 updated: name, role, ip');
    assert.equal(ev?.actor, 'alice');
    assert.deepEqual(ev?.data, { name: 'web-1', role: 'app', ip: '10.99.0.50' });

    // Absent fields stay; null clears.
    const cleared = svc.update(renamed, { role: null, name: undefined }, 'alice');
    assert.deepEqual([cleared.name, cleared.role, cleared.ip], ['web-1', null, '10.99.0.50']);
    assert.equal(t.repos.events.list({ nodeMac: a.mac })[0]?.message, 'web-1 updated: role');

    const before = t.repos.events.list({ nodeMac: b.mac }).length;
    assert.equal(
      code(() => svc.update(b, { name: 'web-1' }, 'alice')),
      'CONFLICT',
    );
    assert.equal(t.repos.nodes.get(b.mac)?.name, b.name, 'nothing written on conflict');
    assert.equal(t.repos.events.list({ nodeMac: b.mac }).length, before);
    // Keeping one's own name is no conflict.
    assert.equal(svc.update(cleared, { name: 'web-1' }, null).name, 'web-1');
  } finally {
    t.cleanup();
  }
});

test('transition: through the lifecycle guards, with its event', () => {
  const t = tempRepos();
  try {
    const svc = new NodeService(t.repos);
    const n = addNode(t.repos, '52:54:00:aa:bb:01');
    assert.equal(svc.transition(n, 'ready', 'checked', 'bob').state, 'ready');
    assert.equal(t.repos.events.list({ nodeMac: n.mac })[0]?.kind, 'node.state');
    const ready = svc.find(n.mac);
    assert.equal(
      code(() => svc.transition(ready, 'deployed', null, 'bob')),
      'STATE_TRANSITION_INVALID',
    );
    assert.equal(svc.find(n.mac).state, 'ready');
  } finally {
    t.cleanup();
  }
});

test('delete: the node, its power config, credential, diskless assignment and metrics go; each journaled', () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const svc = new NodeService(repos);
    const n = addNode(repos, '52:54:00:aa:bb:01');
    const other = addNode(repos, '52:54:00:aa:bb:02');
    assert.ok(repos.nodeCredentials.get(n.mac), 'enlistment issued a credential');
    repos.store.write((journal) => {
      repos.powerConfigs.upsertIn(journal, {
        nodeMac: n.mac,
        driver: 'wol',
        address: null,
        port: null,
        username: null,
        secret: null,
        wolMac: n.mac,
      });
      repos.sharedRoots.upsertRootIn(journal, { name: 'lab', currentVersion: 1, source: 'debootstrap' });
      repos.sharedRoots.assignIn(journal, {
        mac: n.mac,
        rootName: 'lab',
        persistent: false,
        machineId: '0'.repeat(32),
      });
    });
    const sample = {
      at: 1000,
      cpu: 1,
      memUsed: null,
      memTotal: null,
      diskUsed: null,
      diskTotal: null,
      netRx: null,
      netTx: null,
      load1: null,
    };
    repos.metrics.record(n.mac, sample);
    repos.metrics.record(other.mac, sample);
    const seq = repos.changes.lastSeq();

    svc.delete(n, 'alice');

    assert.equal(repos.nodes.get(n.mac), undefined);
    assert.equal(repos.powerConfigs.get(n.mac), undefined);
    assert.equal(repos.nodeCredentials.get(n.mac), undefined);
    assert.equal(repos.sharedRoots.assignment(n.mac), undefined);
    assert.equal(repos.metrics.latest(n.mac), undefined);
    assert.ok(repos.metrics.latest(other.mac), "another node's metrics stay");
    assert.ok(repos.nodeCredentials.get(other.mac), "another node's credential stays");
    const ev = repos.events.list({ nodeMac: n.mac })[0];
    assert.equal(ev?.kind, 'node.deleted');
    assert.equal(ev?.actor, 'alice');
    // A backup master replays these deletions from the journal (no cascade runs there without them).
    const deleted = repos.changes
      .since(seq)
      .filter((c) => c.op === 'delete')
      .map((c) => `${c.entity} ${c.key}`)
      .sort();
    assert.deepEqual(deleted, [
      `diskless_nodes ${n.mac}`,
      `node_credentials ${n.mac}`,
      `nodes ${n.mac}`,
      `power_configs ${n.mac}`,
    ]);
    assert.equal(
      code(() => svc.find(n.mac)),
      'NODE_NOT_FOUND',
    );
  } finally {
    t.cleanup();
  }
});
