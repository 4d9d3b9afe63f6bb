/**
 * The node list at scale (issue 19), for correctness, not timing: 3 000 nodes seeded through the store in
 * a temporary database, the real console router on loopback walked page by page as a signed-in admin,
 * and GET /api/v1/nodes's listNodes over the same store. Every answer is checked against the seeded
 * data computed here in JavaScript: paging sees each node once and in the order asked, filters and
 * searches (trigram index for 3+ characters, a scan below) find exactly what they should, and a node
 * written between two page views shows at once (the console's sorted order is reused only while no node
 * changed: migration 23's generation).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listNodes as listNodesText, type NodeListReply } from '../../master/api/node-list.js';
import { NodeQuery } from '../../master/store/node-query.js';
import { tableRow } from '../../web-ui/node-table.js';
import { nodeRow } from '../../web-ui/node-view.js';
import type { Repos } from '../../master/store/repos.js';
import { NODE_STATES, type NodeState } from '../../master/store/nodes.js';
import type { Browser } from '../helpers/browser.js';
import { startConsoleHarness, type ConsoleHarness } from '../helpers/console.js';

const N = 3000;

/** GET /api/v1/nodes's reply as a client reads it (listNodes writes the JSON text). */
function listNodes(query: Record<string, string>, q: NodeQuery): NodeListReply {
  return JSON.parse(listNodesText(query, q)) as NodeListReply;
}
const PASSWORD = 'node list scale test password';

interface Seeded {
  mac: string;
  name: string;
  state: NodeState;
  role: string | null;
  tags: string[];
  memory: number;
  serial: string;
  nic: string;
}

function mac(i: number): string {
  const hex = i.toString(16).padStart(6, '0');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

const seeded: Seeded[] = Array.from({ length: N }, (_, k) => {
  const i = k + 1;
  return {
    mac: mac(i),
    name: `node-${i}`,
    state: NODE_STATES[i % NODE_STATES.length]!,
    role: ['web', 'db', null][i % 3] ?? null,
    tags: i % 7 === 0 ? ['rack-7'] : [],
    memory: ((i * 37) % 64) * 2 ** 30,
    serial: `SRV${String(i).padStart(7, '0')}`,
    nic: `3c:ec:ef:${mac(i * 3).slice(9)}`,
  };
});

function seed(repos: Repos): void {
  for (let start = 0; start < N; start += 500) {
    repos.store.write((journal) => {
      for (const s of seeded.slice(start, start + 500)) {
        const i = Number(s.name.slice(5));
        repos.nodes.insertIn(journal, {
          mac: s.mac,
          name: s.name,
          seqNo: i,
          state: 'discovered',
          ip: `10.1.${i >> 8}.${i & 255}`,
          inventory: {
            cpu: { model: 'AMD EPYC 7543', count: 32 },
            memoryBytes: s.memory,
            // 1-3 disks, so the table's disk count and total differ between rows.
            disks: Array.from({ length: 1 + (i % 3) }, (_, d) => ({
              name: `sd${'abc'[d]}`,
              sizeBytes: 1e12 * (d + 1),
              serial: d ? `E${i}x${d}` : `D${i}`,
            })),
            nics: [
              { name: 'eno1', mac: s.mac },
              { name: 'eno2', mac: s.nic },
            ],
            dmi: { vendor: 'Dell Inc.', product: 'PowerEdge R650', serial: s.serial },
          },
        });
        repos.nodes.patchIn(journal, s.mac, { role: s.role, tags: s.tags });
        if (s.state !== 'discovered') repos.nodes.setStateIn(journal, s.mac, s.state, null);
      }
    });
  }
}

/** MACs of the rows of a node-list page, in order, and the page's Next link. */
function rowsOf(html: string): { macs: string[]; next: string | null; range: string | null } {
  const macs = [...html.matchAll(/<td class="mono">([0-9a-f:]{17})<\/td>/g)].map((m) => m[1]!);
  const next = /<a class="btn btn-quiet" rel="next" href="([^"]+)"/.exec(html)?.[1] ?? null;
  const range = /<span class="muted">(\d+–\d+ of \d+)<\/span>/.exec(html)?.[1] ?? null;
  return { macs, next: next && next.replaceAll('&amp;', '&').replaceAll('&#x3D;', '='), range };
}

