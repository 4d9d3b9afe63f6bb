/**
 * The secure front door against a real master started in-process (startMaster) on loopback: HTTPS with
 * the generated self-signed certificate (verified as a browser would after accepting it), plain HTTP
 * still serving boot and the API for nodes, and the console redirected to HTTPS.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Authenticator, HASH_CONCURRENCY } from '../../master/auth/users.js';
import { buildConfig } from '../../master/config.js';
import { startMaster, type Master } from '../../master/master.js';
import { silentLogger } from '../../master/util/logger.js';
import { Browser, hiddenValue } from '../helpers/browser.js';
import { httpsRequest } from '../helpers/tls-client.js';

const PASSWORD = 'security-test-password';
const dirs: string[] = [];
const masters: Master[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-security-'));
  dirs.push(d);
  return d;
}

async function start(dataDir: string, console: Record<string, unknown> = {}): Promise<Master> {
  const config = buildConfig(
    {
      dataDir,
      http: { port: 0, bind: '127.0.0.1' },
      tftp: { enabled: false },
      lb: { enabled: false },
      monitor: { enabled: console['https'] === false, intervalSeconds: 1 },
      console,
    },
    { address: '127.0.0.1' },
  );
  const m = await startMaster(config, { logger: silentLogger(), initialAdminPassword: PASSWORD });
  masters.push(m);
  return m;
}

async function stop(m: Master): Promise<void> {
  masters.splice(masters.indexOf(m), 1);
  await m.close();
}

after(async () => {
  for (const m of masters.splice(0)) await m.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('HTTPS front door', () => {
  it('generates a self-signed certificate on first start, serves the console over HTTPS with Secure cookies, and reuses it', async () => {
    const dataDir = tempDir();
    const m = await start(dataDir);
    assert.ok(m.httpsPort && m.httpsPort > 0, 'an HTTPS port is listening');
    const keyMode = statSync(join(dataDir, 'tls', 'key.pem')).mode & 0o777;
    assert.equal(keyMode, 0o600, 'private key is mode 0600');
    const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'));
    const text = execFileSync(
      'openssl',
      ['x509', '-in', join(dataDir, 'tls', 'cert.pem'), '-noout', '-text'],
      {
        encoding: 'utf8',
      },
    );
    assert.match(text, /IP Address:127\.0\.0\.1/);
    assert.match(text, /id-ecPublicKey|prime256v1/);

    const login = await httpsRequest(`https://127.0.0.1:${m.httpsPort}/login`, ca);
    assert.equal(login.status, 200);
    const loginCookie = String(login.headers['set-cookie']);
    assert.match(loginCookie, /corral_login=[^;]+;.*Secure/);
    assert.match(loginCookie, /HttpOnly/);
    assert.match(loginCookie, /SameSite=Strict/);

    // Sign in over HTTPS: the session cookie is Secure too.
    const token = hiddenValue(login.body, '_csrf');
    const pair = loginCookie.split(';')[0] ?? '';
    const signIn = await httpsRequest(`https://127.0.0.1:${m.httpsPort}/login`, ca, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pair },
      body: new URLSearchParams({ _csrf: token, user: 'admin', password: PASSWORD, next: '/' }).toString(),
    });
    assert.equal(signIn.status, 303);
    const session = [signIn.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('corral_session='));
    assert.ok(session, 'session cookie set');
    assert.match(session, /; HttpOnly/);
    assert.match(session, /; Secure/);
    assert.match(session, /SameSite=Strict/);
    const dash = await httpsRequest(`https://127.0.0.1:${m.httpsPort}/`, ca, {
      headers: { cookie: session.split(';')[0] ?? '' },
    });
    assert.equal(dash.status, 200);
    assert.match(dash.body, /<h1>Dashboard<\/h1>/);

    const first = login.fingerprint256;
    await stop(m);
    const again = await start(dataDir);
    const res = await httpsRequest(`https://127.0.0.1:${again.httpsPort}/login`, ca);
    assert.equal(res.fingerprint256, first, 'the same certificate after a restart');
    await stop(again);
  });

  it('keeps boot and the API on plain HTTP and redirects console pages to HTTPS', async () => {
    const m = await start(tempDir(), { httpsPort: 0 });
    const base = `http://127.0.0.1:${m.httpPort}`;
    const health = await fetch(`${base}/api/v1/health`);
    assert.equal(health.status, 200);
    const ipxe = await fetch(`${base}/boot/ipxe?mac=52:54:00:aa:bb:cc`);
    assert.equal(ipxe.status, 200);
    assert.match(await ipxe.text(), /^#!ipxe/);
    const api = await fetch(`${base}/api/v1/nodes`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
    });
    assert.equal(api.status, 200);
    // httpsPort 0 means "any free port": plain HTTP cannot name it, so it serves the console itself.
    assert.equal((await fetch(`${base}/login`, { redirect: 'manual' })).status, 200);
    await stop(m);
  });

  it('redirects plain-HTTP console paths to the configured HTTPS port, keeping path and method', async () => {
    const dataDir = tempDir();
    // Find a free port for HTTPS by letting a first start pick one, then pin it.
    const probe = await start(dataDir, { httpsPort: 0 });
    const port = probe.httpsPort ?? 0;
    await stop(probe);
    const m = await start(dataDir, { httpsPort: port });
    const base = `http://127.0.0.1:${m.httpPort}`;
    const r = await fetch(`${base}/nodes?state=ready`, { redirect: 'manual' });
    assert.equal(r.status, 308);
    assert.equal(r.headers.get('location'), `https://127.0.0.1:${port}/nodes?state=ready`);
    const post = await fetch(`${base}/login`, { method: 'POST', redirect: 'manual' });
    assert.equal(post.status, 308);
    assert.equal((await fetch(`${base}/api/v1/health`)).status, 200, 'the API is not redirected');
    await stop(m);
  });

  it('serves a user-supplied certificate instead of generating one', async () => {
    const dataDir = tempDir();
    const certFile = join(dataDir, 'mine.crt');
    const keyFile = join(dataDir, 'mine.key');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-subj',
        '/CN=user-supplied',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const m = await start(dataDir, { httpsPort: 0, certFile, keyFile });
    const res = await httpsRequest(`https://127.0.0.1:${m.httpsPort}/login`, readFileSync(certFile));
    assert.equal(res.status, 200);
    assert.throws(() => statSync(join(dataDir, 'tls', 'key.pem')), /ENOENT/, 'nothing generated');
    await stop(m);
  });

  it('refuses a half-configured certificate at start', () => {
    assert.throws(
      () => buildConfig({ dataDir: '/tmp/x', console: { certFile: '/a' } }, { address: '127.0.0.1' }),
      /console: certFile and keyFile must be set together/,
    );
  });
});

describe('roles, users, audit, metrics and TOTP (master in-process, console on plain HTTP)', () => {
  let m: Master;
  let base: string;
  const auth = (user: string, pw: string): Record<string, string> => ({
    authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`,
    'content-type': 'application/json',
  });
  const admin = (): Record<string, string> => auth('admin', PASSWORD);
  const MAC = '52:54:00:10:00:01';

  it('starts with HTTPS off and the monitor sampling every second', async () => {
    m = await start(tempDir(), { https: false });
    base = `http://127.0.0.1:${m.httpPort}`;
    // A node whose recorded IP is loopback, so this test may report as it.
    m.repos.store.write((journal) => {
      m.repos.nodes.insertIn(journal, {
        mac: MAC,
        name: 'n1',
        seqNo: 1,
        state: 'deployed',
        ip: '127.0.0.1',
        inventory: {},
      });
    });
  });

  it('admin creates users; viewers and operators are refused every admin or mutating route by the API', async () => {
    for (const [name, role] of [
      ['vic', 'viewer'],
      ['otto', 'operator'],
    ]) {
      const r = await fetch(`${base}/api/v1/users`, {
        method: 'POST',
        headers: admin(),
        body: JSON.stringify({ name, role, password: `${name}-password-123` }),
      });
      assert.equal(r.status, 201, await r.clone().text());
    }
    const viewer = auth('vic', 'vic-password-123');
    const operator = auth('otto', 'otto-password-123');
    const refused: [string, string, Record<string, string>, unknown?][] = [
      ['PATCH', `/nodes/${MAC}`, viewer, { role: 'web' }],
      ['POST', `/nodes/${MAC}/transition`, viewer, { to: 'retiring' }],
      ['DELETE', `/nodes/${MAC}`, viewer],
      ['DELETE', `/nodes/${MAC}`, operator],
      ['POST', '/users', viewer, { name: 'eve', role: 'admin', password: 'x'.repeat(12) }],
      ['POST', '/users', operator, { name: 'eve', role: 'admin', password: 'x'.repeat(12) }],
      ['PATCH', '/users/admin', operator, { password: 'y'.repeat(12) }],
      ['DELETE', '/users/admin', viewer],
      ['GET', '/users', operator],
      ['GET', '/audit', viewer],
      ['GET', '/changes', operator],
    ];
    for (const [method, path, headers, body] of refused) {
      const r = await fetch(`${base}/api/v1${path}`, {
        method,
        headers,
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      assert.equal(r.status, 403, `${method} ${path} as ${headers.authorization?.slice(0, 12)}`);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
    }
    // Reads stay open to viewers; operators may change nodes.
    assert.equal((await fetch(`${base}/api/v1/nodes`, { headers: viewer })).status, 200);
    const ok = await fetch(`${base}/api/v1/nodes/${MAC}`, {
      method: 'PATCH',
      headers: operator,
      body: JSON.stringify({ role: 'web' }),
    });
    assert.equal(ok.status, 200);
    assert.equal(m.repos.nodes.get(MAC)?.role, 'web');
    // The last admin is kept.
    const last = await fetch(`${base}/api/v1/users/admin`, { method: 'DELETE', headers: admin() });
    assert.equal(last.status, 409);
    assert.equal(((await last.json()) as { error: { code: string } }).error.code, 'LAST_ADMIN');
  });

  it('records every mutation, refused ones included, in an audit log the database keeps append-only', async () => {
    const r = await fetch(`${base}/api/v1/audit?limit=100`, { headers: admin() });
    const { audit } = (await r.json()) as {
      audit: { actor: string; action: string; outcome: string; status: number }[];
    };
    assert.ok(
      audit.some(
        (a) => a.actor === 'vic' && a.action === `DELETE /api/v1/nodes/${MAC}` && a.outcome === 'denied',
      ),
    );
    assert.ok(
      audit.some(
        (a) =>
          a.actor === 'admin' && a.action === 'POST /api/v1/users' && a.outcome === 'ok' && a.status === 201,
      ),
    );
    assert.ok(
      audit.some(
        (a) => a.actor === 'otto' && a.action === `PATCH /api/v1/nodes/${MAC}` && a.outcome === 'ok',
      ),
    );
    assert.ok(
      audit.every((a) => !a.action.startsWith('GET')),
      'reads are not audited',
    );
    // Even a connection of its own to the file (not the store's, which has no such statement) is refused.
    const file = new Database(join(m.config.dataDir, 'corral.db'));
    try {
      assert.throws(() => file.prepare("UPDATE audit SET actor = 'nobody'").run(), /append-only/);
      assert.throws(() => file.prepare('DELETE FROM audit').run(), /append-only/);
    } finally {
      file.close();
    }
  });

  it('accepts node metrics only for a known MAC from its own IP, and streams them live', async () => {
    const url = `${base}/api/v1/nodes/${MAC}/metrics`;
    const body = JSON.stringify({
      cpu: 42.5,
      memUsed: 1e9,
      memTotal: 4e9,
      diskUsed: 1e10,
      diskTotal: 4e10,
      netRx: 100,
      netTx: 50,
      load1: 0.5,
    });
    const unknown = await fetch(`${base}/api/v1/nodes/52:54:00:99:99:99/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(unknown.status, 403);
    m.repos.store.write((journal) => m.repos.nodes.patchIn(journal, MAC, { ip: '10.0.0.9' }));
    const wrongIp = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(wrongIp.status, 403);
    assert.equal(((await wrongIp.json()) as { error: { code: string } }).error.code, 'METRICS_REFUSED');
    m.repos.store.write((journal) => m.repos.nodes.patchIn(journal, MAC, { ip: '127.0.0.1' }));
    const bad = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"cpu":400}',
    });
    assert.equal(bad.status, 400);

    // Live: a signed-in browser's event stream receives the node's sample as it is stored.
    const b = new Browser(base);
    assert.equal((await b.login('admin', PASSWORD)).status, 303);
    const ac = new AbortController();
    const stream = await fetch(`${base}/monitor/stream?source=${encodeURIComponent(MAC)}`, {
      headers: { cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      signal: ac.signal,
    });
    assert.equal(stream.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = stream.body!.getReader();
    const accepted = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(accepted.status, 202);
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes('event: sample') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    ac.abort();
    assert.match(
      text,
      /event: sample\ndata: \{"source":"52:54:00:10:00:01","columns":\{"t":\[\d+\],"cpu":\[42\.5\],"mem":\[25\]/,
    );

    const series = await b.get(`/monitor/series.json?source=${MAC}&range=1h`);
    const data = (await series.json()) as { columns: { cpu: number[] }; tier: string };
    assert.equal(data.tier, 'raw');
    assert.deepEqual(data.columns.cpu, [42.5]);
    // The master's own samples from systeminformation arrive too.
    const masterSeries = (await (await b.get('/monitor/series.json?source=master&range=15m')).json()) as {
      columns: { t: number[]; mem: number[] };
    };
    assert.ok(masterSeries.columns.t.length >= 1, 'the master sampled itself');
    assert.ok((masterSeries.columns.mem[0] ?? 0) > 0);
    const node = await (await b.get(`/nodes/${MAC}`)).text();
    assert.match(node, /data-chart data-source="52:54:00:10:00:01"/);
    assert.match(node, /<dt>CPU<\/dt><dd>42\.5%<\/dd>/, 'the no-JS facts show the latest sample');
    const vendor = await b.get('/static/vendor/uPlot.iife.min.js');
    assert.equal(vendor.status, 200);
    assert.match(vendor.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await b.get('/static/charts.js')).status, 200);
  });

  it('console: users page is admin only, viewer actions are refused on the server, node bulk actions work for operators', async () => {
    const viewer = new Browser(base);
    await viewer.login('vic', 'vic-password-123');
    assert.equal((await viewer.get('/users')).status, 403);
    assert.equal((await viewer.get('/audit')).status, 403);
    const vt = await viewer.csrfToken();
    const denied = await viewer.post('/nodes/bulk', {
      _csrf: vt,
      mac: MAC,
      action: 'to:retiring',
      confirm: 'yes',
    });
    assert.equal(denied.status, 403);
    assert.equal(m.repos.nodes.get(MAC)?.state, 'deployed');
    assert.doesNotMatch(
      await (await viewer.get('/nodes')).text(),
      /action="\/nodes\/bulk"/,
      'no bulk form for viewers',
    );

    const op = new Browser(base);
    await op.login('otto', 'otto-password-123');
    const ot = await op.csrfToken();
    const noCsrf = await op.post('/nodes/bulk', { mac: MAC, action: 'to:retiring', confirm: 'yes' });
    assert.equal(noCsrf.status, 403);
    const unconfirmed = await op.post('/nodes/bulk', { _csrf: ot, mac: MAC, action: 'to:retiring' });
    assert.equal(unconfirmed.status, 303);
    assert.match(unconfirmed.headers.get('location') ?? '', /err=/);
    assert.equal(m.repos.nodes.get(MAC)?.state, 'deployed');
    const moved = await op.post('/nodes/bulk', {
      _csrf: ot,
      mac: MAC,
      action: 'to:retiring',
      confirm: 'yes',
    });
    assert.equal(moved.status, 303);
    assert.match(decodeURIComponent(moved.headers.get('location') ?? ''), /ok=Done for n1/);
    assert.equal(m.repos.nodes.get(MAC)?.state, 'retiring');
    const roleSet = await op.post(`/nodes/${MAC}/update`, { _csrf: ot, name: 'n1', role: 'db' });
    assert.equal(roleSet.status, 303);
    assert.equal(m.repos.nodes.get(MAC)?.role, 'db');
    const opDelete = await op.post(`/nodes/${MAC}/delete`, { _csrf: ot, confirm: 'n1' });
    assert.equal(opDelete.status, 403, 'deleting needs admin');

    const adminB = new Browser(base);
    await adminB.login('admin', PASSWORD);
    const at = await adminB.csrfToken();
    const created = await adminB.post('/users', {
      _csrf: at,
      name: 'carol',
      role: 'viewer',
      password: 'carol-password-1',
    });
    assert.match(decodeURIComponent(created.headers.get('location') ?? ''), /ok=Created user carol/);
    const page = await (await adminB.get('/users')).text();
    assert.match(page, /carol/);
    const auditPage = await (await adminB.get('/audit')).text();
    assert.match(auditPage, /POST \/nodes\/bulk/);
    assert.match(auditPage, /outcome-denied/);
    const logins = m.repos.audit.list({ limit: 200 }).filter((a) => a.action === 'login');
    assert.ok(logins.some((a) => a.actor === 'vic' && a.outcome === 'ok'));
  });

  it('TOTP: enrol from the account page, then sign-in needs the current code, once', async () => {
    const { base32Decode, totpAt } = await import('../../master/auth/totp.js');
    const b = new Browser(base);
    await b.login('carol', 'carol-password-1');
    let t = await b.csrfToken();
    await b.post('/account/totp/start', { _csrf: t });
    const page = await (await b.get('/account')).text();
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page)?.[1];
    assert.ok(secret, 'the key is shown as text');
    assert.match(
      page,
      /otpauth:\/\/totp\/Corral%3Acarol\?secret(=|&#x3D;)[A-Z2-7]+/,
      'the key URI, HTML-escaped',
    );
    t = await b.csrfToken();
    const wrong = await b.post('/account/totp/confirm', { _csrf: t, code: '000000' });
    assert.match(wrong.headers.get('location') ?? '', /err=/);
    const on = await b.post('/account/totp/confirm', {
      _csrf: t,
      code: totpAt(base32Decode(secret), Date.now()),
    });
    assert.match(on.headers.get('location') ?? '', /ok=/);
    assert.ok(m.repos.accounts.totp('carol')?.enabledAt);

    const c = new Browser(base);
    const noCode = await c.login('carol', 'carol-password-1');
    assert.equal(noCode.status, 401);
    const form = await (await c.get('/login')).text();
    const code = totpAt(base32Decode(secret), Date.now());
    const good = await c.post('/login', {
      _csrf: hiddenValue(form, '_csrf'),
      user: 'carol',
      password: 'carol-password-1',
      code,
      next: '/',
    });
    assert.equal(good.status, 303);
    const d = new Browser(base);
    const form2 = await (await d.get('/login')).text();
    const replay = await d.post('/login', {
      _csrf: hiddenValue(form2, '_csrf'),
      user: 'carol',
      password: 'carol-password-1',
      code,
      next: '/',
    });
    assert.equal(replay.status, 401, 'a used code does not work twice');
    await stop(m);
  });
});

/**
 * A GET from a chosen loopback source address (all of 127/8 is loopback on Linux), so one test can play
 * several clients and tell the per-IP limit from the per-name one.
 */
