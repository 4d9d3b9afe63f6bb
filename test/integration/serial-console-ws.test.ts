/**
 * The serial console's WebSocket against the real `corral master` process, with a real serial-like line:
 * socat listens on the node's socket in serialConsole.socketDir and runs `sh` on a pseudo-terminal, whose
 * line discipline turns the byte 0x03 into SIGINT exactly as a node's ttyS0 does. Checks who is refused
 * before the handshake (no cookie, viewer, foreign Origin, no CSRF token, unknown node, other paths),
 * input and output, Ctrl-C, one writer with watchers and the admin's take-over, the size message, and
 * that sessions are audited and their output recorded for replay. The browser and a VM: test/e2e.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { apiOk } from '../helpers/api.js';
import { Browser } from '../helpers/browser.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';
import { requirePeers } from '../helpers/peers.js';

const PASSWORD = 'serial-test-pw';
const MAC = '52:54:00:5e:41:01';
let master: MasterProcess | undefined;
let socat: ChildProcess | undefined;
let dir = '';
let base = '';

before(async () => {
  requirePeers('socat');
  dir = mkdtempSync(join(tmpdir(), 'corral-serial-'));
  const socketDir = join(dir, 'serial');
  mkdirSync(socketDir);
  const sock = join(socketDir, `${MAC.replace(/:/g, '-')}.sock`);
  socat = spawn('socat', [`UNIX-LISTEN:${sock},fork`, 'EXEC:sh -i,pty,setsid,ctty,stderr,sane'], {
    stdio: 'ignore',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PS1: 'serial$ ', HOME: dir },
  });
  await waitFor('socat socket', () => existsSync(sock), 5000);
  const cfg = join(dir, 'corral.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      address: '127.0.0.1',
      http: { port: 0 },
      tftp: { enabled: false },
      console: { https: false, allowInsecureBasicAuth: true },
      serialConsole: { socketDir, recordBytes: 4096 },
      // No node environment build (not what this file tests): a master stopped while the build asked
      // apt took over 10 s to exit on a loaded machine.
      nodeImage: { autoBuild: false },
    }),
  );
  // 30 s to start, not the helper's 15: beside another test file on a loaded machine, this master
  // printed nothing for 15 s (node loading the master's modules while scrypt ran next door).
  master = await startMasterProcess({
    args: ['--config', cfg],
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    timeoutMs: 30_000,
  });
  base = master.url;
  const admin = { url: base, password: PASSWORD };
  await apiOk(admin, 'POST', '/users', { name: 'ops', role: 'operator', password: 'operator-pw-1' });
  await apiOk(admin, 'POST', '/users', { name: 'eve', role: 'viewer', password: 'viewer-pw-12' });
  await apiOk(admin, 'POST', '/users', { name: 'root2', role: 'admin', password: 'admin2-pw-12' });
  const r = await fetch(`${base}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mac: MAC, inventory: { nics: [{ name: 'eth0', mac: MAC, link: 'up' }] } }),
  });
  assert.equal(r.status, 201);
});

after(async () => {
  socat?.kill('SIGTERM');
  try {
    await master?.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Signed {
  cookie: string;
  csrf: string;
}

async function signIn(user: string, password: string): Promise<Signed> {
  const b = new Browser(base);
  assert.equal((await b.login(user, password)).status, 303, `${user} signs in`);
  const csrf = await b.csrfToken();
  return { cookie: `corral_session=${b.cookies.get('corral_session') ?? ''}`, csrf };
}

function wsUrl(mac: string, csrf?: string): string {
  const u = new URL(`/nodes/${mac}/console/ws`, base.replace(/^http/, 'ws'));
  if (csrf !== undefined) u.searchParams.set('csrf', csrf);
  return u.toString();
}

/** The HTTP status a refused handshake got (or 101 when it was accepted). */
function handshake(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const t = setTimeout(() => reject(new Error('no answer to the handshake in 5 s')), 5000);
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(t);
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      clearTimeout(t);
      resolve(101);
      ws.close();
    });
    ws.once('error', () => undefined);
  });
}

