/**
 * The web console against a real Express server on port 0, a temporary SQLite store and fetch as the
 * browser. The clock is injected, so idle timeouts and rate-limit windows are tested without waiting.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hashPassword } from '../../master/auth/passwords.js';
import type { Repos } from '../../master/store/repos.js';
import type { NodeState } from '../../master/store/nodes.js';
import { formatBytes, formatRelative, formatSpeed } from '../../web-ui/format.js';
import { safeNextPath } from '../../web-ui/local-path.js';
import { Browser } from '../helpers/browser.js';
import { startConsoleHarness, type ConsoleHarness } from '../helpers/console.js';

const PASSWORD = 'correct horse battery staple';
const START = Date.parse('2025-03-01T12:00:00Z');
/** For users a test adds itself (the harness hashes its own). */
let passwordHash: string;

/** The console under test: one admin, the clock starting at START. */
function startConsole(
  options: { secureCookies?: boolean; config?: Record<string, unknown> } = {},
): Promise<ConsoleHarness> {
  return startConsoleHarness({ users: [['admin', 'admin', PASSWORD]], startMs: START, ...options });
}

const INVENTORY = {
  cpu: { model: 'QEMU Virtual CPU', count: 2 },
  memoryBytes: 536870912,
  disks: [{ name: 'vda', sizeBytes: 2147483648, serial: 'CORRAL123' }],
  nics: [{ name: 'eth0', mac: '52:54:00:12:34:56', link: 'up' }],
  dmi: { vendor: 'QEMU', product: 'Standard PC', serial: null },
  firmware: 'bios',
};

function addNode(
  repos: Repos,
  n: { mac: string; name: string; seqNo: number; state: NodeState; ip?: string; role?: string },
  inventory: Record<string, unknown> = INVENTORY,
): void {
  repos.store.write((journal) => {
    repos.nodes.insertIn(journal, {
      mac: n.mac,
      name: n.name,
      seqNo: n.seqNo,
      state: n.state,
      ip: n.ip ?? null,
      inventory,
    });
    if (n.role) repos.nodes.patchIn(journal, n.mac, { role: n.role });
  });
}

function addEvent(
  repos: Repos,
  nodeMac: string | null,
  message: string,
  severity: 'info' | 'error' = 'info',
): void {
  repos.events.append({ nodeMac, kind: 'node.test', message, severity, actor: 'test' });
}

/** Attribute values as a browser reads them (Handlebars escapes `=` as &#x3D;). */
function unescapeAttr(value: string): string {
  return value.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
}

