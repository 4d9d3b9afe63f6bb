/**
 * The enrolment service over a temporary SQLite store (no sockets): rule order kept dense and journaled,
 * a diskless outcome through the real SharedRoots assignment, a Wake-on-LAN power default through the
 * real power control, limits holding under a burst of discoveries, and a failed action leaving an event
 * and a failed audit entry that name the rule.
 */
import { sqliteOf } from '../../master/store/db.js';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Enrolment } from '../../master/enrolment/service.js';
import { membersOf } from '../../master/lb/membership.js';
import { ServiceSpecSchema } from '../../master/lb/service-spec.js';
import { NodeService } from '../../master/nodes/service.js';
import { resolveTargets } from '../../master/remote/exec-service.js';
import { createPowerControl } from '../../master/remote/power.js';
import { SecretBox } from '../../master/remote/secrets.js';
import { SharedRoots } from '../../master/sharedroot/service.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import type { Repos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos, testConfig } from '../helpers/repos.js';

const GiB = 2 ** 30;

function addNode(repos: Repos, i: number, memGiB = 8): NodeRecord {
  const mac = `52:54:00:aa:00:${String(i).padStart(2, '0')}`;
  return repos.store.write((j) =>
    repos.nodes.insertIn(j, {
      mac,
      name: `node-${i}`,
      seqNo: i,
      state: 'discovered',
      ip: `10.99.0.${100 + i}`,
      inventory: {
        cpu: { model: 'QEMU Virtual CPU', count: 2 },
        memoryBytes: memGiB * GiB,
        disks: [{ name: 'vda', sizeBytes: 4 * GiB }],
        nics: [{ name: 'eth0', mac, link: 'up', speedMbps: 1000 }],
        dmi: { vendor: 'QEMU', product: 'Standard PC', serial: `S${i}` },
      },
    }),
  );
}

function setup(): {
  t: ReturnType<typeof tempRepos>;
  roots: SharedRoots;
  enrolment: Enrolment;
  reconciled: () => number;
} {
  const t = tempRepos();
  const config = testConfig({ dataDir: t.dir });
  const roots = new SharedRoots(t.repos, config);
  let reconciles = 0;
  const enrolment = new Enrolment({
    repos: t.repos,
    config,
    logger: silentLogger(),
    deployer: {
      deploy: () => Promise.reject(new Error('no deploy rule in this test')),
    },
    // The NFS server is not started here: reconcile only counts that the service asked for it.
    sharedRoot: { roots, reconcile: async () => void reconciles++ },
    power: createPowerControl({
      repos: t.repos,
      config,
      logger: silentLogger(),
      secrets: SecretBox.forDataDir(t.dir),
    }),
  });
  return { t, roots, enrolment, reconciled: () => reconciles };
}

test('rule order: inserts at a position, moves and deletes keep 1..N, each moved row journaled', () => {
  const { t, enrolment } = setup();
  try {
    for (const name of ['a', 'b', 'c']) enrolment.create({ name }, 'admin');
    enrolment.create({ name: 'first' }, 'admin', 1);
    assert.deepEqual(
      enrolment.list().map((r) => `${r.position}:${r.name}`),
      ['1:first', '2:a', '3:b', '4:c'],
    );
    const before = t.repos.store.lastChangeSeq();
    enrolment.move('c', 2, 'admin');
    assert.deepEqual(
      enrolment.list().map((r) => r.name),
      ['first', 'c', 'a', 'b'],
    );
    const journaled = sqliteOf(t.repos.store)
      .db.prepare("SELECT entity_key FROM changes WHERE seq > ? AND entity = 'enrolment_rules'")
      .all(before) as { entity_key: string }[];
    assert.equal(journaled.length, 3, 'c, a and b moved; first did not');
    enrolment.remove('first', 'admin');
    assert.deepEqual(
      enrolment.list().map((r) => `${r.position}:${r.name}`),
      ['1:c', '2:a', '3:b'],
    );
    assert.throws(() => enrolment.create({ name: 'a' }, 'admin'), /exists/);
    assert.throws(() => enrolment.find('nope'), /no enrolment rule/);
  } finally {
    t.cleanup();
  }
});

test('a diskless rule assigns the shared root through SharedRoots and sets Wake-on-LAN, naming the rule', async () => {
  const { t, roots, enrolment, reconciled } = setup();
  try {
    const src = join(t.dir, 'src');
    mkdirSync(join(src, 'sbin'), { recursive: true });
    mkdirSync(join(src, 'etc'), { recursive: true });
    symlinkSync('/lib/systemd/systemd', join(src, 'sbin/init'));
    writeFileSync(join(src, 'etc/os-release'), 'ID=test\n');
    await roots.create('web', { dir: src });
    enrolment.create(
      {
        name: 'diskless-web',
        match: { memoryGiB: { min: 4 } },
        outcome: {
          name: 'dl-{n}',
          tags: ['web'],
          power: { driver: 'wol' },
          action: { type: 'diskless', root: 'web' },
        },
      },
      'admin',
    );
    addNode(t.repos, 1, 8);
    addNode(t.repos, 2, 2); // too small
    const results = await enrolment.apply(undefined);
    assert.deepEqual(
      results.map((r) => [r.node, r.rule]),
      [
        ['dl-1', 'diskless-web'],
        ['node-2', null],
      ],
    );
    const n = t.repos.nodes.get('52:54:00:aa:00:01')!;
    assert.deepEqual([n.name, n.state, n.tags, n.enrolledBy], ['dl-1', 'diskless', ['web'], 'diskless-web']);
    assert.equal(t.repos.sharedRoots.assignment(n.mac)?.rootName, 'web');
    assert.equal(reconciled(), 1);
    const power = t.repos.powerConfigs.get(n.mac);
    assert.deepEqual([power?.driver, power?.wolMac], ['wol', n.mac]);
    const audit = t.repos.audit.list({ actor: 'rule:diskless-web' }).map((a) => `${a.action} ${a.target}`);
    assert.deepEqual(audit.sort(), [
      'enrolment.diskless dl-1',
      'enrolment.matched dl-1',
      'enrolment.power dl-1',
    ]);
    const kinds = t.repos.events.list({ nodeMac: n.mac }).map((e) => `${e.kind}/${e.actor}`);
    assert.ok(kinds.includes('enrolment.matched/rule:diskless-web'), kinds.join(' '));
    assert.ok(kinds.includes('node.state/rule:diskless-web'), kinds.join(' '));
    // Caught once: applying again leaves it alone.
    assert.deepEqual(
      (await enrolment.apply([n.mac])).map((r) => r.done),
      [['diskless: rules act on discovered or ready nodes']],
    );
  } finally {
    t.cleanup();
  }
});

