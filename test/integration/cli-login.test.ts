/**
 * `corral login` and the profile-driven CLI against a real `corral master` process on loopback, HTTPS on
 * with its generated self-signed certificate: the pinned fingerprint is compared with the one `openssl`
 * reads from the certificate file, a wrong password writes nothing, `corral node list|show` work through
 * the profile, and after the master restarts with a new certificate they refuse, naming both fingerprints.
 */
import assert from 'node:assert/strict';
import { freePort } from '../helpers/ports.js';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, exitOf, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { writeProfiles } from '../../master/cli/profiles.js';

const PASSWORD = 'cli-login-test-password';
const root = mkdtempSync(join(tmpdir(), 'corral-cli-login-'));
const dataDir = join(root, 'data');
const home = join(root, 'home');
const configDir = join(home, '.config', 'corral');
const profilesPath = join(configDir, 'profiles.json');
let master: MasterProcess | undefined;
let httpsPort = 0;

/** The certificate's SHA-256 fingerprint as openssl (a tool independent of Node's TLS) reads it. */
function opensslFingerprint(): string {
  const text = execFileSync(
    'openssl',
    ['x509', '-in', join(dataDir, 'tls', 'cert.pem'), '-noout', '-fingerprint', '-sha256'],
    { encoding: 'utf8' },
  );
  const m = /Fingerprint=([0-9A-F:]+)/i.exec(text);
  assert.ok(m?.[1], text);
  return m[1].toUpperCase();
}

