/**
 * The secure front door against a real master started in-process (startMaster) on loopback: HTTPS with
 * the generated self-signed certificate (verified as a browser would after accepting it), plain HTTP
 * still serving boot and the API for nodes, and the console redirected to HTTPS.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { startMaster, type Master } from '../../master/master.js';
import { silentLogger } from '../../master/util/logger.js';
import { hiddenValue } from '../helpers/browser.js';
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
      monitor: { enabled: false },
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
    const text = execFileSync('openssl', ['x509', '-in', join(dataDir, 'tls', 'cert.pem'), '-noout', '-text'], {
      encoding: 'utf8',
    });
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
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=user-supplied',
      '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
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