/** Rows of the node table, by the name in each row's heading cell. */
function nodeNames(html: string): string[] {
  return [...html.matchAll(/<th scope="row"><a href="[^"]*">([^<]*)<\/a><\/th>/g)].map((m) => m[1] ?? '');
}

before(async () => {
  passwordHash = await hashPassword(PASSWORD);
});

describe('console: login and sessions', () => {
  let h: ConsoleHarness;
  before(async () => {
    h = await startConsole();
  });
  after(() => h.close());

  it('sends unauthenticated page requests to the login page, keeping where they were going', async () => {
    const b = new Browser(h.base);
    const res = await b.get('/');
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/login?next=%2F');
    const deep = await b.get('/nodes?state=ready');
    assert.equal(deep.headers.get('location'), '/login?next=%2Fnodes%3Fstate%3Dready');
  });

  it('sets the security headers and serves static assets with caching', async () => {
    const b = new Browser(h.base);
    const res = await b.get('/login');
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'same-origin');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    assert.match(html, /<label for="user">User name<\/label>/);
    assert.match(html, /<label for="password">Password<\/label>/);
    assert.doesNotMatch(html, /<script>|\sstyle="/, 'no inline script or style: the CSP forbids them');

    const css = await b.get('/static/console.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    assert.match(css.headers.get('cache-control') ?? '', /max-age=86400/);
    assert.equal(css.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await b.get('/static/missing.css')).status, 404);
  });

  it('answers a wrong password with 401 and the form again', async () => {
    const b = new Browser(h.base);
    const res = await b.login('admin', 'wrong');
    assert.equal(res.status, 401);
    const html = await res.text();
    assert.match(html, /role="alert">Wrong user name or password\./);
    assert.match(html, /value="admin"/, 'the user name is kept');
    assert.equal(b.cookies.has('corral_session'), false);
  });

  it('refuses a login post without the login form token (login CSRF)', async () => {
    const b = new Browser(h.base);
    const res = await b.post('/login', { user: 'admin', password: PASSWORD });
    assert.equal(res.status, 403);
    assert.equal(b.cookies.has('corral_session'), false);
  });

  it('signs in with an HttpOnly, SameSite=Strict session cookie and redirects to the dashboard', async () => {
    const b = new Browser(h.base);
    const res = await b.login('admin', PASSWORD);
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('corral_session='));
    assert.ok(cookie);
    assert.match(cookie, /^corral_session=[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\//);
    assert.doesNotMatch(cookie, /Secure/, 'plain HTTP: a Secure cookie would never come back');
    const dash = await b.get('/');
    assert.equal(dash.status, 200);
    assert.match(await dash.text(), /<span>admin<\/span> <span class="role">admin<\/span>/);
  });

  it('goes to a local next path after login, never to another site', async () => {
    const b = new Browser(h.base);
    const res = await b.login('admin', PASSWORD, '/nodes?state=ready');
    assert.equal(res.headers.get('location'), '/nodes?state=ready');
    const evil = await new Browser(h.base).login('admin', PASSWORD, '//evil.example/x');
    assert.equal(evil.headers.get('location'), '/');
    assert.equal(safeNextPath('https://evil.example/'), '/');
    assert.equal(safeNextPath('/\\evil.example'), '/');
    assert.equal(safeNextPath('/logout'), '/');
    assert.equal(safeNextPath('/events?before=10'), '/events?before=10');
  });

  it('checks the CSRF token on logout and ends the session', async () => {
    const b = new Browser(h.base);
    await b.login('admin', PASSWORD);
    const token = await b.csrfToken();

    const missing = await b.post('/logout', {});
    assert.equal(missing.status, 403);
    assert.match(await missing.text(), /Reload the page and submit the form again/);
    const wrong = await b.post('/logout', { _csrf: 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    assert.equal((await b.get('/')).status, 200, 'a refused logout leaves the session alone');

    const ok = await b.post('/logout', { _csrf: token });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/login');
    assert.equal(b.cookies.has('corral_session'), false);
    assert.equal((await b.get('/')).status, 302);
  });

  it('accepts the CSRF token in the X-CSRF-Token header', async () => {
    const b = new Browser(h.base);
    await b.login('admin', PASSWORD);
    const token = await b.csrfToken();
    const session = b.cookies.get('corral_session');
    const res = await b.post('/logout', {}, { 'x-csrf-token': token });
    assert.equal(res.status, 303);
    // The old cookie value no longer opens anything.
    const replay = await fetch(h.base + '/', {
      redirect: 'manual',
      headers: { cookie: `corral_session=${session}` },
    });
    assert.equal(replay.status, 302);
  });

  it('ends a session idle past 30 minutes, and keeps one in use alive', async () => {
    const busy = new Browser(h.base);
    await busy.login('admin', PASSWORD);
    const idle = new Browser(h.base);
    await idle.login('admin', PASSWORD);
    for (let i = 0; i < 3; i++) {
      h.clock.ms += 20 * 60 * 1000;
      assert.equal((await busy.get('/')).status, 200, `busy session alive after ${(i + 1) * 20} min`);
    }
    const res = await idle.get('/nodes');
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/login?next=%2Fnodes&expired=1');
    assert.equal(idle.cookies.has('corral_session'), false, 'the stale cookie is cleared');
    assert.match(await (await idle.get('/login?expired=1')).text(), /Your session ended/);
  });

  it('stores only a hash of the session id', async () => {
    const b = new Browser(h.base);
    await b.login('admin', PASSWORD);
    const id = b.cookies.get('corral_session') ?? '';
    assert.equal(h.repos.sessions.get(id), undefined, 'the cookie value is no key in the table');
    const hashed = createHash('sha256').update(id).digest('base64url');
    assert.equal(h.repos.sessions.get(hashed)?.userName, 'admin', 'its SHA-256 is');
  });
});

describe('console: login rate limit', () => {
  let h: ConsoleHarness;
  before(async () => {
    h = await startConsole({ secureCookies: true });
  });
  after(() => h.close());

  it('refuses with 429 after 10 failures in 5 minutes, even the right password, until the window passes', async () => {
    const b = new Browser(h.base);
    for (let i = 0; i < 10; i++) assert.equal((await b.login('admin', `wrong-${i}`)).status, 401);
    const limited = await b.login('admin', PASSWORD);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.match(await limited.text(), /Too many failed sign-in attempts\. Wait 5 minutes and try again\./);
    const otherUser = await b.login('nobody', 'x');
    assert.equal(otherUser.status, 429, 'the client IP is limited too, whatever the user name');

    h.clock.ms += 5 * 60 * 1000 + 1000;
    const ok = await b.login('admin', PASSWORD);
    assert.equal(ok.status, 303);
    const cookie = ok.headers.getSetCookie().find((c) => c.startsWith('corral_session=')) ?? '';
    assert.match(cookie, /; Secure/, 'secureCookies marks the cookie Secure');
  });
});

/**
 * A server-sent event stream read with deadlines. A read that outlives its deadline is kept for the next
 * call, so no chunk is lost between calls.
 */
class StreamReader {
  private pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** Text read until the predicate holds, the server closes (`closed`) or `ms` pass. */
  async until(predicate: (text: string) => boolean, ms: number): Promise<{ text: string; closed: boolean }> {
    let text = '';
    const deadline = Date.now() + ms;
    while (!predicate(text)) {
      const left = deadline - Date.now();
      if (left <= 0) return { text, closed: false };
      this.pending ??= this.reader.read();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>(
        (resolve) => (timer = setTimeout(() => resolve('timeout'), left)),
      );
      const next = await Promise.race([this.pending, timeout]);
      clearTimeout(timer);
      if (next === 'timeout') return { text, closed: false };
      this.pending = undefined;
      if (next.done) return { text, closed: true };
      text += Buffer.from(next.value).toString();
    }
    return { text, closed: false };
  }
}

async function openStream(b: Browser, base: string): Promise<StreamReader> {
  const res = await fetch(`${base}/monitor/stream`, {
    headers: { cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = new StreamReader(res.body!.getReader());
  assert.match((await reader.until((t) => t.includes('retry:'), 5000)).text, /retry: 5000/);
  return reader;
}

const ENDED = /event: session-ended\ndata: \{"login":"\/login\?expired=1"\}/;

describe('console: live streams end with their session', () => {
  let h: ConsoleHarness;
  before(async () => {
    h = await startConsole();
  });
  after(() => h.close());

  it('closes an open stream within one tick of signing out', async () => {
    const b = new Browser(h.base);
    await b.login('admin', PASSWORD);
    const reader = await openStream(b, h.base);
    assert.equal((await b.post('/logout', { _csrf: await b.csrfToken() })).status, 303);
    const t = Date.now();
    const { text, closed } = await reader.until(() => false, 6000);
    assert.match(text, ENDED);
    assert.ok(closed, 'the server ended the response');
    assert.ok(Date.now() - t < 5000, `closed after ${Date.now() - t} ms`);
  });

  it('does not keep an idle session alive, and closes when it expires', async () => {
    const b = new Browser(h.base);
    await b.login('admin', PASSWORD);
    const reader = await openStream(b, h.base);
    h.clock.ms += 20 * 60 * 1000;
    // Two ticks pass with the session still valid: the stream stays open...
    const early = await reader.until((t) => t.includes('session-ended'), 4500);
    assert.equal(early.closed, false);
    assert.doesNotMatch(early.text, /session-ended/);
    // ...but those checks did not restart the idle clock: 31 minutes after the last request it ends.
    h.clock.ms += 11 * 60 * 1000;
    const late = await reader.until(() => false, 6000);
    assert.match(late.text, ENDED);
    assert.ok(late.closed);
  });

  it('closes when the user is deleted', async () => {
    h.repos.store.write((journal) => h.repos.users.upsertIn(journal, 'temp', passwordHash, 'viewer'));
    const b = new Browser(h.base);
    assert.equal((await b.login('temp', PASSWORD)).status, 303);
    const reader = await openStream(b, h.base);
    h.repos.store.write((journal) => h.repos.users.deleteIn(journal, 'temp'));
    const { text, closed } = await reader.until(() => false, 6000);
    assert.match(text, ENDED);
    assert.ok(closed);
  });
});

describe('console: pages', () => {
  let h: ConsoleHarness;
  let b: Browser;
  before(async () => {
    h = await startConsole();
    b = new Browser(h.base);
    await b.login('admin', PASSWORD);
  });
  after(() => h.close());

  it('shows the empty states before any node exists', async () => {
    assert.match(await (await b.get('/')).text(), /No nodes yet — PXE-boot a machine/);
    assert.match(await (await b.get('/nodes')).text(), /No nodes yet — PXE-boot a machine/);
  });

  it('lists nodes with inventory figures, and filters, searches and sorts on the server', async () => {
    addNode(h.repos, {
      mac: '52:54:00:12:34:56',
      name: 'node-1',
      seqNo: 1,
      state: 'discovered',
      ip: '10.9.0.100',
    });
    addNode(
      h.repos,
      {
        mac: '52:54:00:ab:cd:ef',
        name: 'node-2',
        seqNo: 2,
        state: 'deployed',
        ip: '10.9.0.101',
        role: 'web',
      },
      {
        ...INVENTORY,
        memoryBytes: 4 * 2 ** 30,
        disks: [{ name: 'sda', sizeBytes: 10 ** 12, serial: 'OTHER9' }],
      },
    );
    const html = await (await b.get('/nodes')).text();
    assert.deepEqual(nodeNames(html), ['node-1', 'node-2']);
    assert.match(html, /52:54:00:12:34:56/);
    assert.match(html, /10\.9\.0\.101/);
    assert.match(
      html,
      /<span class="badge state-deployed"><span class="dot" aria-hidden="true"><\/span>deployed<\/span>/,
    );
    assert.match(html, /2 × QEMU Virtual CPU/);
    assert.match(html, /512 MiB/);
    assert.match(html, /931 GiB/);
    assert.match(html, />web</);

    assert.deepEqual(nodeNames(await (await b.get('/nodes?q=corral123')).text()), ['node-1']);
    assert.deepEqual(nodeNames(await (await b.get('/nodes?q=525400abcdef')).text()), ['node-2']);
    assert.deepEqual(nodeNames(await (await b.get('/nodes?state=deployed')).text()), ['node-2']);
    assert.deepEqual(nodeNames(await (await b.get('/nodes?sort=memory&dir=desc')).text()), [
      'node-2',
      'node-1',
    ]);
    assert.deepEqual(nodeNames(await (await b.get('/nodes?sort=name&dir=desc')).text()), [
      'node-2',
      'node-1',
    ]);
    const none = await (await b.get('/nodes?q=no-such-thing')).text();
    assert.match(none, /No nodes match these filters/);
    const sorted = await (await b.get('/nodes?sort=memory')).text();
    const memoryHeading = /<th scope="col" aria-sort="ascending" class="num"><a href="([^"]*)">Memory/.exec(
      sorted,
    );
    assert.ok(memoryHeading?.[1], 'the sorted column is marked ascending');
    assert.equal(
      unescapeAttr(memoryHeading[1]),
      '/nodes?sort=memory&dir=desc',
      'and its link flips the direction',
    );
  });

  it('shows node counts by state and recent events on the dashboard', async () => {
    addEvent(h.repos, '52:54:00:12:34:56', 'node-1 enlisted');
    const html = await (await b.get('/')).text();
    assert.match(html, /<span class="tile-num">1<\/span><span class="badge state-discovered">/);
    assert.match(html, /<span class="tile-num">1<\/span><span class="badge state-deployed">/);
    assert.match(html, /<span class="tile-num">0<\/span><span class="badge state-failed">/);
    assert.match(html, /All 2 nodes/);
    assert.match(html, /node-1 enlisted/);
    assert.match(html, /10\.9\.0\.1/);
    assert.match(html, /server, range 10\.9\.0\.100-10\.9\.0\.199/);
  });

  it('shows a node with its inventory and event timeline, newest first', async () => {
    h.clock.ms += 60_000;
    addEvent(h.repos, '52:54:00:12:34:56', 'disk wipe failed on vda', 'error');
    addEvent(h.repos, '52:54:00:ab:cd:ef', 'event of the other node');
    const res = await b.get('/nodes/52:54:00:12:34:56');
    assert.equal(res.status, 200);
    const html = await res.text();
    for (const text of ['QEMU Virtual CPU', '512 MiB', '2 GiB', 'CORRAL123', 'eth0', 'Standard PC', 'bios']) {
      assert.ok(html.includes(text), `detail page shows ${text}`);
    }
    assert.match(html, /<span class="link link-up"><span class="dot" aria-hidden="true"><\/span>up<\/span>/);
    assert.match(html, /boot interface/);
    const newer = html.indexOf('disk wipe failed on vda');
    const older = html.indexOf('node-1 enlisted');
    assert.ok(newer > 0 && older > newer, 'newest event first');
    assert.ok(!html.includes('event of the other node'));
    assert.equal((await b.get('/nodes/node-1')).status, 200, 'a node is also found by name');
    const missing = await b.get('/nodes/52:54:00:00:00:00');
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /no node with MAC or name/);
  });

  it('pages through the event log with ?before=', async () => {
    for (let i = 0; i < 60; i++) addEvent(h.repos, null, `bulk event ${i}`);
    const first = await (await b.get('/events')).text();
    assert.match(first, /bulk event 59/);
    assert.doesNotMatch(first, /bulk event 9</);
    const older = /href="(\/events\?before[^"]+)">Older/.exec(first)?.[1];
    assert.ok(older, 'an Older link');
    const second = await (await b.get(unescapeAttr(older))).text();
    assert.match(second, /bulk event 9</);
    assert.doesNotMatch(second, /bulk event 59/);
    const perNode = await (await b.get('/events?node=node-1')).text();
    assert.match(perNode, /disk wipe failed on vda/);
    assert.doesNotMatch(perNode, /bulk event/);
  });

  it('escapes what nodes report: a name with <script> is text', async () => {
    addNode(h.repos, {
      mac: '52:54:00:00:00:99',
      name: '<script>alert(1)</script>',
      seqNo: 9,
      state: 'failed',
    });
    for (const path of ['/nodes', '/nodes/52:54:00:00:00:99']) {
      const html = await (await b.get(path)).text();
      assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), `${path} shows the name as text`);
      assert.ok(!html.includes('<script>alert(1)'), `${path} has no live script`);
    }
  });

  it('answers an unknown console path with a 404 page', async () => {
    const res = await b.get('/no/such/page');
    assert.equal(res.status, 404);
    assert.match(await res.text(), /There is no console page at \/no\/such\/page/);
  });
});