function getFrom(
  localAddress: string,
  url: string,
  headers: Record<string, string>,
  postBody?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const method = postBody === undefined ? 'GET' : 'POST';
    const req = httpRequest(url, { localAddress, headers, method, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(postBody);
  });
}

/** Counts password checks (scrypt) without changing what they do. */
class CountingAuthenticator extends Authenticator {
  checks = 0;
  running = 0;
  peak = 0;
  override async verify(name: string, password: string): ReturnType<Authenticator['verify']> {
    this.checks++;
    this.peak = Math.max(this.peak, ++this.running);
    try {
      return await super.verify(name, password);
    } finally {
      this.running--;
    }
  }
}

async function medianMs(times: number, fn: () => Promise<unknown>): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = process.hrtime.bigint();
    await fn();
    runs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length / 2)] ?? 0;
}

describe('one sign-in rate limit for the console, API Basic auth and password changes', () => {
  let m: Master;
  let base: string;
  const basic = (user: string, pw: string): Record<string, string> => ({
    authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`,
  });

  it('starts a master and creates four users', async () => {
    m = await start(tempDir(), { https: false });
    base = `http://127.0.0.1:${m.httpPort}`;
    for (const name of ['eve', 'fred', 'gina', 'hank']) {
      const r = await fetch(`${base}/api/v1/users`, {
        method: 'POST',
        headers: { ...basic('admin', PASSWORD), 'content-type': 'application/json' },
        body: JSON.stringify({ name, role: 'viewer', password: `${name}-password-123` }),
      });
      assert.equal(r.status, 201);
    }
  });

  it('API Basic: 10 failures per IP and per user name, then 429 AUTH_RATE_LIMITED with Retry-After', async () => {
    const url = `${base}/api/v1/nodes`;
    for (let i = 0; i < 10; i++) {
      const r = await getFrom('127.0.0.2', url, basic('eve', `wrong-${i}`));
      assert.equal(r.status, 401, `failure ${i + 1}`);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'AUTH_FAILED');
    }
    const limited = await getFrom('127.0.0.2', url, basic('eve', 'eve-password-123'));
    assert.equal(limited.status, 429, 'refused even with the right password');
    const body = JSON.parse(limited.body) as {
      error: { code: string; details: { retryAfterSeconds: number } };
    };
    assert.equal(body.error.code, 'AUTH_RATE_LIMITED');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 300, `Retry-After ${retryAfter}`);
    assert.equal(body.error.details.retryAfterSeconds, retryAfter);

    // The name is limited from any address; the address is limited for any name.
    assert.equal((await getFrom('127.0.0.3', url, basic('eve', 'eve-password-123'))).status, 429);
    assert.equal((await getFrom('127.0.0.2', url, basic('admin', PASSWORD))).status, 429);
    assert.equal((await getFrom('127.0.0.3', url, basic('admin', PASSWORD))).status, 200);
  });

  it('the console sign-in shares the API budget: eve is refused there too', async () => {
    const b = new Browser(base);
    const res = await b.login('eve', 'eve-password-123');
    assert.equal(res.status, 429);
    assert.match(await res.text(), /Too many failed sign-in attempts/);
  });

  it('wrong current passwords on My account count too, and a limited change is refused', async () => {
    const b = new Browser(base);
    assert.equal((await b.login('fred', 'fred-password-123')).status, 303);
    const token = await b.csrfToken();
    for (let i = 0; i < 10; i++) {
      const r = await b.post('/account/password', {
        _csrf: token,
        current: `wrong-${i}`,
        password: 'fred-new-password-1',
      });
      assert.match(decodeURIComponent(r.headers.get('location') ?? ''), /current password is wrong/);
    }
    const limited = await b.post('/account/password', {
      _csrf: token,
      current: 'fred-password-123',
      password: 'fred-new-password-1',
    });
    assert.match(decodeURIComponent(limited.headers.get('location') ?? ''), /Too many wrong passwords/);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    // Unchanged, and the API (another address) now refuses fred's name as well.
    const api = await getFrom('127.0.0.4', `${base}/api/v1/nodes`, basic('fred', 'fred-password-123'));
    assert.equal(api.status, 429);
  });

  it('a limited caller costs no password check', async () => {
    const auth = new CountingAuthenticator(m.repos);
    const from = { ip: '192.0.2.7', name: 'eve' };
    for (let i = 0; i < 10; i++) assert.equal((await auth.signIn(from, 'wrong')).outcome, 'failed');
    assert.equal(auth.checks, 10);
    const limited = await auth.signIn(from, 'eve-password-123');
    assert.equal(limited.outcome, 'limited');
    assert.equal(auth.checks, 10, 'no scrypt for a refused attempt');
  });

  it('40 concurrent wrong API passwords from one address: 10 checked (401), 30 refused unchecked (429), then the right one waits too', async () => {
    const url = `${base}/api/v1/nodes`;
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => getFrom('127.0.0.5', url, basic('gina', `wrong-${i}`))),
    );
    const count = (status: number): number => replies.filter((r) => r.status === status).length;
    console.log(`# 40 concurrent wrong API passwords: ${count(401)} × 401, ${count(429)} × 429`);
    assert.equal(count(401), 10, 'only the limit of 10 reached the password check');
    assert.equal(count(429), 30);
    assert.equal((await getFrom('127.0.0.5', url, basic('gina', 'gina-password-123'))).status, 429);
    assert.equal((await getFrom('127.0.0.7', url, basic('gina', 'gina-password-123'))).status, 429);
  });

  it('40 concurrent wrong console sign-ins from one address: 10 × 401, 30 × 429, then the right password is refused too', async () => {
    const form = await getFrom('127.0.0.6', `${base}/login`, {});
    const cookie = String(form.headers['set-cookie']).split(';')[0] ?? '';
    const token = hiddenValue(form.body, '_csrf');
    const post = (password: string): ReturnType<typeof getFrom> =>
      getFrom(
        '127.0.0.6',
        `${base}/login`,
        { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({ _csrf: token, user: 'hank', password, next: '/' }).toString(),
      );
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => post(`wrong-${i}`)));
    const count = (status: number): number => replies.filter((r) => r.status === status).length;
    console.log(`# 40 concurrent wrong console sign-ins: ${count(401)} × 401, ${count(429)} × 429`);
    assert.equal(count(401), 10);
    assert.equal(count(429), 30);
    const right = await post('hank-password-123');
    assert.equal(right.status, 429);
    assert.match(right.body, /Too many failed sign-in attempts/);
  });

  it('concurrent checks are reserved before scrypt: 40 at once cost exactly 10 checks, at most 4 running together', async () => {
    const auth = new CountingAuthenticator(m.repos);
    const from = { ip: '192.0.2.8', name: 'nobody' };
    const results = await Promise.all(Array.from({ length: 40 }, () => auth.signIn(from, 'wrong')));
    assert.equal(results.filter((r) => r.outcome === 'failed').length, 10);
    assert.equal(results.filter((r) => r.outcome === 'limited').length, 30);
    assert.equal(auth.checks, 10);
    assert.ok(auth.peak <= HASH_CONCURRENCY, `peak concurrent checks ${auth.peak}`);
    assert.equal(auth.peak, HASH_CONCURRENCY, 'the slots were used in parallel');
  });

  it('an unknown user name takes as long to refuse as a wrong password (no user enumeration by timing)', async () => {
    const auth = new Authenticator(m.repos);
    await auth.verify('nobody-here', 'warm-up'); // the dummy hash is made once, on first use
    const known = await medianMs(5, () => auth.verify('eve', 'not-her-password'));
    const unknown = await medianMs(5, () => auth.verify('nobody-here', 'not-a-password'));
    console.log(`# verify: wrong password ${known.toFixed(1)} ms, unknown user ${unknown.toFixed(1)} ms`);
    assert.ok(known > 5, 'a wrong password costs a scrypt');
    assert.ok(unknown > known * 0.4, `unknown user ${unknown} ms vs known ${known} ms`);
    await stop(m);
  });
});
