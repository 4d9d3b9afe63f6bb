/**
 * Issue 14, finding 3: secrets must not reach viewers (or anyone reading pages, API answers and logs).
 *
 * A real master (in-process, HTTPS with a user-supplied key, HA on) is given known secret values: the HA
 * token (changed between two runs, so a restore point's config differs from the live one), the first admin
 * password, the TLS private key and a BMC password. The test then does what puts values in front of
 * people (settings, restore point create + diff, power settings, failed sign-ins, errors that echo what
 * was sent), crawls every GET route of the API and every console page (found in the source, so a new route
 * is crawled without editing this test) as admin and as viewer, and searches every answer and the
 * master's log file for the planted values. First it replays the attack: viewer reads the diff, takes the
 * token, asks /api/v1/ha/clone/info for the database and keys.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildConfig } from '../../master/config.js';
import { startMaster, type Master } from '../../master/master.js';
import { diffConfig } from '../../master/snapshots/restore-points.js';
import { createLogger } from '../../master/util/logger.js';
import { installPath } from '../../master/util/paths.js';
import { Redactor, REDACTED } from '../../master/util/redact.js';
import { hiddenValue } from '../helpers/browser.js';
import { httpsRequest, type TlsResponse } from '../helpers/tls-client.js';

const TOKEN_1 = 'planted-ha-token-one-7f3a9c1e';
const TOKEN_2 = 'planted-ha-token-two-b62d04aa';
const ADMIN_PASSWORD = 'planted-admin-password-5e8b';
const BMC_PASSWORD = 'planted-bmc-password-91c3';
const VIEWER_PASSWORD = 'viewer-password-123';
const NODE_MAC = '52:54:00:5e:c0:01';

const dir = mkdtempSync(join(tmpdir(), 'corral-redact-'));
const dataDir = join(dir, 'data');
const logFile = join(dir, 'master.log');
let master: Master | undefined;

after(async () => {
  await master?.close();
  rmSync(dir, { recursive: true, force: true });
});

execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2'],
    ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
  ],
  { stdio: 'ignore' },
);
const CA = readFileSync(join(dir, 'cert.pem'));
const TLS_KEY = readFileSync(join(dir, 'key.pem'), 'utf8');
/** The key's base64 body lines: a leak of the file shows at least one of them. */
const TLS_KEY_LINES = TLS_KEY.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));
const PLANTED: Record<string, string> = {
  'ha.token (first run)': TOKEN_1,
  'ha.token (second run)': TOKEN_2,
  'admin password': ADMIN_PASSWORD,
  'BMC password': BMC_PASSWORD,
  ...Object.fromEntries(TLS_KEY_LINES.map((l, i) => [`TLS key line ${i + 1}`, l])),
};

function leaksIn(text: string): string[] {
  return Object.entries(PLANTED)
    .filter(([, v]) => text.includes(v))
    .map(([k]) => k);
}

async function start(token: string): Promise<Master> {
  const config = buildConfig(
    {
      dataDir,
      http: { port: 0, bind: '127.0.0.1' },
      tftp: { enabled: false },
      lb: { enabled: false },
      monitor: { enabled: false },
      console: { https: true, certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') },
      // The peer never answers (port 1): this master is promoted by hand and runs alone.
      ha: {
        enabled: true,
        nodeId: 'm1',
        token,
        peerUrl: 'http://127.0.0.1:1',
        keepalived: false,
        mode: 'async',
      },
      log: { level: 'debug' },
    },
    { address: '127.0.0.1' },
  );
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: logFile, append: true, sync: true }),
  });
  const m = await startMaster(config, { logger, initialAdminPassword: ADMIN_PASSWORD });
  master = m;
  return m;
}

/** An HTTPS client with a cookie jar (the console) or Basic credentials (the API). */
class Client {
  private cookie = '';
  constructor(
    private readonly base: string,
    private readonly basic?: { user: string; password: string },
  ) {}

