/**
 * Load balancing end to end, in network namespaces, against the real HAProxy run by the real
 * `corral master`: three backend hosts with a small HTTP service, a client namespace with a real client
 * (test/helpers/lb-client, one connection per request) and wrk. Checks: requests spread over all three;
 * a stopped backend leaves within fall × interval and no request fails after that; a restarted one
 * returns within rise × interval; drain from the console stops new connections to it and survives a
 * reload in HAProxy's own state (server-state-file, not Corral's repair); reloads under wrk load lose nothing; a killed HAProxy is started again; a retired node leaves.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ServiceView } from '../../master/lb/load-balancer.js';
import { runtimeCommand } from '../../master/lb/runtime-api.js';
import { Browser, hiddenValue } from '../helpers/browser.js';
import { CLIENT, LbLab, PASSWORD } from '../helpers/lb-lab.js';
import { CLI as CLI_PATH } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';

const INTERVAL_MS = 500;
const RISE = 2;
const FALL = 2;
// Slack on top of fall × interval: Corral's poll (250 ms), one check timeout-free round, scheduling.
const SLACK_MS = 1500;
const VIP = 'http://10.88.0.1:8080/';

interface ClientRun {
  done: Promise<{ t: number; ok: boolean; what: string }[]>;
}

describe('load balancing through Corral-managed HAProxy (namespaces)', { timeout: 180_000 }, () => {
  let lab: LbLab;

  before(async () => {
    lab = await LbLab.start({ pollMs: 250 });
  });
  after(async () => {
    if (lab) {
      if (process.env['LB_TEST_KEEP_LOG']) console.log(lab.master.logs().slice(-20_000));
      await lab.destroy();
    }
  });

  /** HAProxy's runtime API, straight to its socket (Unix sockets are not bound to a network namespace). */
  const haproxyCommand = async (cmd: string): Promise<string> => {
    const answer = await runtimeCommand(join(lab.dir, 'data', 'haproxy', 'admin.sock'), cmd);
    assert.equal(answer.trim(), cmd.startsWith('show') ? answer.trim() : '', `HAProxy refused '${cmd}'`);
    return answer;
  };
  /** `show servers state` of svc_web by server name, columns by their header names. */
  const haproxyServers = async (): Promise<Map<string, Record<string, string>>> => {
    const lines = (await haproxyCommand('show servers state svc_web')).split('\n');
    const names = (lines.find((l) => l.startsWith('# ')) ?? '').slice(2).split(' ');
    const rows = lines.filter((l) => /^\d+ /.test(l)).map((l) => l.split(' '));
    return new Map(rows.map((c) => [c[3] ?? '', Object.fromEntries(names.map((n, i) => [n, c[i] ?? '']))]));
  };
  /** How often Corral's poll has put an admin state back on `server` (its log line). */
  const repairs = (server: string): number =>
    lab.master
      .logs()
      .split('\n')
      .filter((l) => l.includes('"restoring admin state"') && l.includes(`"${server}"`)).length;
  const service = async (): Promise<ServiceView> =>
    (await lab.api<{ service: ServiceView }>('GET', '/services/web')).service;
  const health = async (name: string): Promise<string | undefined> =>
    (await service()).servers.find((s) => s.name === name)?.health;

  function runClient(durationMs: number, concurrency = 4): ClientRun {
    const child = lab.net.spawnIn(lab.client.ns, [
      'node',
      CLIENT,
      VIP,
      String(durationMs),
      String(concurrency),
    ]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<{ t: number; ok: boolean; what: string }[]>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('client did not finish')), durationMs + 15_000);
      child.once('exit', () => {
        clearTimeout(t);
        if (!out.includes('DONE')) return reject(new Error(`client failed: ${out.slice(-500)}`));
        resolve(
          out
            .split('\n')
            .filter((l) => /^\d+ (OK|ERR) /.test(l))
            .map((l) => {
              const [t, kind, what] = l.split(' ');
              return { t: Number(t), ok: kind === 'OK', what: what ?? '' };
            }),
        );
      });
    });
    return { done };
  }

  const countBy = (rows: { ok: boolean; what: string }[]): Record<string, number> => {
    const c: Record<string, number> = {};
    for (const r of rows) c[r.ok ? r.what : `ERR:${r.what}`] = (c[r.ok ? r.what : `ERR:${r.what}`] ?? 0) + 1;
    return c;
  };

  it('declares a service over the API; HAProxy runs and all three backends come up', async () => {
    const created = await lab.api<{ service: ServiceView }>('POST', '/services', {
      name: 'web',
      port: 8080,
      protocol: 'http',
      role: 'app',
      backendPort: 8000,
      check: { type: 'http', path: '/healthz', expectStatus: 200 },
      intervalMs: INTERVAL_MS,
      rise: RISE,
      fall: FALL,
    });
    assert.deepEqual(
      created.service.servers.map((s) => `${s.name}=${s.address}:${s.port}`),
      ['b1=10.88.0.11:8000', 'b2=10.88.0.12:8000', 'b3=10.88.0.13:8000'],
    );
    const status = await lab.api<{ haproxy: { running: boolean; masterPid: number } }>('GET', '/lb');
    assert.equal(status.haproxy.running, true);
    await waitFor('three servers up', async () => (await service()).up === 3, 10_000, 200);
    assert.equal((await service()).health, 'healthy');
  });

  it('spreads requests over all three backends', async () => {
    const rows = await runClient(2000).done;
    const c = countBy(rows);
    console.log(`# spread over 2 s: ${JSON.stringify(c)}`);
    assert.equal(rows.filter((r) => !r.ok).length, 0, JSON.stringify(c));
    for (const b of ['b1', 'b2', 'b3'])
      assert.ok((c[b] ?? 0) > rows.length / 6, `${b} got ${c[b] ?? 0} of ${rows.length}`);
  });

  it('a stopped backend leaves within fall × interval; no request fails after; it returns within rise × interval', async () => {
    const b2 = lab.backends[1]!;
    const client = runClient(9000);
    await new Promise((r) => setTimeout(r, 1000));
    const stoppedAt = Date.now();
    await lab.stopBackend(b2);
    const downAt = await waitFor(
      'b2 down',
      async () => ((await health('b2')) === 'down' ? Date.now() : undefined),
      10_000,
      50,
    );
    const removalMs = downAt - stoppedAt;
    await new Promise((r) => setTimeout(r, 2500));
    // Measured from the moment the restarted service listens (its Node start-up is not HAProxy's delay).
    await lab.startBackend(b2);
    const startedAt = Date.now();
    const upAt = await waitFor(
      'b2 up',
      async () => ((await health('b2')) === 'up' ? Date.now() : undefined),
      10_000,
      50,
    );
    const returnMs = upAt - startedAt;
    const rows = await client.done;

    const beforeRemoval = rows.filter((r) => r.t >= stoppedAt && r.t < downAt);
    const afterRemoval = rows.filter((r) => r.t >= downAt);
    const failedAfter = afterRemoval.filter((r) => !r.ok);
    console.log(
      `# b2 stopped → DOWN in ${removalMs} ms (fall × interval = ${FALL * INTERVAL_MS} ms); restarted → UP in ${returnMs} ms (rise × interval = ${RISE * INTERVAL_MS} ms)`,
    );
    console.log(
      `# client: ${rows.length} requests; between stop and removal ${JSON.stringify(countBy(beforeRemoval))}; after removal ${JSON.stringify(countBy(afterRemoval))}`,
    );
    assert.ok(removalMs <= FALL * INTERVAL_MS + SLACK_MS, `removal took ${removalMs} ms`);
    assert.ok(returnMs <= RISE * INTERVAL_MS + SLACK_MS, `return took ${returnMs} ms`);
    assert.equal(failedAfter.length, 0, `failed after removal: ${JSON.stringify(countBy(failedAfter))}`);
    assert.ok(afterRemoval.length > 100, 'the client kept sending after the removal');
    // b2 served nothing while it was down, and serves again after it came back.
    assert.equal(rows.filter((r) => r.what === 'b2' && r.t > downAt + 100 && r.t < startedAt).length, 0);
    assert.ok(
      rows.some((r) => r.what === 'b2' && r.t > upAt),
      'b2 serves again after it came back',
    );

    const events = await lab.api<{ events: { kind: string; message: string }[] }>(
      'GET',
      '/events?node=b2&limit=20',
    );
    const kinds = events.events.map((e) => e.kind);
    assert.ok(kinds.includes('lb.server.down'), `events: ${kinds.join(', ')}`);
    assert.ok(kinds.includes('lb.server.up'), `events: ${kinds.join(', ')}`);
    assert.ok(kinds.indexOf('lb.server.up') < kinds.indexOf('lb.server.down'), 'newest first: up after down');
  });

  it('drain from the console stops new connections to that node, without a reload, and survives a reload', async () => {
    const browser = new Browser(lab.url);
    assert.equal((await browser.login('admin', PASSWORD)).status, 303);
    const list = await (await browser.get('/services')).text();
    assert.match(list, /href="\/services\/web">web<\/a>[\s\S]*?3 \/ 3[\s\S]*?data-health="healthy"/);
    const page = await browser.get('/services/web');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /data-server="b3"/);
    const workerBefore = (await lab.api<{ haproxy: { workerPid: number; reloads: number } }>('GET', '/lb'))
      .haproxy;
    const b3 = lab.backends[2]!;
    const posted = await browser.post(`/services/web/servers/${encodeURIComponent(b3.mac)}/state`, {
      _csrf: hiddenValue(html, '_csrf'),
      state: 'drain',
    });
    assert.equal(posted.status, 303);
    const drainedAt = Date.now();
    const s = (await service()).servers.find((x) => x.name === 'b3')!;
    assert.equal(s.admin, 'drain');
    assert.equal(s.status, 'DRAIN', 'HAProxy itself reports DRAIN');
    const workerAfter = (await lab.api<{ haproxy: { workerPid: number; reloads: number } }>('GET', '/lb'))
      .haproxy;
    assert.equal(
      workerAfter.workerPid,
      workerBefore.workerPid,
      'drain went through the runtime API, not a reload',
    );

    const rows = await runClient(1500).done;
    const c = countBy(rows.filter((r) => r.t > drainedAt));
    console.log(`# after drain of b3: ${JSON.stringify(c)}`);
    assert.equal(c['b3'] ?? 0, 0, 'no new connection reached the drained node');
    assert.ok((c['b1'] ?? 0) > 0 && (c['b2'] ?? 0) > 0);
    assert.equal(rows.filter((r) => !r.ok).length, 0);

    // A reload keeps it drained through HAProxy's own server-state-file. Corral's poll puts back a drain
    // HAProxy lost (and does so right after its reload), so "DRAIN afterwards" alone would prove nothing:
    // ask HAProxy itself, and check that Corral found nothing to repair.
    // A runtime-only weight on b1 is a marker Corral never sets nor repairs: only the state file keeps it.
    await haproxyCommand('set server svc_web/b1 weight 7');
    const repairsBefore = repairs('svc_web/b3');
    const reloaded = await lab.api<{ haproxy: { workerPid: number } }>('POST', '/lb/reload');
    assert.notEqual(reloaded.haproxy.workerPid, workerBefore.workerPid);
    const state = await haproxyServers();
    assert.equal(repairs('svc_web/b3'), repairsBefore, 'Corral did not have to put the drain back');
    assert.equal(state.get('b3')?.['srv_admin_state'], '8', 'the new worker has the drain (0x08)');
    assert.equal(state.get('b1')?.['srv_uweight'], '7', 'the new worker loaded the runtime weight');
    assert.equal((await service()).servers.find((x) => x.name === 'b3')?.status, 'DRAIN');
    // And the repair check above is live: a drain lost behind Corral's back is put back, and logged.
    await haproxyCommand('set server svc_web/b3 state ready');
    await waitFor('Corral restores the drain', () => repairs('svc_web/b3') > repairsBefore, 5000, 50);
    await waitFor(
      'HAProxy drains b3 again',
      async () => (await haproxyServers()).get('b3')?.['srv_admin_state'] === '8',
      5000,
      50,
    );
    await haproxyCommand('set server svc_web/b1 weight 1');
    const consolePage = await (await browser.get('/services/web')).text();
    assert.match(consolePage, /data-server="b3"[\s\S]*?data-admin="drain"/);
  });

  /** wrk in the client namespace for 6 s while Corral reloads HAProxy 4 times; returns wrk's report. */
  async function wrkDuringReloads(extra: string[]): Promise<{ out: string; pids: number[] }> {
    const wrk = spawn('ip', ['netns', 'exec', lab.client.ns, 'wrk', '-t2', '-c16', '-d6s', ...extra, VIP], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    wrk.stdout.on('data', (d: Buffer) => (out += d.toString()));
    wrk.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        wrk.kill('SIGKILL');
        reject(new Error('wrk did not finish'));
      }, 20_000);
      wrk.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
    const pids: number[] = [];
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 4; i++) {
      pids.push((await lab.api<{ haproxy: { workerPid: number } }>('POST', '/lb/reload')).haproxy.workerPid);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await exited;
    return { out, pids };
  }

  const wrkFigures = (
    out: string,
  ): { requests: number; connect: number; read: number; write: number; timeout: number; non2xx: number } => {
    const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
      connect: Number(e?.[1] ?? 0),
      read: Number(e?.[2] ?? 0),
      write: Number(e?.[3] ?? 0),
      timeout: Number(e?.[4] ?? 0),
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    };
  };

  it('reloads under wrk load (a connection per request) drop no connection and fail no request', async () => {
    await lab.api('POST', '/services/web/servers/b3/state', { state: 'ready' });
    const { out, pids } = await wrkDuringReloads(['-H', 'Connection: close']);
    const f = wrkFigures(out);
    console.log(
      `# wrk, Connection: close, during 4 reloads (workers ${pids.join(', ')}): ${JSON.stringify(f)}`,
    );
    assert.equal(new Set(pids).size, 4, 'each reload started a new worker');
    assert.ok(f.requests > 500, `wrk made ${f.requests} requests`);
    assert.deepEqual(f, { ...f, connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 }, out);
  });

  it('reloads under keep-alive wrk load: no refused connection, no failed answer; idle-close races counted', async () => {
    const { out, pids } = await wrkDuringReloads([]);
    const f = wrkFigures(out);
    console.log(`# wrk, keep-alive, during 4 reloads (workers ${pids.join(', ')}): ${JSON.stringify(f)}`);
    assert.equal(new Set(pids).size, 4);
    assert.equal(f.connect + f.write + f.timeout + f.non2xx, 0, out);
    // HAProxy 2.6 closes the old worker's idle keep-alive connections at a reload; a request wrk sent
    // on one at that instant reads a close (idle-close-on-response fixes this from 2.7). Each reload
    // can hit each of the 16 connections at most once.
    assert.ok(f.read <= 16 * 4, `read errors ${f.read}`);
  });

  it('the CLI lists and shows services through the API', async () => {
    const cli = (args: string[]): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn('node', [CLI_PATH, 'service', ...args, '--url', lab.url], {
          env: { ...process.env, CORRAL_PASSWORD: PASSWORD },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', (code) => {
          clearTimeout(t);
          resolve({ code, out });
        });
      });
    const list = await cli(['list']);
    assert.equal(list.code, 0, list.out);
    assert.match(list.out, /^web\s+10\.88\.0\.1:8080\s+http\s+role app\s+3\/3 up\s+healthy$/m);
    const show = await cli(['show', 'web']);
    assert.match(show.out, /^b2\s+10\.88\.0\.12:8000\s+up\s+UP\s+L7OK 200\s+ready$/m);
    const drain = await cli(['drain', 'web', 'b2']);
    assert.equal(drain.out, 'b2 in web: drain\n');
    await lab.api('POST', '/services/web/servers/b2/state', { state: 'ready' });
    const missing = await cli(['show', 'nope']);
    assert.equal(missing.code, 1);
    assert.equal(missing.out, "corral: no service named 'nope'\n");
  });

  it('a killed HAProxy is started again by Corral and serves again', async () => {
    const before = (await lab.api<{ haproxy: { masterPid: number; restarts: number } }>('GET', '/lb'))
      .haproxy;
    process.kill(before.masterPid, 'SIGKILL');
    const after = await waitFor(
      'haproxy restarted',
      async () => {
        const h = (
          await lab.api<{ haproxy: { running: boolean; masterPid: number; restarts: number } }>('GET', '/lb')
        ).haproxy;
        return h.running && h.masterPid !== before.masterPid && h.restarts === before.restarts + 1
          ? h
          : undefined;
      },
      15_000,
      200,
    );
    assert.notEqual(after.masterPid, before.masterPid);
    await waitFor('three servers up again', async () => (await service()).up === 3, 10_000, 200);
    const rows = await runClient(1000, 2).done;
    assert.ok(rows.length > 20 && rows.every((r) => r.ok), JSON.stringify(countBy(rows)));
    const events = await lab.api<{ events: { kind: string }[] }>('GET', '/events?kind=lb.haproxy.restarted');
    assert.equal(events.events.length, 1);
  });

  it('membership follows the inventory: a retiring node leaves the backend', async () => {
    const reloads = (await lab.api<{ haproxy: { reloads: number } }>('GET', '/lb')).haproxy.reloads;
    await lab.api('POST', '/nodes/b1/transition', { to: 'retiring', reason: 'lb test' });
    // Corral notices the change journal moved, re-renders without b1 and reloads HAProxy.
    await waitFor(
      'a reload without b1',
      async () => (await lab.api<{ haproxy: { reloads: number } }>('GET', '/lb')).haproxy.reloads > reloads,
      5000,
      100,
    );
    assert.ok((await service()).servers.every((s) => s.name !== 'b1'));
    const rows = await runClient(1000, 2).done;
    const c = countBy(rows);
    assert.equal(c['b1'] ?? 0, 0, JSON.stringify(c));
    assert.ok(
      rows.every((r) => r.ok),
      JSON.stringify(c),
    );
    const notMember = await fetch(`${lab.url}/api/v1/services/web/servers/b1/state`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ state: 'drain' }),
    });
    assert.equal(notMember.status, 409);
    assert.equal(((await notMember.json()) as { error: { code: string } }).error.code, 'LB_NOT_MEMBER');
  });
});
