/**
 * `corral node exec` and POST /api/v1/exec against real sshd instances, each in its own namespace on a test
 * bridge (port 22 there, a temporary host key, the master's public key as AuthorizedKeysFile). One node's
 * address has no host behind it (unreachable, reported within the connect timeout, not hung), one command
 * fails on one node (non-zero exit in the summary), one outlives its timeout. The fan-out is bounded: the
 * commands' own start/end stamps show at most `parallel` running at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { TestNet, type Host } from '../helpers/netns.js';
import { CLI, exitOf, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { prepareSshd, writeAuthorizedKeys } from '../helpers/sshd.js';

const SUBNET = '10.77.12';
const unmet = unmetNeeds({ root: true, commands: ['/usr/sbin/sshd', 'ssh-keygen'] });

let net: TestNet | undefined;
let dir = '';
let dataDir = '';
let configFile = '';
let master: Host;
const hosts: Host[] = [];
let masterProc: MasterProcess | undefined;

async function inMaster(
  argv: string[],
  stdin = '',
): Promise<{ code: number | string; stdout: string; stderr: string; ms: number }> {
  const t = Date.now();
  const child = spawn('ip', ['netns', 'exec', master.ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  const code = await exitOf(child, 60_000);
  return { code, stdout, stderr, ms: Date.now() - t };
}

before(async () => {
  failIfUnmet(unmet);
  dir = mkdtempSync(join(tmpdir(), 'corral-exec-'));
  dataDir = join(dir, 'data');
  const key = await ensureMasterKey(dataDir);
  const authorizedKeys = writeAuthorizedKeys(dir, key.publicKey);
  net = new TestNet('cex');
  master = net.addHost('em', `${SUBNET}.1/24`);
  const starts: (() => Promise<void>)[] = [];
  for (let i = 0; i < 3; i++) {
    const h = net.addHost(`e${i}`, `${SUBNET}.1${i}/24`);
    hosts.push(h);
    starts.push(prepareSshd(net, h, { dir, name: `e${i}`, authorizedKeys, fromNs: master.ns }));
  }
  const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
  repos.store.write((journal) => {
    hosts.forEach((h, i) => {
      const mac = `52:54:00:77:12:1${i}`;
      repos.nodes.insertIn(journal, {
        mac,
        name: `app-${i}`,
        seqNo: i + 1,
        state: 'deployed',
        ip: h.address,
      });
      repos.nodes.patchIn(journal, mac, { role: 'app' });
    });
    // An address on the segment with no host: ARP goes unanswered.
    repos.nodes.insertIn(journal, {
      mac: '52:54:00:77:12:99',
      name: 'gone',
      seqNo: 9,
      state: 'deployed',
      ip: `${SUBNET}.99`,
    });
    repos.nodes.patchIn(journal, '52:54:00:77:12:99', { role: 'app' });
  });
  repos.store.close();
  configFile = join(dir, 'corral.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      address: master.address,
      http: { port: 8080 },
      tftp: { enabled: false },
      // HTTPS on for `corral login` (last test); plain HTTP keeps /api/v1 for the curl tests.
      // curl -u from inside the master's namespace to its own address (not loopback): opted in.
      console: { https: true, httpsPort: 8443, allowInsecureBasicAuth: true },
      monitor: { enabled: false },
      remote: { exec: { parallel: 2, connectTimeoutSeconds: 3, commandTimeoutSeconds: 60 } },
    }),
  );
  // Each sshd is listening before the tests start (bounded).
  for (const start of starts) await start();
});

after(async () => {
  await masterProc?.stop('SIGKILL').catch(() => undefined);
  await net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  'corral node exec --role: prefixed output, bounded fan-out, failing and unreachable nodes in the summary',
  { timeout: 90_000 },
  async () => {
    const stamps = join(dir, 'stamps');
    const cmd = `echo start $(date +%s.%N) >> ${stamps}; sleep 1; ip -4 -o addr show | grep -q ${SUBNET}.11/ && { echo oops >&2; echo end $(date +%s.%N) >> ${stamps}; exit 3; }; echo hello from $(ip -4 -o addr show | grep -o '${SUBNET}\\.[0-9]*/' | tr -d /); echo end $(date +%s.%N) >> ${stamps}`;
    const r = await inMaster([
      'node',
      CLI,
      'node',
      'exec',
      '--role',
      'app',
      '--config',
      configFile,
      '--',
      cmd,
    ]);
    console.log(`# exec over 4 nodes (parallel 2, one unreachable): ${r.ms} ms wall incl. CLI start`);
    assert.equal(r.code, 1, r.stderr);
    const out = r.stdout;
    console.log(
      out
        .trim()
        .split('\n')
        .map((l) => `# ${l}`)
        .join('\n'),
    );
    assert.match(out, /^app-0 \| hello from 10\.77\.12\.10$/m);
    assert.match(out, /^app-2 \| hello from 10\.77\.12\.12$/m);
    assert.match(out, /^app-1 ! oops$/m);
    assert.match(out, /^app-0\s+ok\s+exit 0/m);
    assert.match(out, /^app-1\s+failed\s+exit 3/m);
    assert.match(out, /^gone\s+unreachable\s+(Timed out while waiting for handshake|connect E\w+)/m);
    assert.match(out, /^4 node\(s\): 2 ok, 1 failed, 1 unreachable, 0 timed out in [\d.]+ s$/m);
    // Not hung: the unreachable node is given up after the 3 s connect timeout.
    assert.ok(r.ms < 25_000, `took ${r.ms} ms`);

    // Bounded fan-out: never more than 2 commands running at once.
    const events = readFileSync(stamps, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([kind, t]) => ({ kind: kind!, t: Number(t) }))
      .sort((a, b) => a.t - b.t);
    let running = 0;
    let peak = 0;
    for (const e of events) {
      running += e.kind === 'start' ? 1 : -1;
      peak = Math.max(peak, running);
    }
    assert.equal(events.length, 6);
    assert.equal(peak, 2, 'at most `parallel` at once, and more than one');

    // Recorded: the run with its output, and one audit row naming it.
    const repos = openRepos({ path: join(dataDir, 'corral.db'), logger: silentLogger() });
    try {
      const run = repos.execRuns.list(1)[0]!;
      assert.equal(run.via, 'cli');
      assert.match(run.output, /app-0 \| hello from/);
      const audit = repos.audit.list({ limit: 5 }).find((a) => a.action === 'exec');
      assert.ok(audit);
      assert.equal(audit.outcome, 'failed');
      assert.match(
        audit.detail ?? '',
        new RegExp(`^run #${run.id}: .* → 4 node\\(s\\): 2 ok, 1 failed, 1 unreachable`),
      );
    } finally {
      repos.store.close();
    }
  },
);

