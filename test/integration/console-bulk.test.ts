/**
 * The node list's bulk deploy and bulk power actions, and the node page's Load balancer panel, against a
 * real Express server on port 0 with a temporary SQLite store and real peers: the real deployer with a
 * real imported image, real restore points (startSnapshots, as master.ts wires `beforeRisky`), real power
 * control whose Wake-on-LAN packet goes to a UDP socket on loopback, and the real LoadBalancer running the
 * real HAProxy on loopback in front of a TCP backend on 127.0.0.2.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { hashPassword } from '../../master/auth/passwords.js';
import { Authenticator } from '../../master/auth/users.js';
import { buildConfig } from '../../master/config.js';
import { createDeployer } from '../../master/deploy/deployer.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { importImage } from '../../master/images/registry.js';
import { LoadBalancer } from '../../master/lb/load-balancer.js';
import { ServiceSpecSchema } from '../../master/lb/service-spec.js';
import { createPowerControl } from '../../master/remote/power.js';
import { SecretBox } from '../../master/remote/secrets.js';
import { startSnapshots, type Snapshots } from '../../master/snapshots/index.js';
import { openRepos, type Repos } from '../../master/store/repos.js';
import type { Role } from '../../master/store/users.js';
import { silentLogger } from '../../master/util/logger.js';
import { createConsoleRouter } from '../../web-ui/console.js';
import { nodeLbPanel } from '../../web-ui/pages/node-lb.js';
import { requirePeers } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';
import { Browser } from '../helpers/browser.js';
import { hasCommand, waitFor } from '../helpers/netns.js';
import { remotePages } from '../../master/remote/feature.js';
import { lbPages } from '../../master/lb/feature.js';
import { deployPages } from '../../master/deploy/feature.js';

const PASSWORD = 'console bulk test password';
const MACS = ['52:54:00:b0:00:01', '52:54:00:b0:00:02', '52:54:00:b0:00:03'] as const;
const LB_MAC = '52:54:00:b0:00:10';
// Without haproxy the LB service is not set up, and the LB panel suite fails (requirePeers) instead.
const noHaproxy = !hasCommand('haproxy');

let dir = '';
let repos: Repos;
let snapshots: Snapshots;
let lb: LoadBalancer;
let server: Server;
let backend: NetServer;
let wol: Socket;
const wolPackets: Buffer[] = [];
let base = '';

const listen = (host: string, port: number): Promise<NetServer> =>
  new Promise((resolve, reject) => {
    const s = createServer((c) => c.end());
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
async function browserAs(user: string): Promise<Browser> {
  const b = new Browser(base);
  assert.equal((await b.login(user, PASSWORD)).status, 303, `${user} signs in`);
  return b;
}

/** Posts the node list's bulk form: Browser.post takes one value a field, the form repeats `mac`. */
function postBulk(b: Browser, fields: Record<string, string>, macs: readonly string[]): Promise<Response> {
  const form = new URLSearchParams(fields);
  for (const mac of macs) form.append('mac', mac);
  return fetch(`${base}/nodes/bulk`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: form.toString(),
  });
}