test('a limit holds under a burst of discoveries', async () => {
  const { t, enrolment } = setup();
  try {
    enrolment.create({ name: 'three', limit: 3, outcome: { tags: ['batch'] } }, 'admin');
    const nodes = Array.from({ length: 6 }, (_, i) => addNode(t.repos, i + 1));
    for (const n of nodes) enrolment.onDiscovered(n);
    await enrolment.idle();
    const caught = t.repos.nodes.list().filter((n) => n.enrolledBy === 'three');
    assert.deepEqual(
      caught.map((n) => n.name),
      ['node-1', 'node-2', 'node-3'],
    );
    assert.equal(enrolment.find('three').caught, 3);
    const unmatched = t.repos.events.list({ kind: 'enrolment.unmatched' }).length;
    assert.equal(unmatched, 3);
  } finally {
    t.cleanup();
  }
});

test('an action that fails leaves the node caught and waiting, with an event and a failed audit entry', async () => {
  const { t, roots, enrolment } = setup();
  try {
    const src = join(t.dir, 'src');
    mkdirSync(join(src, 'sbin'), { recursive: true });
    mkdirSync(join(src, 'etc'), { recursive: true });
    symlinkSync('/lib/systemd/systemd', join(src, 'sbin/init'));
    writeFileSync(join(src, 'etc/os-release'), 'ID=test\n');
    await roots.create('gone', { dir: src });
    enrolment.create({ name: 'r', outcome: { action: { type: 'diskless', root: 'gone' } } }, 'admin');
    await roots.remove('gone');
    addNode(t.repos, 1);
    const [result] = await enrolment.apply(undefined);
    assert.equal(result?.error?.code, 'SHAREDROOT_NOT_FOUND');
    const n = t.repos.nodes.get('52:54:00:aa:00:01')!;
    assert.deepEqual([n.state, n.enrolledBy], ['discovered', 'r']);
    assert.equal(t.repos.events.list({ kind: 'enrolment.failed' })[0]?.actor, 'rule:r');
    const failed = t.repos.audit.list({ actor: 'rule:r' }).find((a) => a.outcome === 'failed');
    assert.equal(failed?.action, 'enrolment.diskless');
    assert.match(failed?.detail ?? '', /^SHAREDROOT_NOT_FOUND: /);
  } finally {
    t.cleanup();
  }
});

test('tag selectors: exec targets and service membership by tag, ?tag= through NodeService.withTags', () => {
  const { t } = setup();
  try {
    const service = new NodeService(t.repos);
    const [a, b, c] = [addNode(t.repos, 1), addNode(t.repos, 2), addNode(t.repos, 3)];
    service.tag(a!, { add: ['web', 'rack:a3'] }, 'admin');
    service.tag(b!, { add: ['web'] }, 'admin');
    assert.deepEqual(
      resolveTargets(t.repos, { tag: 'web' }).map((n) => n.name),
      ['node-1', 'node-2'],
    );
    assert.throws(() => resolveTargets(t.repos, { tag: 'db' }), /no node has tag 'db'/);
    assert.deepEqual(
      service.withTags(['web', 'rack:a3']).map((n) => n.name),
      ['node-1'],
    );
    // Membership: only serving (deployed/diskless) nodes with an address and the tag.
    t.repos.store.write((j) => {
      t.repos.nodes.setStateIn(j, a!.mac, 'deployed', null);
      t.repos.nodes.setStateIn(j, c!.mac, 'deployed', null);
    });
    const spec = ServiceSpecSchema.parse({ name: 'web', port: 80, tag: 'web', backendPort: 8000 });
    assert.deepEqual(
      membersOf(spec, t.repos.nodes.list()).map((m) => m.name),
      ['node-1'],
    );
    assert.throws(() =>
      ServiceSpecSchema.parse({ name: 'web', port: 80, tag: 'web', role: 'web', backendPort: 8000 }),
    );
    // One node.tagged event per change, none for a change that changes nothing.
    assert.equal(service.tag(t.repos.nodes.get(a!.mac)!, { add: ['web'] }, 'admin').tags.length, 2);
    assert.equal(t.repos.events.list({ kind: 'node.tagged' }).length, 2);
  } finally {
    t.cleanup();
  }
});