  async req(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookie) headers['cookie'] = this.cookie;
    if (this.basic) {
      const b = Buffer.from(`${this.basic.user}:${this.basic.password}`).toString('base64');
      headers['authorization'] = `Basic ${b}`;
    }
    const res = await httpsRequest(this.base + path, CA, { ...init, headers, timeoutMs: 20_000 });
    const set = res.headers['set-cookie'];
    for (const line of Array.isArray(set) ? set : set ? [set] : []) {
      const pair = line.split(';')[0] ?? '';
      const jar = new Map(
        this.cookie
          .split('; ')
          .filter(Boolean)
          .map((c) => [c.slice(0, c.indexOf('=')), c]),
      );
      jar.set(pair.slice(0, pair.indexOf('=')), pair);
      this.cookie = [...jar.values()].join('; ');
    }
    return res;
  }

  json(path: string, method: string, body: unknown): Promise<TlsResponse> {
    return this.req(path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  async login(user: string, password: string): Promise<TlsResponse> {
    const form = await this.req('/login');
    return this.req('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        _csrf: hiddenValue(form.body, '_csrf'),
        user,
        password,
        next: '/',
      }).toString(),
    });
  }
}

/** Every GET route the source declares: API routers (with their mount prefix) and console pages. */
function declaredGetRoutes(): { api: string[]; console: string[] } {
  const api = new Set<string>();
  const pages = new Set<string>();
  const scan = (folder: string, visit: (file: string, text: string) => void): void => {
    for (const e of readdirSync(folder)) {
      const p = join(folder, e);
      if (statSync(p).isDirectory()) scan(p, visit);
      else if (p.endsWith('.ts')) visit(p, readFileSync(p, 'utf8'));
    }
  };
  const gets = (text: string): string[] =>
    [...text.matchAll(/\b(?:router|app)\.get\(\s*'(\/[^']*)'/g)].map((m) => m[1] ?? '');
  scan(installPath('master'), (file, text) => {
    if (/boot|witness/.test(file)) return; // node-facing and witness routes: not the API or console
    const prefix = file.endsWith(join('ha', 'router.ts'))
      ? '/api/v1/ha'
      : file.endsWith(join('snapshots', 'api.ts'))
        ? '/api/v1/snapshots'
        : '/api/v1';
    for (const p of gets(text)) api.add((prefix + p).replace(/\/$/, '') || '/');
  });
  scan(installPath('web-ui'), (_file, text) => {
    for (const p of gets(text)) pages.add(p);
  });
  return { api: [...api].sort(), console: [...pages].sort() };
}

describe('one redaction rule: planted secrets appear in no response and no log line', () => {
  let base = '';
  let restorePointId = '';

  it('the rule: secret keys hidden in a config diff, registered values hidden in any text', () => {
    const d = diffConfig({ ha: { token: TOKEN_1, mode: 'sync' } }, { ha: { token: TOKEN_2, mode: 'async' } });
    assert.deepEqual(d, [
      { key: 'ha.mode', from: 'sync', to: 'async' },
      { key: 'ha.token', from: REDACTED, to: REDACTED },
    ]);
    const r = new Redactor();
    r.addFromConfig({ ha: { token: TOKEN_1 }, db: { url: 'postgres://corral:s3cret-db-pass@db/x' } });
    r.add(TLS_KEY);
    assert.equal(r.text(`token ${TOKEN_1} in a message`), `token ${REDACTED} in a message`);
    assert.ok(!r.text('connect postgres://corral:s3cret-db-pass@db/x failed').includes('s3cret-db-pass'));
    assert.ok(!r.text(`key line: ${TLS_KEY_LINES[0]}`).includes(TLS_KEY_LINES[0] ?? 'x'));
    const e = r.value({ err: new Error(`ipmitool -P ${TOKEN_1}`), headers: { authorization: 'Basic abc' } });
    assert.doesNotMatch(JSON.stringify(e), new RegExp(TOKEN_1));
    assert.doesNotMatch(JSON.stringify(e), /Basic abc/);
  });

  it('first run (token 1): a restore point records the config', async () => {
    const m = await start(TOKEN_1);
    base = `https://127.0.0.1:${m.httpsPort}`;
    const admin = new Client(base, { user: 'admin', password: ADMIN_PASSWORD });
    assert.equal((await admin.json('/api/v1/ha/promote', 'POST', { confirm: true })).status, 200);
    const created = await admin.json('/api/v1/snapshots', 'POST', { name: 'before-token-change' });
    assert.equal(created.status, 201, created.body);
    restorePointId = (JSON.parse(created.body) as { snapshot: { id: string } }).snapshot.id;
    await m.close();
    master = undefined;
  });

  it('second run (token 2): a viewer cannot read the token from the diff, so cannot clone', async () => {
    const m = await start(TOKEN_2);
    base = `https://127.0.0.1:${m.httpsPort}`;
    const admin = new Client(base, { user: 'admin', password: ADMIN_PASSWORD });
    assert.equal((await admin.json('/api/v1/ha/promote', 'POST', { confirm: true })).status, 200);
    const made = await admin.json('/api/v1/users', 'POST', {
      name: 'vera',
      role: 'viewer',
      password: VIEWER_PASSWORD,
    });
    assert.equal(made.status, 201, made.body);

    const viewer = new Client(base, { user: 'vera', password: VIEWER_PASSWORD });
    const diff = await viewer.req(`/api/v1/snapshots/${restorePointId}/diff`);
    assert.equal(diff.status, 200);
    const token = (JSON.parse(diff.body) as { config: { key: string; to: unknown }[] }).config.find(
      (c) => c.key === 'ha.token',
    );
    assert.ok(token, 'the diff still says ha.token changed');
    assert.equal(token.to, REDACTED);
    assert.deepEqual(leaksIn(diff.body), []);
    // What the viewer got is no key to the clone route; the real token still is (the route works).
    const withSeen = await httpsRequest(`${base}/api/v1/ha/clone/info`, CA, {
      headers: { authorization: `Bearer ${String(token.to)}` },
    });
    assert.equal(withSeen.status, 401);
    const withReal = await httpsRequest(`${base}/api/v1/ha/clone/info`, CA, {
      headers: { authorization: `Bearer ${TOKEN_2}` },
    });
    assert.equal(withReal.status, 200, 'the replication route hands config and keys to the token holder');
    assert.ok(withReal.body.includes(TOKEN_2));

    const console = new Client(base);
    assert.equal((await console.login('vera', VIEWER_PASSWORD)).status, 303);
    const page = await console.req(`/snapshots/${restorePointId}`);
    assert.equal(page.status, 200);
    assert.match(page.body, /ha\.token/);
    assert.deepEqual(leaksIn(page.body), []);
  });

  it('planting more: a BMC password, failed sign-ins, errors that echo what was sent', async () => {
    const m = master!;
    m.repos.store.write((j) => {
      m.repos.nodes.insertIn(j, {
        mac: NODE_MAC,
        name: 'node-1',
        seqNo: 1,
        state: 'deployed',
        ip: '127.0.0.9',
      });
    });
    const admin = new Client(base, { user: 'admin', password: ADMIN_PASSWORD });
    const power = await admin.json(`/api/v1/nodes/${NODE_MAC}/power`, 'PUT', {
      driver: 'ipmi',
      address: '127.0.0.1',
      port: 9,
      username: 'root',
      password: BMC_PASSWORD,
    });
    assert.equal(power.status, 200, power.body);
    // ipmitool against a closed port fails: its error lands in the answer, an event and the log.
    await admin.json(`/api/v1/nodes/${NODE_MAC}/power/status`, 'POST', {});
    // Wrong passwords, one of them a secret typed in the wrong box; a token pasted as a user name.
    for (const pw of ['nope-1', TOKEN_2, ADMIN_PASSWORD + 'x']) {
      await new Client(base, { user: 'admin', password: pw }).req('/api/v1/nodes');
    }
    assert.equal((await new Client(base).login(TOKEN_2, 'whatever')).status, 401);
    // Errors that quote their input.
    const echoed = await admin.req(`/api/v1/nodes/${TOKEN_2}`);
    assert.equal(echoed.status, 404);
    assert.match(echoed.body, /NODE_NOT_FOUND/);
    await admin.json('/api/v1/users', 'POST', { name: ADMIN_PASSWORD, role: 'nope', password: TOKEN_2 });
  });

  it('crawls every GET route of the API and the console as admin and as viewer: no planted value', async () => {
    const routes = declaredGetRoutes();
    const fill = (p: string): string =>
      p
        .replace(/\/nodes\/:id/, `/nodes/${NODE_MAC}`)
        .replace(/\/snapshots\/:id/, `/snapshots/${restorePointId}`)
        .replace(/\/exec\/runs\/:id/, '/exec/runs/1')
        .replace(/:[A-Za-z]+/g, 'x');
    assert.ok(routes.api.length >= 20 && routes.console.length >= 15, JSON.stringify(routes));
    const seen: { who: string; path: string; status: number; leaks: string[] }[] = [];
    const api = {
      admin: new Client(base, { user: 'admin', password: ADMIN_PASSWORD }),
      viewer: new Client(base, { user: 'vera', password: VIEWER_PASSWORD }),
    };
    const pages = { admin: new Client(base), viewer: new Client(base) };
    assert.equal((await pages.admin.login('admin', ADMIN_PASSWORD)).status, 303);
    assert.equal((await pages.viewer.login('vera', VIEWER_PASSWORD)).status, 303);
    const streams = /\/stream$|\/feed$|\/clone\/db$|\/file$/; // long-polls and downloads: read below
    for (const who of ['admin', 'viewer'] as const) {
      for (const route of routes.api) {
        if (streams.test(route)) continue;
        const path = fill(route) + (route.endsWith('/diff') ? '?to=current' : '');
        const r = await api[who].req(path);
        seen.push({ who, path, status: r.status, leaks: leaksIn(r.body + JSON.stringify(r.headers)) });
      }
      for (const route of routes.console) {
        if (streams.test(route)) continue;
        const path = fill(route);
        const r = await pages[who].req(path);
        seen.push({ who, path, status: r.status, leaks: leaksIn(r.body + JSON.stringify(r.headers)) });
      }
    }
    const ok = seen.filter((s) => s.status === 200).length;
    console.log(`# crawled ${seen.length} GET answers (${ok} × 200) as admin and viewer`);
    assert.ok(ok >= 40, `enough routes answered 200: ${ok}`);
    // The settings page was among them and shows the token's key, hidden.
    const settings = await pages.admin.req('/settings');
    assert.match(settings.body, /ha\.token/);
    assert.match(settings.body, /\(set; hidden\)/);
    assert.deepEqual(
      seen.filter((s) => s.leaks.length),
      [],
      'no answer holds a planted secret',
    );
  });

  it("the master's log file holds none of the planted values", async () => {
    await master?.close();
    master = undefined;
    const log = readFileSync(logFile, 'utf8');
    console.log(`# log: ${log.split('\n').length} lines searched`);
    assert.ok(log.includes('corral master started'));
    assert.ok(log.includes(REDACTED), 'something was redacted (the log saw secrets and hid them)');
    // Where the last line of defence (the response check) had to act: routes that build text from input.
    const caught = log
      .split('\n')
      .filter((l) => l.includes('a response held a secret value'))
      .map((l) => (JSON.parse(l) as { url: string }).url);
    console.log(`# response check redacted ${caught.length} answers: ${[...new Set(caught)].join(' ')}`);
    const lines = log.split('\n').filter((l) => leaksIn(l).length);
    assert.deepEqual(lines, []);
  });
});