test(
  'corral node exec: a command outliving --timeout is cut and reported; named nodes; exit 0 when all ok',
  { timeout: 60_000 },
  async () => {
    const slow = await inMaster([
      'node',
      CLI,
      'node',
      'exec',
      'app-0',
      // 5 s, not less: the `echo` must reach us before the cut, and on a loaded machine (a neighbour test
      // file, CI run beside QEMU) sshd's fork and the shell's start took over 2 s.
      '--timeout',
      '5',
      '--config',
      configFile,
      '--',
      'echo started; sleep 30',
    ]);
    assert.equal(slow.code, 1);
    assert.match(slow.stdout, /^app-0 \| started$/m);
    assert.match(slow.stdout, /^app-0\s+timeout\s+still running after 5 s/m);
    assert.ok(slow.ms < 15_000, `took ${slow.ms} ms`);

    const ok = await inMaster([
      'node',
      CLI,
      'node',
      'exec',
      'app-0,app-2',
      '--config',
      configFile,
      '--',
      'true',
    ]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /2 node\(s\): 2 ok, 0 failed/);

    const none = await inMaster([
      'node',
      CLI,
      'node',
      'exec',
      '--role',
      'nosuch',
      '--config',
      configFile,
      '--',
      'true',
    ]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no node has role 'nosuch'/);
  },
);