describe('console: settings page', () => {
  const TOKEN = 'replication-token-do-not-show-1234';
  let h: ConsoleHarness;
  before(async () => {
    h = await startConsole({
      config: {
        http: { port: 8080, bind: '10.9.0.1' },
        ha: { token: TOKEN, peerUrl: 'http://repl:peer-url-secret@10.9.0.2:8080/' },
      },
    });
    h.repos.store.write((journal) => h.repos.users.upsertIn(journal, 'vera', passwordHash, 'viewer'));
  });
  after(() => h.close());

  it('shows admins the effective config, defaults included, with secrets hidden', async () => {
    const b = new Browser(h.base);
    await b.login('admin', PASSWORD);
    const res = await b.get('/settings');
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<h1>Settings<\/h1>/);
    assert.match(html, /<a[^>]*href="\/settings"/, 'Settings is in the navigation');
    const value = (key: string): string | undefined =>
      new RegExp(
        `<tr data-key="${key.replace(/[.[\]]/g, '\\$&')}"><th scope="row" class="mono">[^<]*</th><td[^>]*>([^<]*)</td>`,
      ).exec(html)?.[1];
    assert.equal(value('http.port'), '8080', 'from the config file');
    assert.equal(value('http.bind'), '[&quot;10.9.0.1&quot;]', 'a list since issue 18 (dual-stack)');
    assert.equal(value('monitor.intervalSeconds'), '10', 'a default filled in');
    assert.equal(value('dhcp.range'), '10.9.0.100-10.9.0.199', 'from a flag');
    assert.equal(value('ha.token'), '(set; hidden)');
    assert.equal(value('ha.peerUrl'), 'http://(set; hidden)@10.9.0.2:8080/');
    assert.ok(!html.includes(TOKEN), 'the replication token is not on the page');
    assert.ok(!html.includes('peer-url-secret'), 'nor the password in a URL');
  });

  it('is for admins only: a viewer gets 403 and no navigation entry', async () => {
    const b = new Browser(h.base);
    await b.login('vera', PASSWORD);
    assert.equal((await b.get('/settings')).status, 403);
    assert.doesNotMatch(await (await b.get('/')).text(), /href="\/settings"/);
  });
});

describe('console: format helpers', () => {
  it('formats bytes, speeds and relative times as admins read them', () => {
    assert.equal(formatBytes(536870912), '512 MiB');
    assert.equal(formatBytes(2147483648), '2 GiB');
    assert.equal(formatBytes(1.5 * 2 ** 40), '1.5 TiB');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(null), '—');
    assert.equal(formatSpeed(1000), '1 Gb/s');
    assert.equal(formatSpeed(100), '100 Mb/s');
    assert.equal(formatSpeed(null), '—');
    const now = Date.parse('2025-03-01T12:00:00Z');
    assert.equal(formatRelative('2025-03-01T11:59:58Z', now), 'just now');
    assert.equal(formatRelative('2025-03-01T11:55:00Z', now), '5 min ago');
    assert.equal(formatRelative('2025-02-27T12:00:00Z', now), '2 d ago');
    assert.equal(formatRelative(null, now), 'never');
  });
});