async function startMaster(): Promise<MasterProcess> {
  const configFile = join(root, 'corral.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      address: '127.0.0.1',
      http: { port: 0, bind: '127.0.0.1' },
      tftp: { enabled: false },
      lb: { enabled: false },
      monitor: { enabled: false },
      console: { https: true, httpsPort },
    }),
  );
  const m = await startMasterProcess({
    args: ['--config', configFile],
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
  });
  master = m;
  return m;
}

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** The real CLI with a throwaway HOME (profiles land in HOME/.config/corral), stdin from `input`. */
function cli(args: string[], input = '', env: Record<string, string> = {}, boundMs = 20_000): Promise<Run> {
  const rest = { ...process.env };
  // Profiles must land in the throwaway HOME, whatever the caller's environment says.
  delete rest['CORRAL_CONFIG_DIR'];
  delete rest['XDG_CONFIG_HOME'];
  const child = spawn('node', [CLI, ...args], {
    env: { ...rest, HOME: home, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return exitOf(child, boundMs).then((code) => ({ code, stdout, stderr }));
}

before(async () => {
  httpsPort = await freePort();
  const m = await startMaster();
  const enlisted = await fetch(`${m.url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      mac: '52:54:00:00:22:01',
      inventory: { memoryBytes: 2 ** 30, cpu: { count: 2 } },
    }),
  });
  assert.equal(enlisted.status, 201);
});

after(async () => {
  await master?.stop('SIGKILL').catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

describe('corral login and the profile', () => {
  const url = (): string => `https://127.0.0.1:${httpsPort}`;

  it('a wrong password exits 1, says so in one line, and writes no profile', async () => {
    const r = await cli(['login', url(), '--password-stdin', '--yes'], 'not-the-password\n');
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines.at(-1) ?? '', /^corral: wrong user name or password$/);
    assert.equal(existsSync(profilesPath), false, 'nothing written');
  });

  it('without --yes or --fingerprint and no terminal, login refuses to trust the certificate blindly', async () => {
    const r = await cli(['login', url(), '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /sha256 [0-9A-F:]{95}/, 'it shows the fingerprint it would pin');
    assert.match(r.stderr, /stdin is not a terminal/);
    assert.equal(existsSync(profilesPath), false);
  });

  it('a --fingerprint that does not match is refused before the password is sent', async () => {
    const wrong = 'AB'.repeat(32);
    const r = await cli(['login', url(), '--password-stdin', '--fingerprint', wrong], `${PASSWORD}\n`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not the sha256 (AB:){31}AB given with --fingerprint/);
    assert.equal(existsSync(profilesPath), false);
  });

  it('the right password writes a 0600 profile (directory 0700) pinning the certificate openssl sees', async () => {
    const expected = opensslFingerprint();
    const logged = /"sha256":"([0-9A-F:]+)"[^\n]*console on HTTPS/.exec(master?.logs() ?? '')?.[1];
    assert.equal(logged, expected, 'the master logs the same fingerprint');
    // Given as plain hex, lower case: the form `sha256sum`-style tools print.
    const r = await cli(
      ['login', url(), '--password-stdin', '--fingerprint', expected.replace(/:/g, '').toLowerCase()],
      `${PASSWORD}\n`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /logged in to https:\/\/127\.0\.0\.1:\d+ as admin; profile '127\.0\.0\.1:\d+' saved/,
    );
    assert.equal(statSync(profilesPath).mode & 0o777, 0o600);
    assert.equal(statSync(configDir).mode & 0o777, 0o700);
    const file = JSON.parse(readFileSync(profilesPath, 'utf8')) as {
      current: string;
      profiles: Record<string, { url: string; user: string; fingerprint256: string }>;
    };
    const p = file.profiles[file.current];
    assert.equal(p?.url, url());
    assert.equal(p?.user, 'admin');
    assert.equal(p?.fingerprint256, expected);

    const list = await cli(['profile', 'list']);
    assert.match(
      list.stdout,
      new RegExp(`^\\* 127\\.0\\.0\\.1:${httpsPort}  ${url()}  admin  sha256 ${expected.slice(0, 23)}`),
    );
  });

  it('corral node list and node show work through the profile', async () => {
    const list = await cli(['node', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+MAC\s+STATE/);
    assert.match(list.stdout, /node-1\s+52:54:00:00:22:01\s+discovered/);
    const json = await cli(['node', 'list', '--json', '--state', 'discovered']);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { mac: string }[]).map((n) => n.mac),
      ['52:54:00:00:22:01'],
    );
    const show = await cli(['node', 'show', '52-54-00-00-22-01']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /name\s+node-1/);
    assert.match(show.stdout, /memory\s+1\.0 GiB/);
    const missing = await cli(['node', 'show', 'no-such-node']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^corral: no node with MAC or name 'no-such-node'\n$/);
    const other = await cli(['node', 'list', '--profile', 'elsewhere']);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /no profile 'elsewhere'/);
  });

  it('the commands that used to open the data directory go through the profile too', async () => {
    const set = await cli(['node', 'power', 'node-1', 'set', '--driver', 'manual']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'node-1: manual; power unknown\n');
    const on = await cli(['node', 'power', 'node-1', 'on']);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /^node-1: operator action needed on node-1: /);
    const shown = await cli(['node', 'power', '52:54:00:00:22:01', 'show', '--json']);
    assert.equal((JSON.parse(shown.stdout) as { power: { driver: string } }).power.driver, 'manual');
    const removed = await cli(['node', 'power', 'node-1', 'remove']);
    assert.equal(removed.stdout, 'node-1: power driver removed\n');
    // The API records who did it: the profile's user, not a local 'cli'.
    const audit = await fetch(`${master?.url}/api/v1/audit?limit=5`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
    });
    const rows = ((await audit.json()) as { audit?: { actor: string; action: string }[] }).audit ?? [];
    assert.ok(
      rows.some((r) => r.actor === 'admin' && /power/.test(r.action)),
      JSON.stringify(rows),
    );

    const images = await cli(['image', 'list']);
    assert.equal(images.code, 0, images.stderr);
    assert.match(images.stdout, /^NAME\s+FORMAT\s+SIZE/);
    const deploy = await cli(['node', 'deploy', 'node-1', '--image', 'no-such-image']);
    assert.equal(deploy.code, 1);
    assert.match(deploy.stderr, /no-such-image/);
    const diskless = await cli(['node', 'diskless', 'node-1', '--root', 'no-such-root']);
    assert.equal(diskless.code, 1);
    assert.match(diskless.stderr, /no-such-root/);
    const roots = await cli(['sharedroot', 'list']);
    assert.equal(roots.code, 0, roots.stderr);
    assert.equal(roots.stdout, '(no shared roots)\n');
    // Refused by the master before any stream starts: the node has no address to SSH to.
    const exec = await cli(['node', 'exec', 'node-1', '--', 'true']);
    assert.equal(exec.code, 1);
    assert.equal(exec.stderr.trim().split('\n').length, 1, exec.stderr);
    const both = await cli(['node', 'power', 'node-1', 'show', '--profile', 'x', '--data-dir', dataDir]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--profile goes through the API/);
  });

  it('after the master restarts with a new certificate, commands refuse and name both fingerprints', async () => {
    const pinned = opensslFingerprint();
    await master?.stop();
    rmSync(join(dataDir, 'tls'), { recursive: true, force: true });
    await startMaster();
    const fresh = opensslFingerprint();
    assert.notEqual(fresh, pinned, 'the restarted master has another certificate');
    const r = await cli(['node', 'list']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.includes(`presented certificate sha256 ${fresh}`), r.stderr);
    assert.ok(r.stderr.includes(`pinned sha256 ${pinned}`), r.stderr);
    assert.equal(r.stdout, '');

    // Accepting the new certificate takes an explicit --fingerprint (--yes alone is not enough).
    const yes = await cli(['login', url(), '--password-stdin', '--yes'], `${PASSWORD}\n`);
    assert.equal(yes.code, 2, yes.stderr);
    assert.match(yes.stderr, /now presents certificate/);
    const again = await cli(['login', url(), '--password-stdin', '--fingerprint', fresh], `${PASSWORD}\n`);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await cli(['node', 'list'])).code, 0);
  });

  it('on a terminal, login asks to trust the certificate and reads the password without echoing it', async () => {
    // util-linux `script` gives the CLI a pseudo-terminal; what the CLI echoes comes back on its stdout.
    const env = { ...process.env };
    delete env['CORRAL_CONFIG_DIR'];
    const child = spawn('script', ['-qfec', `node ${CLI} login ${url()} --profile tty`, '/dev/null'], {
      env: { ...env, HOME: home, TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    const waitFor = async (text: string): Promise<void> => {
      for (let i = 0; i < 200 && !screen.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(screen.includes(text), `no '${text}' on the terminal:\n${screen}`);
    };
    await waitFor('Trust this certificate? [y/N] ');
    child.stdin.write('y\r');
    await waitFor('Password for admin at ');
    child.stdin.write(`${PASSWORD}\r`);
    assert.equal(await exitOf(child, 20_000), 0, screen);
    child.stdin.end();
    assert.match(screen, /Trust this certificate\? \[y\/N\] y/, 'the answer is echoed');
    assert.ok(!screen.includes(PASSWORD), `the password was echoed:\n${screen}`);
    assert.match(screen, /profile 'tty' saved/);
    const list = await cli(['profile', 'list']);
    assert.match(list.stdout, /^\* tty {2}/m, 'the new profile is current');
    assert.equal((await cli(['profile', 'use', '127.0.0.1:' + String(httpsPort)])).code, 0);
    assert.equal((await cli(['logout', '--profile', 'tty'])).code, 0);
  });

  it('plain http is taken for a loopback address only (the lab forward), with nothing to pin', async () => {
    const http = master?.url ?? '';
    const r = await cli(['login', http, '--password-stdin', '--profile', 'plain'], `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /plain HTTP to 127\.0\.0\.1:\d+ \(loopback\): no certificate to pin/);
    const list = await cli(['node', 'list', '--profile', 'plain']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /node-1\s+52:54:00:00:22:01/);
    assert.match(
      (await cli(['profile', 'list'])).stdout,
      /plain {2}http:\/\/127\.0\.0\.1:\d+ {2}admin {2}plain HTTP \(loopback\)/,
    );
    assert.equal((await cli(['logout', '--profile', 'plain'])).code, 0);
    assert.equal((await cli(['profile', 'use', `127.0.0.1:${httpsPort}`])).code, 0);
    const remote = await cli(['login', 'http://192.0.2.1', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /over HTTPS \(plain http only on loopback\); use https:\/\/192\.0\.2\.1/);
  });

  it('logout forgets the profile; commands then say to log in', async () => {
    const out = await cli(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(statSync(profilesPath).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(profilesPath, 'utf8'), new RegExp(PASSWORD));
    const r = await cli(['node', 'list']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /run `corral login https:\/\/MASTER` first/);
  });

  it('a master that is down, or that never finishes the TLS handshake, is one bounded MASTER_UNREACHABLE line', async () => {
    const held: Socket[] = [];
    const silent = createServer((sock) => void held.push(sock));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as { port: number }).port;
    const closedPort = await freePort();
    const pin = { user: 'admin', password: 'x', fingerprint256: 'AB:'.repeat(31) + 'AB', createdAt: '' };
    writeProfiles(configDir, {
      profiles: {
        silent: { ...pin, url: `https://127.0.0.1:${silentPort}` },
        down: { ...pin, url: `https://127.0.0.1:${closedPort}` },
      },
    });
    try {
      // The refused connection answers at once: this run is the CLI's own start-up, which the hung run
      // below pays too (start-up plus the 10 s bound passed 20 s on a loaded machine, a test file beside).
      const t0 = Date.now();
      const down = await cli(['node', 'list', '--profile', 'down'], '', {}, 60_000);
      const startMs = Date.now() - t0;
      assert.equal(down.code, 1);
      assert.equal(
        down.stderr,
        `corral: cannot reach the master at https://127.0.0.1:${closedPort}: ECONNREFUSED\n`,
      );
      const t = Date.now();
      const hung = await cli(['node', 'list', '--profile', 'silent'], '', {}, 60_000);
      const ms = Date.now() - t;
      assert.equal(hung.code, 1);
      assert.match(
        hung.stderr,
        /^corral: cannot reach the master at https:\/\/127\.0\.0\.1:\d+: no TLS handshake within 10000 ms\n$/,
      );
      // Gave up at the 10 s handshake bound: no sooner, and no later than start-up plus that bound plus
      // 10 s of slack (start-up varies between two runs on a loaded machine).
      assert.ok(ms >= 10_000 && ms < startMs + 20_000, `gave up after ${ms} ms (start-up ${startMs} ms)`);
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }
  });
});