test(
  'POST /api/v1/exec on the real master streams NDJSON and records the run; anonymous callers are refused',
  { timeout: 90_000 },
  async () => {
    masterProc = await startMasterProcess({
      args: ['--config', configFile],
      netns: master.ns,
      env: { CORRAL_ADMIN_PASSWORD: 'exec-admin-pw' },
      timeoutMs: 45_000,
    });
    const url = `http://${master.address}:${masterProc.port}/api/v1/exec`;
    const body = JSON.stringify({ nodes: ['app-0', 'app-2'], command: 'echo one; sleep 1; echo two' });
    const r = await inMaster([
      'curl',
      '-sS',
      '-N',
      '-u',
      'admin:exec-admin-pw',
      '-H',
      'content-type: application/json',
      '-d',
      body,
      url,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.filter((l) => l['node'] === 'app-0').map((l) => l['text']),
      ['app-0 | one', 'app-0 | two'],
    );
    const last = lines.at(-1)!;
    assert.equal((last['summary'] as { ok: number }).ok, 2);
    const runId = last['runId'] as number;

    const run = await inMaster(['curl', '-sS', '-u', 'admin:exec-admin-pw', `${url}/runs/${runId}`]);
    const rec = (JSON.parse(run.stdout) as { run: { output: string; via: string; actor: string } }).run;
    assert.equal(rec.via, 'api');
    assert.equal(rec.actor, 'admin');
    assert.match(rec.output, /app-2 \| two/);

    const anon = await inMaster([
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      'content-type: application/json',
      '-d',
      body,
      url,
    ]);
    assert.equal(anon.stdout, '401');
  },
);

test(
  'power API on the real master: write-only password, driver limits, errors as JSON codes',
  { timeout: 60_000 },
  async () => {
    assert.ok(masterProc, 'the master of the previous test is running');
    const api = `http://${master.address}:${masterProc.port}/api/v1/nodes`;
    const call = async (
      method: string,
      path: string,
      body?: unknown,
    ): Promise<{ status: number; json: unknown }> => {
      const r = await inMaster([
        'curl',
        '-sS',
        '-X',
        method,
        '-u',
        'admin:exec-admin-pw',
        '-H',
        'content-type: application/json',
        ...(body ? ['-d', JSON.stringify(body)] : []),
        '-w',
        '\n%{http_code}',
        `${api}${path}`,
      ]);
      const [text = '', status = '0'] = [
        r.stdout.slice(0, r.stdout.lastIndexOf('\n')),
        r.stdout.slice(r.stdout.lastIndexOf('\n') + 1),
      ];
      return { status: Number(status), json: text ? (JSON.parse(text) as unknown) : null };
    };
    const put = await call('PUT', '/app-1/power', {
      driver: 'ipmi',
      address: '10.77.12.250',
      username: 'root',
      password: 'Api-Bmc-Pw-77',
    });
    assert.equal(put.status, 200);
    assert.equal((put.json as { power: { hasPassword: boolean } }).power.hasPassword, true);
    const got = await call('GET', '/app-1/power');
    assert.equal(got.status, 200);
    assert.ok(!JSON.stringify(got.json).includes('Api-Bmc-Pw-77'), 'the password came back from the API');
    assert.ok(!JSON.stringify(got.json).includes('"secret"'));

    // No BMC at that address: a bounded failure with a stable code, not a hang.
    const t = Date.now();
    const on = await call('POST', '/app-1/power/on');
    assert.equal(on.status, 502);
    assert.equal((on.json as { error: { code: string } }).error.code, 'POWER_FAILED');
    assert.ok(Date.now() - t < 30_000);

    assert.equal((await call('PUT', '/app-2/power', { driver: 'wol' })).status, 200);
    const off = await call('POST', '/app-2/power/off');
    assert.equal(off.status, 400);
    assert.equal((off.json as { error: { code: string } }).error.code, 'POWER_UNSUPPORTED');
    const none = await call('POST', '/app-0/power/on');
    assert.equal((none.json as { error: { code: string } }).error.code, 'POWER_NOT_CONFIGURED');
    assert.equal((await call('PUT', '/app-0/power', { driver: 'ipmi', password: 1 })).status, 400);
  },
);

test(
  'corral node exec through a login profile: the master runs it, output streams as it comes, the summary and exit code as on the master',
  { timeout: 90_000 },
  async () => {
    assert.ok(masterProc, 'the master of the earlier test is running');
    const env = { CORRAL_CONFIG_DIR: join(dir, 'profiles') };
    const login = await inMaster(
      [
        'env',
        `CORRAL_CONFIG_DIR=${env.CORRAL_CONFIG_DIR}`,
        'node',
        CLI,
        'login',
        `https://${master.address}:8443`,
        '--yes',
        '--password-stdin',
      ],
      'exec-admin-pw\n',
    );
    assert.equal(login.code, 0, login.stderr);

    // Stamped as they arrive: the first node's first line must come well before the run ends.
    const t0 = Date.now();
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        master.ns,
        'env',
        `CORRAL_CONFIG_DIR=${env.CORRAL_CONFIG_DIR}`,
        'node',
        CLI,
        'node',
        'exec',
        'app-0,app-2',
        '--',
        'echo one; sleep 3; echo two',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let firstLineMs = -1;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (firstLineMs < 0 && /\| one/.test(stdout)) firstLineMs = Date.now() - t0;
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await exitOf(child, 60_000);
    const totalMs = Date.now() - t0;
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^app-0 \| one$/m);
    assert.match(stdout, /^app-2 \| two$/m);
    assert.match(stdout, /^2 node\(s\): 2 ok, 0 failed, 0 unreachable, 0 timed out in [\d.]+ s$/m);
    console.log(`# exec via profile: first line after ${firstLineMs} ms, done after ${totalMs} ms`);
    assert.ok(firstLineMs >= 0 && totalMs - firstLineMs >= 2000, 'output streamed, not held to the end');

    const failing = await inMaster([
      'env',
      `CORRAL_CONFIG_DIR=${env.CORRAL_CONFIG_DIR}`,
      'node',
      CLI,
      'node',
      'exec',
      'app-1',
      '--',
      'exit 3',
    ]);
    assert.equal(failing.code, 1, 'a failed command on a node is exit 1, as on the master');
    assert.match(failing.stdout, /^app-1\s+failed\s+exit 3/m);
  },
);

