/**
 * The console's Images page and node deploy page against a real Express server on port 0, a temporary
 * SQLite store, a real imported image (a tiny tar.gz made here) and the real deployer: the deploy form
 * moves a node to `deploying` with its event, roles and CSRF are enforced on the server, and deleting an
 * image a node uses is refused with the IMAGE_IN_USE sentence.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDeployer, type Deployer } from '../../master/deploy/deployer.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { importImage } from '../../master/images/registry.js';
import type { Repos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { hiddenValue, type Browser } from '../helpers/browser.js';
import { deployPages } from '../../master/deploy/feature.js';
import { startConsoleHarness, type ConsoleHarness } from '../helpers/console.js';

const PASSWORD = 'correct horse battery staple';
const MAC = '52:54:00:aa:bb:01';
const INVENTORY = {
  cpu: { model: 'QEMU Virtual CPU', count: 2 },
  memoryBytes: 536870912,
  disks: [{ name: 'vda', sizeBytes: 4 * 2 ** 30, serial: 'CORRAL1' }],
  nics: [{ name: 'eth0', mac: MAC, link: 'up' }],
  dmi: { vendor: 'QEMU', product: 'Standard PC', serial: null },
  firmware: 'bios',
};

let h: ConsoleHarness;
let repos: Repos;

function browserAs(user: string): Promise<Browser> {
  return h.signIn(user, PASSWORD);
}

function decode(html: string): string {
  return html
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

before(async () => {
  let deployer: Deployer | undefined;
  h = await startConsoleHarness({
    users: [
      ['admin', 'admin', PASSWORD],
      ['op', 'operator', PASSWORD],
      ['viewer', 'viewer', PASSWORD],
    ],
    seed: async (r, dir, config) => {
      const logger = silentLogger();
      r.store.write((journal) =>
        r.nodes.insertIn(journal, {
          mac: MAC,
          name: 'node-1',
          seqNo: 1,
          state: 'discovered',
          ip: '10.9.0.101',
          inventory: INVENTORY,
        }),
      );
      // Two tiny real root file systems, imported through the registry like `corral image import`.
      for (const name of ['tiny', 'spare']) {
        const root = join(dir, `${name}-root`);
        mkdirSync(join(root, 'etc'), { recursive: true });
        writeFileSync(join(root, 'etc', 'os-release'), `ID=tiny\nVERSION_ID=${name === 'tiny' ? 1 : 2}\n`);
        execFileSync('tar', ['-czf', join(dir, `${name}.tar.gz`), '-C', root, '.']);
        await importImage({ repos: r, dataDir: dir, logger, source: join(dir, `${name}.tar.gz`), name });
      }
      deployer = createDeployer({ repos: r, config, logger, key: await ensureMasterKey(dir) });
    },
    deps: () => (deployer ? { deployer, pages: [deployPages(deployer)] } : {}),
  });
  repos = h.repos;
});

after(() => h.close());

describe('console: deploy', () => {
  it('shows the deploy panel on the node page and the image choice on the deploy page', async () => {
    const op = await browserAs('op');
    const node = await (await op.get(`/nodes/${MAC}`)).text();
    assert.match(node, /<h2 id="h-deploy">Deploy<\/h2>/);
    assert.match(node, new RegExp(`action="/nodes/${MAC}/deploy"`));
    const page = await op.get(`/nodes/${MAC}/deploy`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<option value="tiny"/);
    assert.match(html, /<option value="default" selected>/);
    assert.match(html, /No deployments of this node yet/);
  });

  it('refuses a viewer (403) and a post without the CSRF token (403); the node does not move', async () => {
    const viewer = await browserAs('viewer');
    const page = await (await viewer.get(`/nodes/${MAC}/deploy`)).text();
    assert.doesNotMatch(page, /<select id="d-image"/, 'no deploy form for a viewer');
    const denied = await viewer.post(`/nodes/${MAC}/deploy`, {
      _csrf: await viewer.csrfToken(),
      image: 'tiny',
    });
    assert.equal(denied.status, 403);
    const op = await browserAs('op');
    const forged = await op.post(`/nodes/${MAC}/deploy`, { image: 'tiny' });
    assert.equal(forged.status, 403);
    assert.equal(repos.nodes.get(MAC)?.state, 'discovered');
    assert.equal(repos.deployments.listFor(MAC).length, 0);
  });

  it('explains an unknown layout without moving the node', async () => {
    const op = await browserAs('op');
    const res = await op.post(`/nodes/${MAC}/deploy`, {
      _csrf: await op.csrfToken(),
      image: 'tiny',
      layout: 'nope',
      confirm: 'yes',
    });
    assert.equal(res.status, 303);
    assert.match(decodeURIComponent(res.headers.get('location') ?? ''), /no disk layout named 'nope'/);
    assert.equal(repos.nodes.get(MAC)?.state, 'discovered');
  });

  it('needs "I confirm" ticked on both deploy forms, checked on the server; the node does not move', async () => {
    const op = await browserAs('op');
    for (const path of [`/nodes/${MAC}`, `/nodes/${MAC}/deploy`]) {
      const html = await (await op.get(path)).text();
      const form =
        new RegExp(`<form[^>]*action="/nodes/${MAC}/deploy"[\\s\\S]*?</form>`).exec(html)?.[0] ?? '';
      assert.match(form, /<input type="checkbox" name="confirm" value="yes" required>/, path);
    }
    const res = await op.post(`/nodes/${MAC}/deploy`, { _csrf: await op.csrfToken(), image: 'tiny' });
    assert.equal(res.status, 303);
    assert.match(decodeURIComponent(res.headers.get('location') ?? ''), /Tick "I confirm"/);
    assert.equal(repos.nodes.get(MAC)?.state, 'discovered');
    assert.equal(repos.deployments.listFor(MAC).length, 0);
  });

  it('deploys from the form: node deploying, deployment and event recorded, shown on the page', async () => {
    const op = await browserAs('op');
    const res = await op.post(`/nodes/${MAC}/deploy`, {
      _csrf: await op.csrfToken(),
      image: 'tiny',
      layout: 'default',
      confirm: 'yes',
    });
    assert.equal(res.status, 303);
    const location = res.headers.get('location') ?? '';
    // No power driver here: the discovery agent reboots it, and the event says which way was taken.
    assert.match(
      decodeURIComponent(location),
      /node-1: deploying tiny \(deployment \d+\); its agent is told to reboot at its next poll/,
    );
    const reboot = repos.events.list({ nodeMac: MAC, kind: 'deploy.reboot', limit: 1 })[0];
    assert.equal(reboot?.data?.['path'], 'agent');
    assert.equal(repos.nodes.get(MAC)?.state, 'deploying');
    const [d] = repos.deployments.listFor(MAC);
    assert.equal(d?.status, 'pending');
    const started = repos.events.list({ nodeMac: MAC, limit: 20 }).find((e) => e.kind === 'deploy.started');
    assert.ok(started, 'deploy.started event');
    assert.equal(started.actor, 'op');
    const html = await (await op.get(location)).text();
    assert.match(html, /data-status="pending"/);
    assert.match(html, /<td class="mono">vda<\/td>/);
  });

  it('shows a failed deployment with its reason and log tail', async () => {
    const [d] = repos.deployments.listFor(MAC);
    assert.ok(d);
    repos.store.write((journal) =>
      repos.deployments.patchIn(journal, d.id, {
        status: 'failed',
        message: 'image checksum mismatch: expected aa, got bb',
        logTail: 'corral: error image checksum mismatch',
        finished: true,
      }),
    );
    const viewer = await browserAs('viewer');
    const html = decode(await (await viewer.get(`/nodes/${MAC}/deploy`)).text());
    assert.match(html, /data-status="failed"/);
    assert.match(html, /<strong>Reason:<\/strong> image checksum mismatch: expected aa, got bb/);
    assert.match(html, /<pre>corral: error image checksum mismatch<\/pre>/);
  });
});

describe('console: images', () => {
  it('lists the imported images with format, size, short sha256, OS and the nodes using them', async () => {
    const viewer = await browserAs('viewer');
    const res = await viewer.get('/images');
    assert.equal(res.status, 200);
    const html = await res.text();
    const tiny = repos.images.getByName('tiny');
    assert.ok(tiny);
    const row = /<tr data-image="tiny">([\s\S]*?)<\/tr>/.exec(html)?.[1] ?? '';
    assert.match(row, /<td>tar\.gz<\/td>/);
    assert.match(row, new RegExp(`title="${tiny.sha256}">${tiny.sha256.slice(0, 12)}<`));
    assert.match(row, /tiny 1/);
    assert.match(row, /<a href="\/nodes\/node-1">node-1<\/a>/);
    assert.doesNotMatch(html, /Delete<\/button>/, 'no delete button for a viewer');
    assert.match(html, /href="\/images"/, 'Images is in the navigation');
  });

  it('refuses deleting an image in use with IMAGE_IN_USE, and an operator outright', async () => {
    const op = await browserAs('op');
    const forbidden = await op.post('/images/tiny/delete', { _csrf: await op.csrfToken(), confirm: 'tiny' });
    assert.equal(forbidden.status, 403);
    const admin = await browserAs('admin');
    const token = await admin.csrfToken();
    const unconfirmed = await admin.post('/images/tiny/delete', { _csrf: token, confirm: 'tin' });
    assert.match(decodeURIComponent(unconfirmed.headers.get('location') ?? ''), /Type tiny to confirm/);
    const inUse = await admin.post('/images/tiny/delete', { _csrf: token, confirm: 'tiny' });
    assert.equal(inUse.status, 303);
    const page = decode(await (await admin.get(inUse.headers.get('location') ?? '/images')).text());
    assert.match(page, /image tiny is used by node\(s\) node-1/);
    assert.ok(repos.images.getByName('tiny'), 'still registered');
    assert.ok(hiddenValue(page, '_csrf'));
  });

  it('deletes an unused image after the typed confirmation', async () => {
    const admin = await browserAs('admin');
    const res = await admin.post('/images/spare/delete', {
      _csrf: await admin.csrfToken(),
      confirm: 'spare',
    });
    assert.match(decodeURIComponent(res.headers.get('location') ?? ''), /Deleted image spare/);
    assert.equal(repos.images.getByName('spare'), undefined);
    assert.equal(repos.events.list({ limit: 50 }).filter((e) => e.kind === 'image.deleted').length, 1);
  });
});
