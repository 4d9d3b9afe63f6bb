/**
 * Replication between two real `corral master` processes on loopback (no keepalived: roles by operator
 * confirmation, POST /api/v1/ha/promote): `corral clone` of a primary under a steady write load gives a
 * consistent copy; the backup follows with every acknowledged write; a primary that went on alone
 * (async, no witness) and died has its unreplicated tail discarded when it returns — recorded as an
 * event on the new primary and kept in its ha_discarded table — and then converges.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/netns.js';
import { startMasterProcess, basic, CLI, type MasterProcess } from '../helpers/master-process.js';
import { Browser, hiddenValue } from '../helpers/browser.js';
import Database from 'better-sqlite3';
import { openStore } from '../../master/store/db.js';
import { silentLogger } from '../../master/util/logger.js';

const TOKEN = 'replication-test-token-42';
const PASSWORD = 'replication-test-pw';
const auth = basic('admin', PASSWORD);

/** The fields these tests read from /ha/status, /ha/promote, /nodes and /events answers. */
interface Body {
  role: string;
  epoch: number;
  lastSeq: number;
  mode: string;
  follower: { connected: boolean; lagChanges: number } | null;
  nodes: { mac: string }[];
  events: { message: string; data: { count: number } }[];
}

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Body }> {
  const res = await fetch(url, {
    ...init,
    headers: { ...auth, 'content-type': 'application/json', ...(init.headers ?? {}) },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Body };
}

async function enlist(url: string, mac: string): Promise<number> {
  const r = await json(`${url}/api/v1/enlist`, {
    method: 'POST',
    body: JSON.stringify({ mac, inventory: {} }),
  });
  return r.status;
}

function mac(prefix: string, n: number): string {
  return `${prefix}:00:00:00:${Math.floor(n / 256)
    .toString(16)
    .padStart(2, '0')}:${(n % 256).toString(16).padStart(2, '0')}`;
}

describe('HA replication, clone and tail discard (loopback, real master processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-repl-'));
  const port1 = 21000 + Math.floor(Math.random() * 4000);
  const port2 = port1 + 1;
  const url1 = `http://127.0.0.1:${port1}`;
  const url2 = `http://127.0.0.1:${port2}`;
  const d1 = join(dir, 'm1');
  const d2 = join(dir, 'm2');
  let m1: MasterProcess | undefined;
  let m2: MasterProcess | undefined;
  const start = (configPath: string) =>
    startMasterProcess({
      args: ['--config', configPath],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      timeoutMs: 30_000,
    });

  before(async () => {
    writeFileSync(
      join(dir, 'm1.json'),
      JSON.stringify({
        dataDir: d1,
        address: '127.0.0.1',
        http: { port: port1, bind: '127.0.0.1' },
        tftp: { enabled: false },
        console: { httpsPort: 0 },
        // The write load enlists new MACs as fast as it can from one address: lift the new-MAC limit.
        nodes: {
          enlistRate: {
            perIpBurst: 100_000,
            perIpPerMinute: 1_000_000,
            globalBurst: 1_000_000,
            globalPerMinute: 10_000_000,
          },
        },
        ha: {
          enabled: true,
          token: TOKEN,
          peerUrl: url2,
          syncTimeoutMs: 1000,
          followerTimeoutMs: 2000,
          fileSyncSeconds: 1,
        },
      }),
    );
    m1 = await start(join(dir, 'm1.json'));
    const p = await json(`${url1}/api/v1/ha/promote`, {
      method: 'POST',
      body: JSON.stringify({ confirm: true }),
    });
    assert.equal(p.status, 200);
    assert.equal(p.body.role, 'primary');
  });
  after(async () => {
    await m1?.stop('SIGKILL').catch(() => undefined);
    await m2?.stop('SIGKILL').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('clones a busy primary consistently, then follows it with every acknowledged write', async () => {
    let stop = false;
    const acked: string[] = [];
    const load = (async () => {
      for (let n = 0; !stop; n++) if ((await enlist(url1, mac('0a', n))) < 300) acked.push(mac('0a', n));
    })();
    await waitFor('load running', () => acked.length >= 20, 20_000);
    // A deployment's waiting SSH host key and the host-key pins, as deploy and remote/host-keys.ts leave them:
    // the backup needs them to serve an installer's plan and to trust the nodes after a fail-over.
    const nodeKey = (d: string, mac: string) =>
      join(d, 'sharedroot', 'nodes', mac, 'deploy', 'ssh_host_ed25519_key');
    const plantKey = (mac: string) => {
      mkdirSync(join(nodeKey(d1, mac), '..'), { recursive: true, mode: 0o700 });
      writeFileSync(nodeKey(d1, mac), `PRIVATE host key of ${mac}\n`, { mode: 0o600 });
    };
    plantKey('52-54-00-0a-ff-01');
    mkdirSync(join(d1, 'ssh'), { recursive: true, mode: 0o700 });
    writeFileSync(join(d1, 'ssh', 'known_nodes'), '52:54:00:0a:ff:01 ssh-ed25519 AAAA\n', { mode: 0o600 });
    const out = execFileSync(
      'node',
      [
        CLI,
        'clone',
        '--from',
        url1,
        '--token',
        TOKEN,
        '--data-dir',
        d2,
        '--address',
        '127.0.0.1',
        '--http-port',
        String(port2),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.match(out, /clone complete/);
    assert.equal(
      readFileSync(nodeKey(d2, '52-54-00-0a-ff-01'), 'utf8'),
      'PRIVATE host key of 52-54-00-0a-ff-01\n',
    );
    assert.equal(statSync(nodeKey(d2, '52-54-00-0a-ff-01')).mode & 0o777, 0o600, 'private on the clone');
    assert.equal(
      readFileSync(join(d2, 'ssh', 'known_nodes'), 'utf8'),
      readFileSync(join(d1, 'ssh', 'known_nodes'), 'utf8'),
    );
    // The copy taken under load is a consistent snapshot: intact, and every journaled node row is there.
    const copy = openStore({ path: join(d2, 'corral.db'), logger: silentLogger() });
    assert.equal(copy.integrityCheck(), 'ok');
    const seq = copy.lastChangeSeq();
    copy.close();
    const file = new Database(join(d2, 'corral.db'), { readonly: true });
    const nodes = file
      .prepare("SELECT COUNT(DISTINCT entity_key) AS n FROM changes WHERE entity = 'nodes'")
      .get() as { n: number };
    const rows = file.prepare('SELECT COUNT(*) AS n FROM nodes').get() as { n: number };
    file.close();
    assert.ok(
      seq > 0 && rows.n === nodes.n,
      `clone at seq ${seq}: ${rows.n} node rows for ${nodes.n} journaled nodes`,
    );

    m2 = await start(join(d2, 'corral.json'));
    const s2 = await waitFor(
      'm2 follows',
      async () => {
        const s = (await json(`${url2}/api/v1/ha/status`)).body;
        return s?.follower?.connected ? s : undefined;
      },
      20_000,
    );
    assert.equal(s2.role, 'backup');
    // A deploy started after the clone: its key reaches the running backup by the periodic file sync.
    plantKey('52-54-00-0a-ff-02');
    await waitFor(
      'the new host key on m2',
      () => existsSync(nodeKey(d2, '52-54-00-0a-ff-02')) || undefined,
      15_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await load;
    // m1 wrote alone (async, recorded) while the clone ran; with m2 following it is synchronous again.
    const st1 = await waitFor(
      'sync restored',
      async () => {
        const s = (await json(`${url1}/api/v1/ha/status`)).body;
        return s.mode === 'sync' ? s : undefined;
      },
      10_000,
    );
    const degraded = (await json(`${url1}/api/v1/events?kind=ha.replication-degraded`)).body.events;
    assert.ok(degraded.length >= 1, 'the async period is in the event log');
    await waitFor(
      'm2 caught up',
      async () => {
        const s = (await json(`${url2}/api/v1/ha/status`)).body;
        return s.lastSeq === st1.lastSeq ? s : undefined;
      },
      10_000,
    );
    const on2 = new Set(
      ((await json(`${url2}/api/v1/nodes`)).body.nodes as { mac: string }[]).map((n) => n.mac),
    );
    assert.deepEqual(
      acked.filter((m) => !on2.has(m)),
      [],
      'every acknowledged write is on the backup',
    );
    assert.equal((await json(`${url2}/api/v1/ha/status`)).body.follower?.lagChanges, 0);
    // The console shows role and lag: a backup serves reads, including sign-in (sessions are local).
    const b = new Browser(url2);
    await b.login('admin', PASSWORD);
    const page = await (await b.get('/ha')).text();
    assert.match(page, /Role<\/dt><dd><strong>backup<\/strong>/);
    assert.match(page, /data-testid="ha-lag">0 change\(s\), 0\.0 s/);
    // ... but no console write: the API's gate guards the console too.
    const refused = await b.post(`/nodes/${encodeURIComponent(acked[0]!)}/update`, {
      _csrf: hiddenValue(page, '_csrf'),
      name: 'written-on-backup',
      role: '',
    });
    assert.equal(refused.status, 503);
    assert.match(await refused.text(), /read-only backup/);

    // A console write on the primary is answered only once the backup has it, as an API write is: with
    // the backup frozen, the answer waits syncTimeoutMs (then m1, without a witness, goes on async).
    const c1 = new Browser(url1);
    await c1.login('admin', PASSWORD);
    const target = acked[1]!;
    const nodePage = await (await c1.get(`/nodes/${encodeURIComponent(target)}`)).text();
    m2.child.kill('SIGSTOP');
    let took = 0;
    try {
      const t0 = Date.now();
      const saved = await c1.post(`/nodes/${encodeURIComponent(target)}/update`, {
        _csrf: hiddenValue(nodePage, '_csrf'),
        name: 'console-write',
        role: '',
      });
      took = Date.now() - t0;
      assert.equal(saved.status, 303);
    } finally {
      m2.child.kill('SIGCONT');
    }
    assert.ok(took >= 900, `the console answered in ${took} ms, before the backup could acknowledge`);
    await waitFor(
      'm2 has the console write',
      async () => {
        const r = (await json(`${url2}/api/v1/nodes/${target}`)).body as unknown as {
          node?: { name: string };
        };
        return r.node?.name === 'console-write' ? true : undefined;
      },
      10_000,
    );
    await waitFor(
      'sync restored after the console write',
      async () => ((await json(`${url1}/api/v1/ha/status`)).body.mode === 'sync' ? true : undefined),
      10_000,
    );
  });

  it('an old primary that wrote alone (async) and died discards its tail when it returns', async () => {
    await m2!.stop('SIGKILL');
    // Alone, m1 waits syncTimeoutMs, finds no witness, degrades to async (recorded) and acknowledges.
    for (let n = 0; n < 5; n++) assert.ok((await enlist(url1, mac('0b', n))) < 300);
    const s1 = (await json(`${url1}/api/v1/ha/status`)).body;
    assert.equal(s1.mode, 'async');
    await m1!.stop('SIGKILL');
    m2 = await start(join(d2, 'corral.json'));
    const p = await json(`${url2}/api/v1/ha/promote`, {
      method: 'POST',
      body: JSON.stringify({ confirm: true }),
    });
    assert.equal(p.body.role, 'primary');
    assert.ok(p.body.epoch > s1.epoch);
    assert.ok((await enlist(url2, mac('0c', 1))) < 300);
    m1 = await start(join(dir, 'm1.json'));
    const ev = await waitFor(
      'tail-discarded event',
      async () => {
        const e = (await json(`${url2}/api/v1/events?kind=ha.tail-discarded`)).body.events as {
          message: string;
          data: { count: number };
        }[];
        return e.length ? e[0] : undefined;
      },
      20_000,
    );
    assert.ok(ev.data.count >= 5, ev.message);
    const conv = await waitFor(
      'm1 converged',
      async () => {
        const a = (await json(`${url1}/api/v1/ha/status`)).body;
        const b = (await json(`${url2}/api/v1/ha/status`)).body;
        return a.role === 'backup' && a.epoch === b.epoch && a.lastSeq === b.lastSeq ? a : undefined;
      },
      20_000,
    );
    const on1 = new Set(
      ((await json(`${url1}/api/v1/nodes`)).body.nodes as { mac: string }[]).map((n) => n.mac),
    );
    assert.ok(
      !on1.has(mac('0b', 0)) && on1.has(mac('0c', 1)),
      'the async tail is gone, the new primary’s write is there',
    );
    process.stdout.write(
      `discarded on return: ${ev.message}; converged at epoch ${conv.epoch} seq ${conv.lastSeq}\n`,
    );
  });
});