test(
  "a session pool (the apps' engine driver) keeps one SSH connection per node, and reconnects when it is cut",
  { timeout: 90_000 },
  async () => {
    // Run inside the master's namespace (where the nodes are reachable), on the real exec code of dist/.
    const script = join(dir, 'pool.mjs');
    const mod = (p: string): string => JSON.stringify(new URL(p, import.meta.url).href);
    writeFileSync(
      script,
      `import { runOnNodes, SessionPool } from ${mod('../../master/remote/exec.js')};
import { HostKeyPins } from ${mod('../../master/remote/host-keys.js')};
import { execFileSync } from 'node:child_process';
const [host, dataDir, keyPath, sshdConf] = process.argv.slice(2);
// This node's session processes only: the children of its own sshd (found by its config file, unique to
// this run) and theirs. Never a pattern over every sshd on the machine.
const kids = (pid) => {
  try {
    return execFileSync('pgrep', ['-P', String(pid)]).toString().split('\\n').filter(Boolean);
  } catch {
    return [];
  }
};
const signalSessions = (signal) => {
  const listeners = execFileSync('pgrep', ['-f', sshdConf]).toString().split('\\n').filter(Boolean);
  const monitors = listeners.flatMap(kids);
  for (const pid of [...monitors, ...monitors.flatMap(kids)]) process.kill(Number(pid), signal);
};
const pins = new HostKeyPins(dataDir, dataDir + '/sharedroot');
const target = { name: 'app-0', mac: '52:54:00:77:12:10', host };
const run = async (command, sessions, commandTimeoutMs = 20000) => {
  const out = [];
  const s = await runOnNodes({ targets: [target], command, privateKeyPath: keyPath, user: 'root', port: 22,
    parallel: 1, connectTimeoutMs: 3000, commandTimeoutMs, hostKeys: pins,
    ...(sessions ? { sessions } : {}), onLine: (_n, _s, l) => out.push(l) });
  const r = s.results[0];
  return { outcome: r.outcome, exitCode: r.exitCode, port: out.join(' ').split(' ')[1] ?? null };
};
const pool = new SessionPool(60000);
const res = { pooled: [], unpooled: [] };
res.pooled.push(await run('echo $SSH_CONNECTION', pool));
// Time per command on a kept session and on a new one each (the figure printed; not asserted).
let t = Date.now();
for (let i = 0; i < 10; i++) await run('true', pool);
res.keptMs = (Date.now() - t) / 10;
t = Date.now();
for (let i = 0; i < 10; i++) await run('true');
res.newMs = (Date.now() - t) / 10;
res.pooled.push(await run('echo $SSH_CONNECTION; exit 3', pool));
res.pooled.push(await run('echo $SSH_CONNECTION', pool));
res.kept = pool.size;
res.unpooled.push(await run('echo $SSH_CONNECTION'));
res.unpooled.push(await run('echo $SSH_CONNECTION'));
// The node's side ends the kept connection (its sshd session processes, not the listener).
signalSessions('SIGTERM');
await new Promise((r) => setTimeout(r, 500));
res.afterCut = await run('echo $SSH_CONNECTION', pool);
// The node goes silent on the kept connection (its session processes stopped, as a node that lost power
// keeps no TCP state to refuse with): the channel does not open within the connect timeout, so the
// command runs on a new connection instead of waiting out the command timeout.
const silentPort = (await run('echo $SSH_CONNECTION', pool)).port;
signalSessions('SIGSTOP');
try {
  // 8 s: shorter than the keepalives take to give the session up (5 s apart, 2 unanswered), longer than
  // the connect timeout that bounds the channel's opening (3 s).
  res.afterSilence = await run('echo $SSH_CONNECTION', pool, 8000);
} finally {
  signalSessions('SIGKILL');
}
res.silentPort = silentPort;
pool.close();
res.closed = pool.size;
console.log(JSON.stringify(res));
`,
    );
    const r = await inMaster([
      'node',
      script,
      hosts[0]!.address,
      dataDir,
      join(dataDir, 'ssh', 'id_ed25519'),
      join(dir, 'e0.sshd.conf'),
    ]);
    // Exit 0: no unhandled 'error' from a reset connection; one close/error listener per connection.
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /MaxListenersExceededWarning/);
    type Run = { outcome: string; exitCode: number | null; port: string | null };
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      pooled: Run[];
      unpooled: Run[];
      kept: number;
      afterCut: Run;
      afterSilence: Run;
      silentPort: string | null;
      closed: number;
      keptMs: number;
      newMs: number;
    };
    console.log(
      `# ssh command ('true') to a namespace node: ${res.keptMs} ms on a kept session, ${res.newMs} ms on a new session each`,
    );
    // One connection (the same client port on the node's side) for three commands, a failing one between.
    assert.deepEqual(
      res.pooled.map((x) => [x.outcome, x.exitCode]),
      [
        ['ok', 0],
        ['failed', 3],
        ['ok', 0],
      ],
    );
    assert.ok(res.pooled[0]!.port, r.stdout);
    assert.equal(new Set(res.pooled.map((x) => x.port)).size, 1, r.stdout);
    assert.equal(res.kept, 1);
    // Without a pool every command is its own connection.
    assert.notEqual(res.unpooled[0]!.port, res.unpooled[1]!.port, r.stdout);
    // A cut session is not reused: the command runs on a new connection.
    assert.equal(res.afterCut.outcome, 'ok', r.stdout);
    assert.notEqual(res.afterCut.port, res.pooled[0]!.port, r.stdout);
    // A silent kept session: the command ran on a new one (without the bound it timed out after 8 s).
    assert.equal(res.afterSilence.outcome, 'ok', r.stdout);
    assert.notEqual(res.afterSilence.port, res.silentPort, r.stdout);
    assert.equal(res.closed, 0);
  },
);