const flashOf = (res: Response): string => decodeURIComponent(res.headers.get('location') ?? '');
const autoPoints = () => snapshots.points.list().filter((m) => m.kind === 'auto');
const stateOf = (mac: string) => repos.nodes.get(mac)?.state;
const powerEvents = () =>
  repos.events.list({ limit: 200 }).filter((e) => e.kind.startsWith('power.') && e.actor !== 'test');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-console-bulk-'));
  const logger = silentLogger();
  repos = openRepos({ path: join(dir, 'corral.db'), logger });
  const hash = await hashPassword(PASSWORD);
  const backendPort = await freePort('127.0.0.2');
  backend = await listen('127.0.0.2', backendPort);
  repos.store.write((j) => {
    for (const [name, role] of [
      ['op', 'operator'],
      ['viewer', 'viewer'],
    ] as [string, Role][])
      repos.users.upsertIn(j, name, hash, role);
    MACS.forEach((mac, i) =>
      repos.nodes.insertIn(j, {
        mac,
        name: `n${i + 1}`,
        seqNo: i + 1,
        state: 'discovered',
        ip: `10.9.0.${101 + i}`,
        inventory: { disks: [{ name: 'vda', sizeBytes: 4 * 2 ** 30 }] },
      }),
    );
    repos.nodes.insertIn(j, { mac: LB_MAC, name: 'web-1', seqNo: 10, state: 'deployed', ip: '127.0.0.2' });
    repos.nodes.patchIn(j, LB_MAC, { role: 'app' });
  });
  const config = buildConfig({ dataDir: dir, address: '127.0.0.1', lb: { pollMs: 100 } }, {});
  const root = join(dir, 'tiny-root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'os-release'), 'ID=tiny\nVERSION_ID=1\n');
  execFileSync('tar', ['-czf', join(dir, 'tiny.tar.gz'), '-C', root, '.']);
  await importImage({ repos, dataDir: dir, logger, source: join(dir, 'tiny.tar.gz'), name: 'tiny' });

  snapshots = startSnapshots({ repos, config, logger });
  const power = createPowerControl({ repos, config, logger, secrets: SecretBox.forDataDir(dir) });
  wol = createSocket('udp4');
  wol.on('message', (m) => wolPackets.push(m));
  await new Promise<void>((r) => wol.bind(0, '127.0.0.1', () => r()));
  // n1 wakes by Wake-on-LAN (to the socket above), n2 has the manual driver, n3 has none.
  power.configure(
    repos.nodes.get(MACS[0])!,
    { driver: 'wol', address: '127.0.0.1', port: wol.address().port },
    'test',
  );
  power.configure(repos.nodes.get(MACS[1])!, { driver: 'manual' }, 'test');

  lb = new LoadBalancer({ repos, config, logger });
  if (!noHaproxy) {
    const port = await freePort('127.0.0.1');
    repos.store.write((j) =>
      repos.services.putIn(
        j,
        'web',
        ServiceSpecSchema.parse({
          name: 'web',
          port,
          protocol: 'tcp',
          role: 'app',
          backendPort,
          intervalMs: 100,
          rise: 1,
          fall: 1,
        }),
      ),
    );
    await lb.start();
  }
  const deployer = createDeployer({ repos, config, logger, key: await ensureMasterKey(dir) });
  const app = express();
  app.use(
    createConsoleRouter({
      repos,
      config,
      logger,
      authenticator: new Authenticator(repos),
      deployer,
      beforeRisky: snapshots.beforeRisky,
      power,
      lb,
      pages: [
        remotePages(power, join(dir, 'unused-key')),
        lbPages(lb),
        deployPages(deployer, snapshots.beforeRisky),
      ],
    }),
  );
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await lb?.close();
  await snapshots?.close();
  backend?.close();
  wol?.close();
  repos?.store.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('console: bulk deploy and power on the node list', () => {
  it('offers deploy (image, layout) and power to an operator; a viewer gets no bulk controls and is refused', async () => {
    const op = await browserAs('op');
    const html = await (await op.get('/nodes')).text();
    assert.match(html, /<option value="deploy">/);
    assert.match(html, /<select id="bulk-image" name="image" form="bulk">[\s\S]*?<option value="tiny">/);
    assert.match(html, /<select id="bulk-layout" name="layout" form="bulk">/);
    for (const a of ['on', 'off', 'cycle']) assert.match(html, new RegExp(`<option value="power:${a}">`));

    const viewer = await browserAs('viewer');
    const page = await (await viewer.get('/nodes')).text();
    assert.doesNotMatch(page, /action="\/nodes\/bulk"/);
    assert.doesNotMatch(page, /name="action"/);
    const token = await viewer.csrfToken();
    for (const action of ['deploy', 'power:off']) {
      const res = await viewer.post('/nodes/bulk', {
        _csrf: token,
        mac: MACS[0],
        action,
        image: 'tiny',
        confirm: 'yes',
      });
      assert.equal(res.status, 403, `viewer ${action}`);
    }
    assert.equal(stateOf(MACS[0]), 'discovered');
    assert.equal(repos.deployments.listFor(MACS[0]).length, 0);
    assert.deepEqual(powerEvents(), []);
  });

  it('refuses an unconfirmed bulk deploy or power off, and an unknown image, changing nothing', async () => {
    const op = await browserAs('op');
    const token = await op.csrfToken();
    const body = (action: string, extra: Record<string, string> = {}): Record<string, string> => ({
      _csrf: token,
      action,
      image: 'tiny',
      ...extra,
    });
    const post = (fields: Record<string, string>): Promise<Response> =>
      postBulk(op, fields, MACS.slice(0, 2));
    for (const action of ['deploy', 'power:off']) {
      const res = await post(body(action));
      assert.equal(res.status, 303);
      assert.match(flashOf(res), /err=Tick "I confirm"/, action);
    }
    const unknown = await post(body('deploy', { image: 'nope', confirm: 'yes' }));
    assert.match(flashOf(unknown), /err=.*nope/);
    const noImage = await post(body('deploy', { image: '', confirm: 'yes' }));
    assert.match(flashOf(noImage), /err=Choose an image to deploy/);
    for (const mac of MACS.slice(0, 2)) {
      assert.equal(stateOf(mac), 'discovered');
      assert.equal(repos.deployments.listFor(mac).length, 0);
    }
    assert.equal(autoPoints().length, 0, 'no restore point for a refused deploy');
    assert.deepEqual(powerEvents(), []);
  });

  it('deploys two nodes: both deploying, one automatic restore point naming them, per-node outcomes', async () => {
    const op = await browserAs('op');
    const res = await postBulk(
      op,
      { _csrf: await op.csrfToken(), action: 'deploy', image: 'tiny', layout: '', confirm: 'yes' },
      MACS.slice(0, 2),
    );
    assert.equal(res.status, 303);
    const flash = flashOf(res);
    const ids = MACS.slice(0, 2).map((mac) => repos.deployments.listFor(mac)[0]?.id);
    assert.match(
      flash,
      new RegExp(
        `ok=Deploying tiny: done for n1 \\(deployment ${ids[0]}, agent reboots it\\), n2 \\(deployment ${ids[1]}, agent reboots it\\)\\.$`,
      ),
    );
    assert.equal(stateOf(MACS[0]), 'deploying');
    assert.equal(stateOf(MACS[1]), 'deploying');
    assert.equal(stateOf(MACS[2]), 'discovered', 'an unselected node stays');
    const points = autoPoints();
    assert.equal(points.length, 1, 'exactly one restore point for the whole bulk deploy');
    assert.equal(points[0]?.reason, 'before deploying tiny to 2 nodes: n1, n2');
    assert.equal(points[0]?.actor, 'op');

    // The flash shows on the page it redirects to, whole.
    const page = await (await op.get(res.headers.get('location') ?? '/nodes')).text();
    assert.match(page, /role="status">Deploying tiny: done for n1 \(deployment \d+, agent reboots it\), n2/);
  });

  it('deploys a single node from the list without a restore point', async () => {
    const op = await browserAs('op');
    const res = await op.post('/nodes/bulk', {
      _csrf: await op.csrfToken(),
      mac: MACS[2],
      action: 'deploy',
      image: 'tiny',
      layout: 'default',
      confirm: 'yes',
    });
    assert.match(flashOf(res), /ok=Deploying tiny: done for n3 \(deployment \d+/);
    assert.equal(stateOf(MACS[2]), 'deploying');
    assert.equal(autoPoints().length, 1, 'still only the one from the two-node deploy');
  });

  it('powers selected nodes through their drivers, naming refusals per node', async () => {
    const op = await browserAs('op');
    const token = await op.csrfToken();
    const post = (action: string): Promise<Response> =>
      postBulk(op, { _csrf: token, action, confirm: 'yes' }, MACS);
    const on = flashOf(await post('power:on'));
    assert.match(
      on,
      /err=Power on: done for n1, n2 \(operator action needed\)\. Refused: n3 \(.*no power driver/,
    );
    await waitFor('the magic packet', () => wolPackets.length === 1, 5000, 20);
    // 6 × 0xff, then n1's MAC 16 times.
    assert.equal(wolPackets[0]?.subarray(0, 6).toString('hex'), 'ffffffffffff');
    assert.equal(wolPackets[0]?.subarray(6, 12).toString('hex'), MACS[0].replaceAll(':', ''));
    const off = flashOf(await post('power:off'));
    assert.match(
      off,
      /Power off: done for n2 \(operator action needed\)\. Refused: n1 \(.*cannot 'off'.*; n3/,
    );
    const kinds = powerEvents().map((e) => `${e.kind}:${e.data?.['action']}:${e.actor}`);
    assert.deepEqual(kinds.sort(), ['power.action:on:op', 'power.manual:off:op', 'power.manual:on:op']);
    assert.equal(wolPackets.length, 1, 'off sends no packet');
  });
});

describe('console: node page Load balancer panel', () => {
  before(() => requirePeers('haproxy'));
  const drainForm = (html: string): string =>
    new RegExp(`<form[^>]*action="/nodes/${encodeURIComponent(LB_MAC)}/lb/web/state"[\\s\\S]*?</form>`).exec(
      html,
    )?.[0] ?? '';
  const server = () => lb.views()[0]?.servers.find((s) => s.mac === LB_MAC);

  it("shows the service the node serves with HAProxy's health and check result", async () => {
    await waitFor('web-1 up in HAProxy', () => server()?.health === 'up', 10_000, 50);
    const op = await browserAs('op');
    const html = await (await op.get(`/nodes/${LB_MAC}`)).text();
    const row = /<tr data-service="web">([\s\S]*?)<\/tr>/.exec(html)?.[1] ?? '';
    assert.match(row, /<a href="\/services\/web">web<\/a>/);
    assert.match(row, /data-health="up"/);
    assert.match(row, /<td>UP<\/td>/);
    assert.match(row, /L4OK/);
    assert.match(row, /data-admin="ready"/);
    const form = drainForm(html);
    assert.match(form, /name="_csrf"/);
    assert.match(form, /<input type="checkbox" name="confirm" value="yes" required>/);
    assert.match(form, /<button type="submit" name="state" value="ready"[^>]* formnovalidate[^>]*>Ready</);
    assert.match(form, /<button type="submit" name="state" value="drain"[^>]*>Drain</);
    assert.doesNotMatch(/value="drain"[^>]*>/.exec(form)?.[0] ?? '', /formnovalidate/);
    assert.match(form, /value="maint"[^>]*>Maintenance</);

    const other = await (await op.get(`/nodes/${MACS[0]}`)).text();
    assert.match(other, /<h2 id="h-lb">Load balancer<\/h2>/);
    assert.match(other, /n1 serves no load-balanced service/);

    const viewer = await browserAs('viewer');
    const seen = await (await viewer.get(`/nodes/${LB_MAC}`)).text();
    assert.match(seen, /<tr data-service="web">/);
    assert.equal(drainForm(seen), '', 'no state buttons for a viewer');
  });

  it('drain needs "I confirm" (server side) and an operator, then goes to HAProxy; ready takes one click', async () => {
    const viewer = await browserAs('viewer');
    const refused = await viewer.post(`/nodes/${LB_MAC}/lb/web/state`, {
      _csrf: await viewer.csrfToken(),
      state: 'drain',
      confirm: 'yes',
    });
    assert.equal(refused.status, 403);
    const op = await browserAs('op');
    const token = await op.csrfToken();
    const forged = await op.post(`/nodes/${LB_MAC}/lb/web/state`, { state: 'drain', confirm: 'yes' });
    assert.equal(forged.status, 403, 'no CSRF token');
    for (const state of ['drain', 'maint']) {
      const res = await op.post(`/nodes/${LB_MAC}/lb/web/state`, { _csrf: token, state });
      assert.match(flashOf(res), /err=Tick "I confirm"/, state);
    }
    assert.equal(server()?.admin, 'ready');
    assert.equal(server()?.status, 'UP');

    const drained = await op.post(`/nodes/${LB_MAC}/lb/web/state`, {
      _csrf: token,
      state: 'drain',
      confirm: 'yes',
    });
    assert.equal(drained.status, 303);
    assert.match(flashOf(drained), /ok=web-1 is now drain in service web\./);
    assert.equal(server()?.admin, 'drain');
    assert.equal(server()?.status, 'DRAIN', 'HAProxy itself reports DRAIN');
    const event = repos.events.list({ nodeMac: LB_MAC, kind: 'lb.server.admin', limit: 1 })[0];
    assert.equal(event?.actor, 'op');
    const page = await (await op.get(drained.headers.get('location') ?? '')).text();
    assert.match(page, /data-admin="drain"/);
    assert.match(page, /value="drain" class="btn btn-small btn-primary"[^>]*aria-pressed="true"/);

    const ready = await op.post(`/nodes/${LB_MAC}/lb/web/state`, { _csrf: token, state: 'ready' });
    assert.match(flashOf(ready), /ok=web-1 is now ready in service web\./);
    assert.equal(server()?.status, 'UP');

    const notMember = await op.post(`/nodes/${MACS[0]}/lb/web/state`, { _csrf: token, state: 'ready' });
    assert.match(flashOf(notMember), /err=n1 does not serve web/);
  });

  it('says so when load balancing is disabled', () => {
    const off = new LoadBalancer({
      repos,
      config: buildConfig({ dataDir: dir, address: '127.0.0.1', lb: { enabled: false } }, {}),
      logger: silentLogger(),
    });
    const panel = nodeLbPanel(off, repos.nodes.get(LB_MAC)!, 'operator');
    assert.deepEqual(panel.rows, []);
    assert.match(panel.empty ?? '', /Load balancing is disabled/);
    assert.match(nodeLbPanel(undefined, repos.nodes.get(LB_MAC)!, 'operator').empty ?? '', /not available/);
  });
});
