import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { basic, CLI, exitOf, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

const dirs: string[] = [];
const running: MasterProcess[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-master-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const m of running) await m.stop('SIGKILL').catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(
  dataDir: string,
  env: Record<string, string> = {},
  extra: string[] = [],
): Promise<MasterProcess> {
  const m = await startMasterProcess({
    args: ['--data-dir', dataDir, '--address', '127.0.0.1', '--http-port', '0', '--tftp-port', '0', ...extra],
    env,
  });
  running.push(m);
  return m;
}

function run(args: string[]): Promise<{ code: number | string; stderr: string; stdout: string }> {
  const child = spawn('node', [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return exitOf(child, 10_000).then((code) => ({ code, stderr, stdout }));
}

test('--help and --version', async () => {
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /corral master --data-dir DIR --address IP/);
  const version = await run(['--version']);
  assert.match(version.stdout, /^corral \d+\.\d+\.\d+\n$/);
});

test('a bad config value exits 2 with one line naming the key, and starts nothing', async () => {
  const d = join(tempDir(), 'data');
  const r = await run(['master', '--data-dir', d, '--address', '10.0.0.1', '--http-port', '99999']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /http\.port/);
  assert.equal(existsSync(d), false, 'no data directory created');

  const cfg = join(tempDir(), 'corral.json');
  writeFileSync(cfg, JSON.stringify({ dataDir: d, address: '10.0.0.1', dhcp: { mode: 'server' } }));
  const r2 = await run(['master', '--config', cfg]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /^corral: config error: dhcp\.range: is required when DHCP mode is server\n$/);

  writeFileSync(cfg, '{ not json');
  const r3 = await run(['master', '--config', cfg]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /is not valid JSON/);
  const r4 = await run(['master', '--nope']);
  assert.equal(r4.code, 2);
  const r5 = await run(['frobnicate']);
  assert.equal(r5.code, 2);
  assert.match(r5.stderr, /unknown command 'frobnicate'/);
});

test('API: health open, everything else behind Basic auth; generated admin password file is 0600', async () => {
  const dataDir = tempDir();
  const m = await start(dataDir);
  const pwFile = join(dataDir, 'initial-admin-password');
  assert.equal(statSync(pwFile).mode & 0o777, 0o600);
  const password = readFileSync(pwFile, 'utf8').trim();
  assert.ok(password.length >= 16);
  const hashed = new Database(join(dataDir, 'corral.db'), { readonly: true })
    .prepare("SELECT password_hash FROM users WHERE name = 'admin'")
    .get() as { password_hash: string };
  assert.match(hashed.password_hash, /^scrypt\$/);
  assert.ok(!hashed.password_hash.includes(password));

  const health = await fetch(`${m.url}/api/v1/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');

  for (const path of ['/api/v1/nodes', '/api/v1/events', '/api/v1/nodes/52:54:00:00:00:01']) {
    const r = await fetch(`${m.url}${path}`);
    assert.equal(r.status, 401, path);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/);
    const body = (await r.json()) as { error: { code: string; message: string; hint: string } };
    assert.equal(body.error.code, 'AUTH_REQUIRED');
  }
  const wrong = await fetch(`${m.url}/api/v1/nodes`, { headers: basic('admin', 'wrong') });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'AUTH_FAILED');

  const auth = basic('admin', password);
  const enl = await fetch(`${m.url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      mac: '52:54:00:00:00:01',
      inventory: { memoryBytes: 536870912, cpu: { count: 2 } },
    }),
  });
  assert.equal(enl.status, 201);
  const nodes = (await (await fetch(`${m.url}/api/v1/nodes`, { headers: auth })).json()) as {
    nodes: { mac: string; name: string; state: string; inventory: { memoryBytes: number } }[];
  };
  assert.equal(nodes.nodes.length, 1);
  assert.equal(nodes.nodes[0]?.state, 'discovered');
  const one = await fetch(`${m.url}/api/v1/nodes/node-1`, { headers: auth });
  assert.equal(one.status, 200);
  const missing = await fetch(`${m.url}/api/v1/nodes/nope`, { headers: auth });
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'NODE_NOT_FOUND');

  // Bodies are schema-validated; errors name the field.
  const bad = await fetch(`${m.url}/api/v1/nodes/node-1`, {
    method: 'PATCH',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Bad Name!' }),
  });
  assert.equal(bad.status, 400);
  const badBody = (await bad.json()) as { error: { code: string; message: string } };
  assert.equal(badBody.error.code, 'BODY_INVALID');
  assert.match(badBody.error.message, /^name: /);
  const unknownKey = await fetch(`${m.url}/api/v1/nodes/node-1`, {
    method: 'PATCH',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'deployed' }),
  });
  assert.equal(unknownKey.status, 400);
  const notJson = await fetch(`${m.url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"mac":',
  });
  assert.equal(notJson.status, 400);
  const renamed = await fetch(`${m.url}/api/v1/nodes/node-1`, {
    method: 'PATCH',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'web-1', role: 'app' }),
  });
  assert.equal(renamed.status, 200);
  const events = (await (await fetch(`${m.url}/api/v1/events`, { headers: auth })).json()) as {
    events: { kind: string }[];
  };
  // The refused not-JSON enlist is recorded too (issue 14: refusals are counted and shown).
  assert.deepEqual(events.events.map((e) => e.kind).slice(0, 3), [
    'node.updated',
    'node.enlist-refused',
    'node.discovered',
  ]);

  assert.equal(await m.stop('SIGTERM'), 0, 'graceful shutdown exits 0');
  assert.match(m.logs(), /corral master stopped/);
});

test('CORRAL_ADMIN_PASSWORD sets the first password; no password file is written', async () => {
  const dataDir = tempDir();
  const m = await start(dataDir, { CORRAL_ADMIN_PASSWORD: 'correct horse battery' });
  assert.equal(existsSync(join(dataDir, 'initial-admin-password')), false);
  const r = await fetch(`${m.url}/api/v1/nodes`, { headers: basic('admin', 'correct horse battery') });
  assert.equal(r.status, 200);
  // 30 s: stopped right after its start, the master waits for its node environment build's apt-cache
  // runs, which took past 10 s on a loaded machine beside another test file (docs/testing.md).
  assert.equal(await m.stop('SIGTERM', 30_000), 0);
});

test('SIGKILL mid-write: the restarted master has an intact database holding every acknowledged write', async () => {
  const dataDir = tempDir();
  const env = { CORRAL_ADMIN_PASSWORD: 'pw' };
  // The load enlists thousands of new MACs from one address: lift the new-MAC rate limit (issue 14).
  const cfg = join(dataDir, 'load.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      nodes: {
        enlistRate: {
          perIpBurst: 100_000,
          perIpPerMinute: 1_000_000,
          globalBurst: 1_000_000,
          globalPerMinute: 10_000_000,
        },
      },
    }),
  );
  const m = await start(dataDir, env, ['--config', cfg]);
  const acknowledged = new Set<string>();
  let stop = false;
  const mac = (i: number): string =>
    `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  let next = 0;
  // Eight concurrent writers, bounded to 20 000 requests in all; each records only 2xx answers.
  const writer = async (): Promise<void> => {
    while (!stop && next < 20_000) {
      const id = mac(next++);
      try {
        const r = await fetch(`${m.url}/api/v1/enlist`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            mac: id,
            inventory: { memoryBytes: 1 << 20, disks: [{ name: 'vda', sizeBytes: 1 << 30 }] },
          }),
        });
        if (r.status === 201) acknowledged.add(id);
        await r.arrayBuffer();
      } catch {
        return; // the master is gone
      }
    }
  };
  const writers = Array.from({ length: 8 }, writer);
  // Let writes flow, then kill without warning while requests are in flight. 300 is enough load, not a
  // rate under test: on a loaded machine, beside another test file, 10 s gave only 244.
  const deadline = Date.now() + 30_000;
  while (acknowledged.size < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(acknowledged.size >= 300, `only ${acknowledged.size} writes acknowledged before the kill`);
  m.child.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  assert.equal(await exitOf(m.child, 5000), 'SIGKILL');

  const again = await start(dataDir, env, ['--config', cfg]);
  const body = (await (
    await fetch(`${again.url}/api/v1/nodes`, { headers: basic('admin', 'pw') })
  ).json()) as {
    nodes: { mac: string }[];
  };
  const stored = new Set(body.nodes.map((n) => n.mac));
  const lost = [...acknowledged].filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], `acknowledged writes lost after SIGKILL: ${lost.length}`);
  await again.stop();
  const db = new Database(join(dataDir, 'corral.db'), { readonly: true });
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  // The journal holds a row for every node change, so the replication feed survived too.
  const journaled = db
    .prepare("SELECT COUNT(DISTINCT entity_key) AS n FROM changes WHERE entity = 'nodes'")
    .get() as { n: number };
  assert.equal(journaled.n, stored.size);
  db.close();
  console.log(`# SIGKILL test: ${acknowledged.size} acknowledged, ${stored.size} stored, 0 lost`);
});
