/**
 * GET /api/v1/nodes at scale (issue 19): listNodes over a temporary store. Cursor walks see every node
 * once, in order, while nodes are added; filters and the search (kept in node_facts by migration 15's
 * triggers) match values, not JSON keys; bad paging input gets a stable code.
 */
import { sqliteOf } from '../../master/store/db.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempRepos } from '../helpers/repos.js';
import { NodeQuery } from '../../master/store/node-query.js';
import {
  decodeCursor,
  encodeCursor,
  listNodes as listNodesText,
  TurnQueue,
  type NodeListReply,
} from '../../master/api/node-list.js';
import { CorralError } from '../../master/util/errors.js';
import type { Repos } from '../../master/store/repos.js';
import type { NodeRecord, NodeState } from '../../master/store/nodes.js';
import { DEFAULT_QUERY, NodeListCache, sortRows, type SortKeyRow } from '../../web-ui/node-table.js';

function mac(i: number): string {
  return `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

function add(repos: Repos, i: number, state: NodeState = 'ready', role: string | null = null): void {
  repos.store.write((journal) => {
    repos.nodes.insertIn(journal, {
      mac: mac(i),
      name: `node-${i}`,
      seqNo: i,
      state: 'discovered',
      ip: `10.0.${i >> 8}.${i & 255}`,
      inventory: {
        cpu: { model: 'AMD EPYC 7543', count: 64 },
        memoryBytes: i * 2 ** 30,
        disks: [
          { name: 'nvme0n1', sizeBytes: 1e12, serial: `DSK${i}X` },
          { name: 'sdb', sizeBytes: 2e12, serial: null },
        ],
        nics: [{ name: 'eno1', mac: `3c:ec:ef:00:00:${(i & 255).toString(16).padStart(2, '0')}` }],
        dmi: { vendor: 'Dell Inc.', product: 'PowerEdge R650', serial: `SRV${i}` },
      },
    });
    if (state !== 'discovered') repos.nodes.setStateIn(journal, mac(i), state, null);
    if (role) repos.nodes.patchIn(journal, mac(i), { role });
  });
}

/** The reply as a client reads it (listNodes writes JSON text). */
function listNodes(query: Record<string, string>, q: NodeQuery): NodeListReply {
  return JSON.parse(listNodesText(query, q)) as NodeListReply;
}

/** One page of NodeQuery's JSON rows, as records. */
function pageOf(q: NodeQuery, f: Parameters<NodeQuery['pageJson']>[0]): NodeRecord[] {
  return q.pageJson(f, { limit: 10 }).map(([, json]) => JSON.parse(json) as NodeRecord);
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CorralError) return err.code;
    throw err;
  }
  return 'no error';
}

test('a cursor walk returns every node once, in sequence order, even as nodes are added', () => {
  const t = tempRepos();
  try {
    for (let i = 1; i <= 25; i++) add(t.repos, i);
    const q = new NodeQuery(t.repos.store);
    const seen: string[] = [];
    let cursor: string | null | undefined;
    let pages = 0;
    do {
      const r = listNodes({ limit: '7', ...(cursor ? { cursor } : {}) }, q);
      assert.ok(r.nodes.length <= 7);
      seen.push(...r.nodes.map((n) => n.name));
      cursor = r.nextCursor;
      if (++pages === 2) add(t.repos, 26); // a node enlists mid-walk: it comes last, not twice
    } while (cursor && pages < 10);
    assert.deepEqual(
      seen,
      Array.from({ length: 26 }, (_, i) => `node-${i + 1}`),
    );
    assert.equal(pages, 4);
    // An exact multiple of the page: the last page says there is no next one, without an empty page.
    const exact = listNodes({ limit: '13' }, q);
    assert.equal(listNodes({ limit: '13', cursor: exact.nextCursor! }, q).nextCursor, null);
    // Offset paging and the total.
    const off = listNodes({ limit: '5', offset: '24' }, q);
    assert.deepEqual(
      off.nodes.map((n) => n.name),
      ['node-25', 'node-26'],
    );
    assert.equal(off.total, 26);
    assert.equal(off.nextCursor, null);
    // Without limit, cursor or offset: every node, as before paging existed (no nextCursor key).
    const all = listNodes({}, q);
    assert.equal(all.nodes.length, 26);
    assert.equal('nextCursor' in all, false);
    // The JSON SQLite writes is the JSON of the records NodeStore reads, field for field.
    assert.deepEqual(all.nodes, t.repos.nodes.list());
    assert.deepEqual(off.nodes, t.repos.nodes.list().slice(24));
  } finally {
    t.cleanup();
  }
});

test('bad paging input: CURSOR_INVALID for a cursor we did not issue, QUERY_INVALID for the rest', () => {
  const t = tempRepos();
  try {
    add(t.repos, 1);
    const q = new NodeQuery(t.repos.store);
    assert.equal(
      code(() => listNodes({ cursor: 'not a cursor!' }, q)),
      'CURSOR_INVALID',
    );
    assert.equal(
      code(() => listNodes({ cursor: Buffer.from('{"after":-1}').toString('base64url') }, q)),
      'CURSOR_INVALID',
    );
    assert.equal(
      code(() => listNodes({ cursor: Buffer.from('[1]').toString('base64url') }, q)),
      'CURSOR_INVALID',
    );
    assert.equal(
      code(() => listNodes({ cursor: Buffer.from('{"after":1.5}').toString('base64url') }, q)),
      'CURSOR_INVALID',
    );
    assert.equal(
      code(() => listNodes({ cursor: 'eyJhZnRlciI6' }, q)),
      'CURSOR_INVALID',
    ); // truncated JSON
    assert.equal(
      code(() => listNodes({ limit: '0' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(
      code(() => listNodes({ limit: '1001' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(
      code(() => listNodes({ limit: 'ten' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(
      code(() => listNodes({ offset: '-1' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(
      code(() => listNodes({ cursor: encodeCursor(1), offset: '0' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(
      code(() => listNodes({ state: 'sleeping' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(
      code(() => listNodes({ sort: 'name' }, q)),
      'QUERY_INVALID',
    );
    assert.equal(decodeCursor(encodeCursor(42)), 42);
    // A cursor past the end is valid: an empty last page.
    assert.deepEqual(listNodes({ cursor: encodeCursor(999) }, q).nodes, []);
  } finally {
    t.cleanup();
  }
});

test('filters and search: state, role, values of the inventory (not its keys), wildcards literal', () => {
  const t = tempRepos();
  try {
    for (let i = 1; i <= 12; i++)
      add(t.repos, i, i % 3 === 0 ? 'deployed' : 'ready', i % 4 === 0 ? 'db' : null);
    const q = new NodeQuery(t.repos.store);
    const names = (query: Record<string, string>): string[] => listNodes(query, q).nodes.map((n) => n.name);
    assert.deepEqual(names({ state: 'deployed' }), ['node-3', 'node-6', 'node-9', 'node-12']);
    assert.deepEqual(names({ role: 'db' }), ['node-4', 'node-8', 'node-12']);
    assert.deepEqual(names({ role: 'db', state: 'deployed' }), ['node-12']);
    assert.deepEqual(names({ q: 'srv7' }), ['node-7']); // DMI serial, any case
    assert.deepEqual(names({ q: 'DSK11X' }), ['node-11']); // a disk's serial
    assert.deepEqual(names({ q: '525400000005' }), ['node-5']); // MAC without colons
    assert.deepEqual(names({ q: '3c:ec:ef:00:00:0a' }), ['node-10']); // another NIC's MAC
    assert.deepEqual(names({ q: '10.0.0.2', limit: '100' }), ['node-2']);
    assert.equal(names({ q: 'epyc' }).length, 12); // CPU model
    // A text every node carries is answered by the scan, a rare one through the trigram index; the
    // answers above are the same whichever way (the LIKE decides).
    assert.equal(q.searchPlan('epyc'), 'scan');
    assert.equal(q.searchPlan('3c:ec:ef'), 'scan');
    assert.equal(q.searchPlan('srv7'), 'index');
    assert.equal(q.searchPlan('no-such-text'), 'index');
    assert.equal(q.count({ q: '3c:ec:ef' }), 12);
    assert.deepEqual(names({ q: 'serial' }), []); // a JSON key, not a value
    assert.deepEqual(names({ q: 'sizeBytes' }), []);
    assert.deepEqual(names({ q: '%' }), []);
    assert.deepEqual(names({ q: 'node_1' }), []); // `_` is not a wildcard
    assert.equal(listNodes({ q: 'node-1', limit: '2' }, q).total, 4); // node-1, node-10, node-11, node-12
  } finally {
    t.cleanup();
  }
});

test('node_facts follows every write: an inventory update, a rename, a delete (migration 15 triggers)', () => {
  const t = tempRepos();
  try {
    add(t.repos, 1);
    add(t.repos, 2);
    const q = new NodeQuery(t.repos.store);
    const { repos } = t;
    repos.store.write((j) =>
      repos.nodes.patchIn(j, mac(1), {
        name: 'rack7-a',
        inventory: { dmi: { serial: 'NEWSERIAL' }, memoryBytes: 5 },
      }),
    );
    assert.deepEqual(
      pageOf(q, { q: 'newserial' }).map((n) => n.name),
      ['rack7-a'],
    );
    assert.deepEqual(pageOf(q, { q: 'srv1' }), []);
    assert.deepEqual(
      pageOf(q, { q: 'rack7' }).map((n) => n.mac),
      [mac(1)],
    );
    assert.deepEqual(q.sortKeys({}, 'memory'), [
      [mac(1), 'rack7-a', 5],
      [mac(2), 'node-2', 2 * 2 ** 30],
    ]);
    assert.deepEqual(q.sortKeys({}, 'disks'), [
      [mac(1), 'rack7-a', null],
      [mac(2), 'node-2', 3e12],
    ]);
    assert.deepEqual(q.sortKeys({ state: 'ready' }, 'cpu'), [
      [mac(1), 'rack7-a', null],
      [mac(2), 'node-2', 64],
    ]);
    repos.store.write((j) => repos.nodes.setStateIn(j, mac(2), 'failed', null));
    assert.deepEqual(q.sortKeys({ state: 'failed' }, 'state'), [[mac(2), 'node-2', 'failed']]);
    repos.store.write((j) => repos.nodes.deleteIn(j, mac(2)));
    assert.equal(q.count({ q: 'node-2' }), 0);
    assert.equal(
      (sqliteOf(repos.store).db.prepare('SELECT COUNT(*) AS n FROM node_facts').get() as { n: number }).n,
      1,
      'no orphan facts',
    );
    assert.deepEqual(
      q.byMacs([mac(2), mac(1)]).map((n) => n.name),
      ['rack7-a'],
    );
  } finally {
    t.cleanup();
  }
});

test('console sort: natural names, numeric IPs, lifecycle order, blanks last both ways', () => {
  const q = { ...DEFAULT_QUERY };
  const names: SortKeyRow[] = [
    ['m10', 'node-10', 'node-10'],
    ['m2', 'node-2', 'node-2'],
    ['m1', 'node-1', 'node-1'],
  ];
  assert.deepEqual(sortRows(names, q), ['m1', 'm2', 'm10']);
  const ips: SortKeyRow[] = [
    ['a', 'a', '10.0.0.10'],
    ['b', 'b', null],
    ['c', 'c', '10.0.0.9'],
  ];
  assert.deepEqual(sortRows(ips, { ...q, sort: 'ip' }), ['c', 'a', 'b']);
  assert.deepEqual(sortRows(ips, { ...q, sort: 'ip', dir: 'desc' }), ['a', 'c', 'b']);
  const states: SortKeyRow[] = [
    ['f', 'f', 'failed'],
    ['d', 'd', 'discovered'],
    ['r', 'r', 'ready'],
  ];
  assert.deepEqual(sortRows(states, { ...q, sort: 'state' }), ['d', 'r', 'f']);
  const mem: SortKeyRow[] = [
    ['x', 'node-b', 5],
    ['y', 'node-a', 5],
    ['z', 'node-c', 9],
  ];
  assert.deepEqual(sortRows(mem, { ...q, sort: 'memory', dir: 'desc' }), ['z', 'y', 'x']); // ties by name
});

test('a backup applying replicated node changes keeps node_facts (upsert through the facts triggers)', () => {
  const primary = tempRepos();
  const backup = tempRepos();
  try {
    const mac = '52:54:00:00:0f:01';
    primary.repos.store.write((j) =>
      primary.repos.nodes.insertIn(j, {
        mac,
        name: 'n1',
        seqNo: 1,
        state: 'discovered',
        ip: null,
        inventory: {},
      }),
    );
    primary.repos.store.write((j) => primary.repos.nodes.patchIn(j, mac, { name: 'renamed' }));
    const changes = primary.repos.changes.since(0, 100);
    // Before the fix, the second change (an update applied as INSERT ... ON CONFLICT DO UPDATE) failed on
    // node_facts' key: the trigger's INSERT OR REPLACE is overridden by the outer statement.
    backup.repos.store.applyReplicated(changes);
    assert.equal(backup.repos.nodes.get(mac)?.name, 'renamed');
    assert.deepEqual(new NodeQuery(backup.repos.store).sortKeys({ q: 'renamed' }, 'name'), [
      [mac, 'renamed', 'renamed'],
    ]);
  } finally {
    primary.cleanup();
    backup.cleanup();
  }
});

test('migration 23: the search index, the list generation and the event count follow every write', () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const q = new NodeQuery(repos.store);
    const db = sqliteOf(repos.store).db;
    const g0 = q.generation();
    add(repos, 1);
    add(repos, 2);
    const g1 = q.generation();
    assert.ok(g1 > g0, 'an insert changes the generation');
    assert.deepEqual(
      pageOf(q, { q: 'srv2' }).map((n) => n.name),
      ['node-2'],
    );
    repos.store.write((j) => repos.nodes.patchIn(j, mac(2), { tags: ['rack-1'] }));
    assert.ok(q.generation() > g1, 'a tag change changes the generation');
    repos.store.write((j) => repos.nodes.patchIn(j, mac(2), { inventory: { dmi: { serial: 'XY"Z%7' } } }));
    assert.deepEqual(pageOf(q, { q: 'srv2' }), []); // the index row was replaced, not added to
    assert.deepEqual(
      pageOf(q, { q: 'xy"z%7' }).map((n) => n.name),
      ['node-2'],
    ); // quotes and LIKE wildcards are text in both the index query and the check
    assert.equal(q.count({ q: 'Y"Z' }), 1);
    const g2 = q.generation();
    repos.store.write((j) => repos.nodes.deleteIn(j, mac(2)));
    assert.ok(q.generation() > g2, 'a delete changes the generation');
    const indexed = (): number => db.prepare('SELECT COUNT(*) FROM node_search').pluck().get() as number;
    assert.equal(indexed(), 1);

    const before = repos.events.count();
    for (let i = 0; i < 3; i++)
      repos.events.append({ nodeMac: mac(1), kind: 'node.state', message: `e${i}` });
    assert.equal(repos.events.count(), before + 3);
    db.prepare('DELETE FROM events WHERE message = ?').run('e1');
    assert.equal(repos.events.count(), before + 2);
    assert.equal(repos.events.count(), db.prepare('SELECT COUNT(*) FROM events').pluck().get());
  } finally {
    t.cleanup();
  }
});

test('NodeListCache: an order is reused at the same generation, and computed again at another', () => {
  const cache = new NodeListCache(2);
  let computed = 0;
  const order = (gen: number, sort: 'name' | 'ip'): string[] =>
    cache.at(gen).order({ ...DEFAULT_QUERY, sort, page: 3 }, () => [`${gen}-${sort}-${++computed}`]);
  assert.deepEqual(order(1, 'name'), ['1-name-1']);
  assert.deepEqual(order(1, 'name'), ['1-name-1']); // the page is not part of the key
  assert.deepEqual(order(1, 'ip'), ['1-ip-2']);
  assert.deepEqual(order(2, 'name'), ['2-name-3']);
  assert.deepEqual(
    cache.tagList(() => ['a']),
    ['a'],
  );
  assert.deepEqual(
    cache.tagList(() => ['b']),
    ['a'],
  );
  cache.at(3);
  assert.deepEqual(
    cache.tagList(() => ['b']),
    ['b'],
  );
});

test('TurnQueue: one job per event-loop turn, in order; a throwing job rejects and the next still runs', async () => {
  const turns = new TurnQueue();
  const seen: string[] = [];
  const busy = (ms: number): void => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };
  const a = turns.run(() => {
    seen.push('a');
    // Due before the next turn's timers phase (the job outlasts it): with every job in one check phase,
    // 'b' would come before it.
    setTimeout(() => seen.push('timer'), 1);
    busy(5);
    return 1;
  });
  const b = turns.run(() => {
    seen.push('b');
    throw new Error('refused');
  });
  const c = turns.run(() => 'c');
  assert.equal(turns.waiting, 3);
  assert.equal(await a, 1);
  await assert.rejects(b, /refused/);
  assert.equal(await c, 'c');
  assert.deepEqual(seen, ['a', 'timer', 'b']);
});

test('lastReports: the newest raw sample per source, as the full GROUP BY scan answered it', () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const db = sqliteOf(repos.store).db;
    const sample = (at: number): Parameters<typeof repos.metrics.record>[1] => ({
      at,
      cpu: 1,
      memUsed: 1,
      memTotal: 2,
      diskUsed: 1,
      diskTotal: 2,
      netRx: 0,
      netTx: 0,
      load1: 0,
      procs: null,
    });
    for (const [source, ats] of [
      ['master', [100, 130, 160]],
      [mac(1), [50, 80]],
      [mac(2), [10]],
      [mac(3), [400, 430]],
    ] as const)
      for (const at of ats) repos.metrics.record(source, sample(at));
    // A source with only roll-ups left (its raw samples pruned) has no last report.
    db.prepare('DELETE FROM metrics WHERE source = ? AND tier = 0').run(mac(3));
    const scan = new Map(
      (
        db.prepare('SELECT source, MAX(at) AS at FROM metrics WHERE tier = 0 GROUP BY source').all() as {
          source: string;
          at: number;
        }[]
      ).map((r) => [r.source, r.at]),
    );
    assert.deepEqual(
      repos.metrics.lastReports(),
      new Map([
        [mac(1), 80],
        [mac(2), 10],
        ['master', 160],
      ]),
    );
    assert.deepEqual(repos.metrics.lastReports(), scan);
    assert.ok(db.prepare('SELECT COUNT(*) FROM metrics WHERE source = ?').pluck().get(mac(3)));
  } finally {
    t.cleanup();
  }
});
