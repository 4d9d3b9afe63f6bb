/**
 * The Shared roots console pages against a real Express server on port 0 and a temporary SQLite store,
 * with the real SharedRoots domain (trees copied on disk) and no NFS server: the reconcile the pages
 * call is counted instead. Fetch is the browser; roles and CSRF are enforced as for every console form.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SharedRoots } from '../../master/sharedroot/service.js';
import type { Browser } from '../helpers/browser.js';
import { sharedRootPages } from '../../master/sharedroot/feature.js';
import { startConsoleHarness, type ConsoleHarness } from '../helpers/console.js';

const PASSWORD = 'correct horse battery staple';
const NODE = { mac: '52:54:00:aa:00:01', name: 'dl-1' };
const OTHER = { mac: '52:54:00:aa:00:02', name: 'dl-2' };

interface Harness extends ConsoleHarness {
  roots: SharedRoots;
  reconciles: { n: number };
}

async function startConsole(): Promise<Harness> {
  let roots: SharedRoots | undefined;
  const reconciles = { n: 0 };
  const h = await startConsoleHarness({
    users: [
      ['admin', 'admin', PASSWORD],
      ['op', 'operator', PASSWORD],
      ['view', 'viewer', PASSWORD],
    ],
    seed: async (repos, dir, config) => {
      repos.store.write((journal) => {
        for (const [i, n] of [NODE, OTHER].entries()) {
          repos.nodes.insertIn(journal, { ...n, seqNo: i + 1, state: 'discovered', ip: `10.9.0.${101 + i}` });
        }
      });
      roots = new SharedRoots(repos, config);
      const tree = join(dir, 'tree');
      mkdirSync(join(tree, 'sbin'), { recursive: true });
      writeFileSync(join(tree, 'sbin/init'), '#!/bin/sh\nexec sh\n');
      chmodSync(join(tree, 'sbin/init'), 0o755);
      await roots.create('lab', { dir: tree });
    },
    deps: () => ({
      pages: [
        sharedRootPages({
          roots: roots!,
          reconcile: () => {
            reconciles.n++;
            return Promise.resolve();
          },
          status: () => ({
            running: false,
            pid: null,
            restarts: 0,
            lastError: null,
            configPath: '',
            exports: 0,
            rejected: null,
          }),
        }),
      ],
    }),
  });
  return Object.assign(h, { roots: roots!, reconciles });
}

function signIn(h: Harness, user: string): Promise<Browser> {
  return h.signIn(user, PASSWORD);
}

function flashOf(location: string | null): string {
  return new URL(location ?? '/', 'http://x').searchParams.get('ok') ?? '';
}

describe('console: shared roots', () => {
  let h: Harness;
  before(async () => {
    h = await startConsole();
  });
  after(() => h.close());

  it('lists each root with its versions, current version, root id, node count and export', async () => {
    const b = await signIn(h, 'view');
    const res = await b.get('/sharedroots');
    assert.equal(res.status, 200);
    const html = await res.text();
    const rootId = h.roots.get('lab').versions[0]?.rootId ?? '';
    assert.match(rootId, /^lab@1:/);
    const row = /<tr data-root="lab">([\s\S]*?)<\/tr>/.exec(html)?.[1] ?? '';
    assert.match(row, /<a href="\/sharedroots\/lab">lab<\/a>/);
    assert.ok(row.includes(rootId), 'root id in the row');
    assert.ok(row.includes('/roots/lab/1'), 'export path in the row');
    assert.match(row, /<td class="num">0<\/td>/);
    assert.match(html, /href="\/sharedroots"[^>]*>[\s\S]*?Shared roots/, 'navigation entry');
    // A viewer gets no form to act with.
    assert.doesNotMatch(html, /action="\/sharedroots\/diskless"/);
  });

  it('refuses the diskless form to a viewer (403) and to a post without the CSRF token (403)', async () => {
    const viewer = await signIn(h, 'view');
    const token = await viewer.csrfToken();
    const denied = await viewer.post('/sharedroots/diskless', { _csrf: token, root: 'lab', node: NODE.mac });
    assert.equal(denied.status, 403);
    assert.match(await denied.text(), /needs operator/);

    const op = await signIn(h, 'op');
    const forged = await op.post('/sharedroots/diskless', { root: 'lab', node: NODE.mac });
    assert.equal(forged.status, 403);
    assert.equal(h.repos.nodes.get(NODE.mac)?.state, 'discovered');
    assert.equal(h.repos.sharedRoots.assignment(NODE.mac), undefined);
  });

  it('sets a node diskless with the chosen root, records the event and shows the node on the root', async () => {
    const b = await signIn(h, 'op');
    const list = await (await b.get('/sharedroots')).text();
    assert.match(list, /action="\/sharedroots\/diskless"/);
    assert.ok(list.includes(`<option value="${NODE.mac}">`), 'node offered in the form');
    const before = h.reconciles.n;
    const res = await b.post('/sharedroots/diskless', {
      _csrf: await b.csrfToken(),
      root: 'lab',
      node: NODE.mac,
      persistent: 'yes',
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', /^\/sharedroots\/lab\?ok=/);
    assert.match(flashOf(res.headers.get('location')), /dl-1 is diskless on lab/);
    assert.equal(h.repos.nodes.get(NODE.mac)?.state, 'diskless');
    assert.equal(h.repos.sharedRoots.assignment(NODE.mac)?.persistent, true);
    assert.equal(h.reconciles.n, before + 1, 'NFS exports reconciled at once');
    const ev = h.repos.events.list({ nodeMac: NODE.mac, kind: 'node.state' });
    assert.equal(ev.length, 1, JSON.stringify(ev));
    assert.equal(ev[0]?.actor, 'op');
    assert.match(ev[0]?.message ?? '', /diskless/);

    const detail = await (await b.get('/sharedroots/lab')).text();
    const row = /<tr data-node="52:54:00:aa:00:01">([\s\S]*?)<\/tr>/.exec(detail)?.[1] ?? '';
    assert.ok(row.includes('dl-1'), 'node listed on the root');
    assert.match(row, /state-diskless/);
    assert.match(row, /not yet/);
    assert.match(
      await (await b.get('/sharedroots')).text(),
      /<tr data-root="lab">[\s\S]*?<td class="num">1<\/td>/,
    );
  });

  it('answers an unknown root with a message on the list page, and moves no node', async () => {
    const b = await signIn(h, 'op');
    const res = await b.post('/sharedroots/diskless', {
      _csrf: await b.csrfToken(),
      root: 'nope',
      node: OTHER.mac,
    });
    assert.equal(res.status, 303);
    const loc = new URL(res.headers.get('location') ?? '/', 'http://x');
    assert.equal(loc.pathname, '/sharedroots');
    assert.match(loc.searchParams.get('err') ?? '', /no shared root named 'nope'/);
    assert.equal(h.repos.nodes.get(OTHER.mac)?.state, 'discovered');
  });

  it('lets an admin make a draft, publish it and roll back; an operator may not publish', async () => {
    const op = await signIn(h, 'op');
    const opDenied = await op.post('/sharedroots/lab/edit', { _csrf: await op.csrfToken() });
    assert.equal(opDenied.status, 403);

    const b = await signIn(h, 'admin');
    const token = await b.csrfToken();
    const draft = await b.post('/sharedroots/lab/edit', { _csrf: token });
    assert.equal(draft.status, 303);
    assert.match(flashOf(draft.headers.get('location')), /Draft version 2 is at \S+\/roots\/lab\/2/);
    const page = await (await b.get('/sharedroots/lab')).text();
    assert.match(page, /<tr data-version="2">[\s\S]*?draft[\s\S]*?name="version" value="2"/);

    const pub = await b.post('/sharedroots/lab/publish', { _csrf: token, version: '2' });
    assert.equal(pub.status, 303);
    assert.match(flashOf(pub.headers.get('location')), /Version 2 is current/);
    assert.equal(h.roots.get('lab').currentVersion, 2);
    assert.equal(h.repos.events.list({ kind: 'sharedroot.published' }).length, 1);

    const back = await b.post('/sharedroots/lab/rollback', { _csrf: token });
    assert.equal(back.status, 303);
    assert.match(flashOf(back.headers.get('location')), /version 1 is current/);
    assert.equal(h.roots.get('lab').currentVersion, 1);
  });

  it('shows the 404 page for an unknown root', async () => {
    const b = await signIn(h, 'view');
    const res = await b.get('/sharedroots/nope');
    assert.equal(res.status, 404);
  });
});
