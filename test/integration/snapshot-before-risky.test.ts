/**
 * Automatic restore points before an image delete, on real `corral master` processes (loopback, port
 * 0): through the REST API, the console and `corral image delete --data-dir` beside the running master,
 * each delete is preceded by a restore point of kind `auto` that still holds the image; with
 * `snapshots.beforeRisky: false` in the master's config, none is taken.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Browser } from '../helpers/browser.js';
import { CLI, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { api as apiCall } from '../helpers/api.js';

const PASSWORD = 'before risky test password';

interface Listed {
  id: string;
  kind: string;
  reason: string;
  actor: string | null;
  images: { name: string }[];
}

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`corral ${args.join(' ')} did not finish in 30 s`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** A tiny real root file system, imported into the master's data directory by the CLI. */
async function importImage(dataDir: string, name: string): Promise<void> {
  const root = join(dataDir, '..', `${name}-root`);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'os-release'), `ID=tiny\nVERSION_ID="${name}"\n`);
  const tarball = join(dataDir, '..', `${name}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', root, '.']);
  const r = await cli(['image', 'import', tarball, '--name', name, '--data-dir', dataDir]);
  assert.equal(r.code, 0, r.err);
}

const api = (m: MasterProcess | undefined, method: string, path: string) =>
  apiCall<Record<string, unknown>>({ url: m?.url ?? '', password: PASSWORD }, method, path);

async function autoPoints(m: MasterProcess | undefined): Promise<Listed[]> {
  const list = await api(m, 'GET', '/snapshots');
  assert.equal(list.status, 200);
  return (list.json['snapshots'] as Listed[]).filter((s) => s.kind === 'auto');
}

describe('an image delete takes an automatic restore point first', { timeout: 120_000 }, () => {
  let dir: string;
  let dataDir: string;
  let m: MasterProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-before-risky-'));
    dataDir = join(dir, 'data');
    m = await startMasterProcess({
      args: ['--data-dir', dataDir, '--address', '127.0.0.1', '--http-port', '0', '--tftp-port', '0'],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      timeoutMs: 30_000,
    });
    for (const name of ['via-api', 'via-console', 'via-cli']) await importImage(dataDir, name);
  });
  after(async () => {
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('through the API: the restore point is listed as auto, with the reason, and holds the image', async () => {
    assert.deepEqual(await autoPoints(m), []);
    assert.equal((await api(m, 'DELETE', '/images/via-api')).status, 204);
    assert.equal((await api(m, 'GET', '/images/via-api')).status, 404);
    const auto = await autoPoints(m);
    assert.equal(auto.length, 1);
    assert.match(auto[0]?.reason ?? '', /^before deleting image via-api \(sha256 [0-9a-f]{12}\)$/);
    assert.equal(auto[0]?.actor, 'admin');
    assert.ok(
      auto[0]?.images.some((i) => i.name === 'via-api'),
      'taken before the delete: its catalogue still has the image',
    );
    assert.equal((await api(m, 'DELETE', '/images/via-api')).status, 404);
    assert.equal((await autoPoints(m)).length, 1, 'a refused delete takes none');
  });

  it('through the console', async () => {
    const browser = new Browser(m?.url ?? '');
    assert.equal((await browser.login('admin', PASSWORD)).status, 303);
    const res = await browser.post('/images/via-console/delete', {
      _csrf: await browser.csrfToken(),
      confirm: 'via-console',
    });
    assert.match(decodeURIComponent(res.headers.get('location') ?? ''), /Deleted image via-console/);
    const auto = (await autoPoints(m)).filter((s) =>
      s.reason.startsWith('before deleting image via-console'),
    );
    assert.equal(auto.length, 1);
    assert.ok(auto[0]?.images.some((i) => i.name === 'via-console'));
  });

  it('through `corral image delete --data-dir` beside the running master, in the same list', async () => {
    const r = await cli(['image', 'delete', 'via-cli', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.err);
    const auto = (await autoPoints(m)).filter((s) => s.reason.startsWith('before deleting image via-cli'));
    assert.equal(auto.length, 1);
    assert.equal(auto[0]?.actor, 'cli');
    assert.ok(auto[0]?.images.some((i) => i.name === 'via-cli'));
  });
});

describe('with snapshots.beforeRisky false, an image delete takes none', { timeout: 120_000 }, () => {
  let dir: string;
  let dataDir: string;
  let configFile: string;
  let m: MasterProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-before-risky-off-'));
    dataDir = join(dir, 'data');
    configFile = join(dir, 'corral.json');
    writeFileSync(
      configFile,
      JSON.stringify({ address: '127.0.0.1', dataDir, snapshots: { beforeRisky: false } }),
    );
    m = await startMasterProcess({
      args: ['--config', configFile, '--http-port', '0', '--tftp-port', '0'],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      timeoutMs: 30_000,
    });
    for (const name of ['off-api', 'off-cli']) await importImage(dataDir, name);
  });
  after(async () => {
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('neither through the API nor through the CLI given the master config', async () => {
    assert.equal((await api(m, 'DELETE', '/images/off-api')).status, 204);
    const r = await cli(['image', 'delete', 'off-cli', '--config', configFile]);
    assert.equal(r.code, 0, r.err);
    assert.equal((await api(m, 'GET', '/images/off-cli')).status, 404);
    const list = await api(m, 'GET', '/snapshots');
    assert.deepEqual(list.json['snapshots'], []);
  });
});