/** A connected console: everything received as text, control messages in order. */
class Term {
  output = '';
  controls: Record<string, unknown>[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, binary) => {
      const buf = data as Buffer;
      if (binary) this.output += buf.toString('utf8');
      else this.controls.push(JSON.parse(buf.toString('utf8')) as Record<string, unknown>);
    });
  }

  static open(who: Signed): Promise<Term> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(MAC, who.csrf), { headers: { cookie: who.cookie, origin: base } });
      const term = new Term(ws);
      ws.once('open', () => resolve(term));
      ws.once('error', reject);
    });
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text), { binary: true });
  }

  async waitOutput(re: RegExp, what: string, ms = 8000): Promise<void> {
    await waitFor(what, () => re.test(this.output), ms, 50).catch(() => {
      throw new Error(`${what}: not seen in ${ms} ms; output so far:\n${this.output.slice(-1500)}`);
    });
  }

  async waitControl(
    pred: (c: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<Record<string, unknown>> {
    return waitFor(what, () => this.controls.find(pred), 5000, 50);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

test('the console WebSocket refuses every caller it cannot vouch for, before the handshake', async () => {
  const admin = await signIn('admin', PASSWORD);
  const viewer = await signIn('eve', 'viewer-pw-12');
  const good = { cookie: admin.cookie, origin: base };
  assert.equal(await handshake(wsUrl(MAC, admin.csrf), { origin: base }), 401, 'no cookie');
  assert.equal(
    await handshake(wsUrl(MAC, viewer.csrf), { cookie: viewer.cookie, origin: base }),
    403,
    'viewer role',
  );
  assert.equal(
    await handshake(wsUrl(MAC, admin.csrf), { cookie: admin.cookie, origin: 'https://evil.example' }),
    403,
    'foreign Origin',
  );
  assert.equal(await handshake(wsUrl(MAC, admin.csrf), { cookie: admin.cookie }), 403, 'no Origin');
  assert.equal(await handshake(wsUrl(MAC), good), 403, 'no CSRF token');
  assert.equal(await handshake(wsUrl(MAC, viewer.csrf), good), 403, "another session's CSRF token");
  assert.equal(await handshake(wsUrl('52:54:00:00:00:99', admin.csrf), good), 404, 'unknown node');
  // No other path upgrades at all, with or without credentials.
  assert.equal(await handshake(`${base.replace(/^http/, 'ws')}/api/v1/nodes`, good), 404, 'other path');
  const audit = await apiOk<{ audit: { action: string; outcome: string; actor: string }[] }>(
    { url: base, password: PASSWORD },
    'GET',
    '/audit?limit=50',
  );
  const denied = audit.audit.filter((a) => a.action === 'serial-console.open' && a.outcome === 'denied');
  assert.ok(denied.length >= 6, `refusals audited: ${JSON.stringify(denied)}`);
  assert.ok(denied.some((a) => a.actor === 'eve'));
  // The page is refused to the viewer too, and served with xterm to an operator.
  const eve = new Browser(base);
  await eve.login('eve', 'viewer-pw-12');
  assert.equal((await eve.get(`/nodes/${MAC}/console`)).status, 403);
  const ops = new Browser(base);
  await ops.login('ops', 'operator-pw-1');
  const page = await ops.get(`/nodes/${MAC}/console`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /data-ws-path="\/nodes\/52:54:00:5e:41:01\/console\/ws"/);
  assert.equal((await ops.get('/static/vendor/xterm/xterm.js')).status, 200);
  assert.equal((await ops.get('/static/vendor/xterm-css/xterm.css')).status, 200);
});

test('input and output, Ctrl-C, one writer and watchers, take-over, size; audited and recorded', async () => {
  const admin = await signIn('admin', PASSWORD);
  const ops = await signIn('ops', 'operator-pw-1');
  const admin2 = await signIn('root2', 'admin2-pw-12');
  const a = await Term.open(admin);
  const hello = await a.waitControl((c) => c['type'] === 'hello', 'hello');
  assert.equal(hello['role'], 'writer');
  assert.match(String(hello['source']), /^socket /);

  a.type('echo $((6*7))\r');
  await a.waitOutput(/\r\n42\r\n/, 'the answer 42');

  // Ctrl-C interrupts the foreground command: `sleep 30` ends at once, not after 30 s.
  const t0 = Date.now();
  a.type('sleep 30\r');
  await new Promise((r) => setTimeout(r, 500));
  a.type('\x03');
  // The next command after the shell's new prompt: typed ahead of it, the line can go with the interrupt
  // (on a loaded machine the shell itself may take the SIGINT and drop its input: CI run 8).
  await a.waitOutput(/\^C[\s\S]*serial\$ $/, 'the prompt after Ctrl-C', 10_000);
  a.type('echo after-$((1+1))\r');
  await a.waitOutput(/after-2\r\n/, 'a command after Ctrl-C', 10_000);
  assert.ok(Date.now() - t0 < 15_000, `Ctrl-C took ${Date.now() - t0} ms`);

  // A second viewer watches: it sees the writer's output, and its own bytes do not reach the line.
  const o = await Term.open(ops);
  const oh = await o.waitControl((c) => c['type'] === 'hello', 'watcher hello');
  assert.deepEqual([oh['role'], oh['writer']], ['watcher', 'admin']);
  o.type('echo watcher-$((2+3))\r');
  a.type('echo writer-$((3+4))\r');
  await o.waitOutput(/\r\nwriter-7\r\n/, 'the watcher sees the output');
  assert.doesNotMatch(a.output + o.output, /watcher-5/, "the watcher's input was dropped");

  // The writer's size reaches the watchers (a serial line itself cannot carry it).
  a.ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
  await o.waitControl((c) => c['type'] === 'size' && c['cols'] === 100 && c['rows'] === 30, 'size');
  // An operator cannot take over; another admin can.
  o.ws.send(JSON.stringify({ type: 'takeover' }));
  const b = await Term.open(admin2);
  await b.waitControl((c) => c['type'] === 'hello' && c['role'] === 'watcher', 'second admin watches');
  assert.equal(o.controls.filter((c) => c['type'] === 'role').length, 0, 'operator take-over ignored');
  b.ws.send(JSON.stringify({ type: 'takeover' }));
  await b.waitControl((c) => c['type'] === 'role' && c['role'] === 'writer', 'take-over');
  await a.waitControl(
    (c) => c['type'] === 'role' && c['role'] === 'watcher' && c['writer'] === 'root2',
    'demoted',
  );
  b.type('echo taken-$((4+4))\r');
  await a.waitOutput(/\r\ntaken-8\r\n/, 'the new writer types');
  a.type('echo demoted-$((1+8))\r');
  // When the writer leaves, the longest-waiting viewer writes.
  await b.close();
  await a.waitControl(
    (c) => c['type'] === 'role' && c['role'] === 'writer' && c['writer'] === 'admin',
    'handed back',
  );
  assert.doesNotMatch(a.output, /demoted-9/, "a demoted writer's input was dropped");
  await a.close();
  await o.close();

  // Audited (open and close, per user; a close lands once the master has seen the socket end).
  const users = ['admin', 'ops', 'root2'];
  const auditOk = async (): Promise<{ actor: string; action: string }[]> => {
    const r = await apiOk<{ audit: { action: string; outcome: string; actor: string }[] }>(
      { url: base, password: PASSWORD },
      'GET',
      '/audit?limit=100',
    );
    return r.audit.filter((x) => x.action.startsWith('serial-console.') && x.outcome === 'ok');
  };
  const ok = await waitFor(
    'open and close audited for every user',
    async () => {
      const rows = await auditOk();
      const all = users.every((u) =>
        ['serial-console.open', 'serial-console.close'].every((act) =>
          rows.some((r) => r.actor === u && r.action === act),
        ),
      );
      return all ? rows : undefined;
    },
    5000,
    200,
  ).catch(async () => auditOk());
  for (const user of users) {
    assert.ok(
      ok.some((r) => r.actor === user && r.action === 'serial-console.open'),
      `${user} open audited`,
    );
    assert.ok(
      ok.some((r) => r.actor === user && r.action === 'serial-console.close'),
      `${user} close audited`,
    );
  }
  const browser = new Browser(base);
  await browser.login('admin', PASSWORD);
  const list = await (await browser.get(`/nodes/${MAC}/console`)).text();
  const ids = [...list.matchAll(/console\/recordings\/([0-9TZ]+-[0-9a-f]{8})"/g)].map((m) => m[1]!);
  assert.ok(ids.length >= 3, `recordings listed: ${ids.join(', ')}`);
  let found = false;
  for (const id of ids) {
    const raw = await browser.get(`/nodes/${MAC}/console/recordings/${id}/output`);
    assert.equal(raw.status, 200);
    const text = Buffer.from(await raw.arrayBuffer());
    assert.ok(text.length <= 4096, `recording within recordBytes: ${text.length}`);
    if (/\r\n42\r\n/.test(text.toString('utf8'))) found = true;
  }
  assert.ok(found, 'a recording holds the answer 42');
  assert.equal(
    (await browser.get(`/nodes/${MAC}/console/recordings/..%2f..%2fcorral.db/output`)).status,
    404,
  );
});