const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

describe('node list at 3 000 nodes: console pages and API pages', () => {
  let h: ConsoleHarness;
  let admin: Browser;

  /** Every page of a console view followed through its Next links (bounded: at most 40 pages). */
  async function walk(path: string): Promise<{ macs: string[]; pages: number; ranges: string[] }> {
    const macs: string[] = [];
    const ranges: string[] = [];
    let next: string | null = path;
    let pages = 0;
    while (next && pages < 40) {
      const res = await admin.get(next);
      assert.equal(res.status, 200, next);
      const page = rowsOf(await res.text());
      macs.push(...page.macs);
      if (page.range) ranges.push(page.range);
      next = page.next;
      pages++;
    }
    assert.equal(next, null, `${path}: more than 40 pages`);
    return { macs, pages, ranges };
  }

  before(async () => {
    h = await startConsoleHarness({ users: [['admin', 'admin', PASSWORD]], seed });
    admin = await h.signIn('admin', PASSWORD);
  });
  after(async () => {
    await h?.close();
  });

  it('walks every node once, in natural name order, 100 a page with paging controls', async () => {
    const { macs, pages, ranges } = await walk('/nodes');
    assert.equal(pages, 30);
    assert.equal(ranges[0], '1–100 of 3000');
    assert.equal(ranges[29], '2901–3000 of 3000');
    const expected = [...seeded].sort((a, b) => natural.compare(a.name, b.name)).map((s) => s.mac);
    assert.deepEqual(macs, expected);
  });

  it('filters by state and sorts by memory descending across pages (ties by name)', async () => {
    const { macs } = await walk('/nodes?state=failed&sort=memory&dir=desc');
    const expected = seeded
      .filter((s) => s.state === 'failed')
      .sort((a, b) => b.memory - a.memory || natural.compare(a.name, b.name))
      .map((s) => s.mac);
    assert.ok(expected.length > 100, 'more than one page');
    assert.deepEqual(macs, expected);
  });

  it('searches values: a DMI serial, a NIC MAC prefix, a 2-character text (scan), a tag', async () => {
    assert.deepEqual((await walk('/nodes?q=srv0002345')).macs, [mac(2345)]);
    const nicPrefix = seeded[1499]!.nic.slice(0, 14);
    const byNic = seeded.filter((s) => s.nic.startsWith(nicPrefix) || s.mac.startsWith(nicPrefix));
    assert.ok(byNic.length > 1);
    assert.deepEqual(
      new Set((await walk(`/nodes?q=${encodeURIComponent(nicPrefix)}`)).macs),
      new Set(byNic.map((s) => s.mac)),
    );
    // "-7" is shorter than a trigram: the scan answers it. Of the searched values only names carry a "-7".
    const dash7 = seeded.filter((s) => s.name.includes('-7'));
    assert.equal((await walk('/nodes?q=-7')).macs.length, dash7.length);
    const tagged = (await walk('/nodes?tag=rack-7')).macs;
    assert.deepEqual(new Set(tagged), new Set(seeded.filter((s) => s.tags.length).map((s) => s.mac)));
    assert.deepEqual((await walk('/nodes?q=no-such-text')).macs, []);
  });

  it('a node written between two page views shows on the next one (the cached order is dropped)', async () => {
    const first = rowsOf(await (await admin.get('/nodes')).text()).macs;
    assert.equal(first[0], mac(1));
    // Renamed to sort first: the same query must not serve the order computed before the write.
    h.repos.store.write((j) => h.repos.nodes.patchIn(j, mac(2999), { name: 'aaa-first' }));
    const again = rowsOf(await (await admin.get('/nodes')).text()).macs;
    assert.equal(again[0], mac(2999));
    assert.deepEqual((await walk('/nodes?q=aaa-first')).macs, [mac(2999)]);
    h.repos.store.write((j) => h.repos.nodes.patchIn(j, mac(2999), { name: 'node-2999' }));
    assert.deepEqual((await walk('/nodes?q=aaa-first')).macs, []);
  });

  it('the API pages by cursor and by offset, with the same filters and search', () => {
    const q = new NodeQuery(h.repos.store);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 20; i++) {
      const r = listNodes({ state: 'deployed', limit: '250', ...(cursor ? { cursor } : {}) }, q);
      seen.push(...r.nodes.map((n) => n.mac));
      assert.equal(r.total, seeded.filter((s) => s.state === 'deployed').length);
      if (!r.nextCursor) break;
      cursor = r.nextCursor;
    }
    assert.deepEqual(
      seen,
      seeded.filter((s) => s.state === 'deployed').map((s) => s.mac),
    );
    const deep = listNodes({ role: 'db', limit: '100', offset: '900' }, q);
    assert.deepEqual(
      deep.nodes.map((n) => n.mac),
      seeded
        .filter((s) => s.role === 'db')
        .slice(900, 1000)
        .map((s) => s.mac),
    );
    const hit = listNodes({ q: 'SRV0001234', limit: '10' }, q);
    assert.equal(hit.total, 1);
    assert.equal(hit.nodes[0]?.mac, mac(1234));
  });

  it("the API's node JSON, written by SQLite, is the JSON of NodeStore's records, for every node", () => {
    const q = new NodeQuery(h.repos.store);
    const all = listNodes({}, q);
    assert.equal(all.total, N);
    assert.deepEqual(all.nodes, h.repos.nodes.list());
    // Pages of 1000 by cursor: the same records, in the same order.
    const paged: NodeListReply['nodes'] = [];
    let cursor: string | null | undefined;
    do {
      const r = listNodes({ limit: '1000', ...(cursor ? { cursor } : {}) }, q);
      paged.push(...r.nodes);
      cursor = r.nextCursor;
    } while (cursor && paged.length <= N);
    assert.deepEqual(paged, all.nodes);
  });

  it('the table rows, read from node_facts, show what the full records show', () => {
    const q = new NodeQuery(h.repos.store);
    const records = h.repos.nodes.list();
    const rows = q.listRows(records.map((n) => n.mac).reverse()).map(tableRow);
    assert.equal(rows.length, N);
    const shown = (r: ReturnType<typeof tableRow>): unknown[] => [
      r.mac,
      r.name,
      r.ip,
      r.state,
      r.role,
      r.tags,
      r.lastSeenAt,
      r.cpu,
      r.memoryBytes,
      r.disksTotalBytes,
      r.diskCount,
      r.href,
    ];
    const expected = records.reverse().map((n) => {
      const full = nodeRow(n);
      return [
        n.mac,
        n.name,
        n.ip,
        n.state,
        n.role,
        n.tags,
        n.lastSeenAt,
        full.cpu,
        full.inventory.memoryBytes,
        full.inventory.disksTotalBytes,
        full.inventory.disks.length,
        full.href,
      ];
    });
    assert.deepEqual(rows.map(shown), expected);
    assert.deepEqual(new Set(rows.map((r) => r.diskCount)), new Set([1, 2, 3]));
    // An inventory of the wrong shape (an older agent): its wrong figures show as dashes, not as text.
    const odd = mac(17);
    const before = h.repos.nodes.get(odd)!;
    h.repos.store.write((j) =>
      h.repos.nodes.patchIn(j, odd, {
        inventory: { cpu: { model: 7, count: 'many' }, memoryBytes: 'lots', disks: 'none' },
      }),
    );
    try {
      const [row] = q.listRows([odd, mac(N + 1)]).map(tableRow);
      assert.deepEqual(
        [row?.cpu, row?.memoryBytes, row?.disksTotalBytes, row?.diskCount],
        [null, null, null, 0],
      );
    } finally {
      h.repos.store.write((j) => h.repos.nodes.patchIn(j, odd, { inventory: before.inventory }));
    }
  });
});
