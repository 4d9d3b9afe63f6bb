/**
 * `corral data-set` and `corral data-snapshot` against a real `corral master` process (its Basic-auth API
 * on loopback, the feature mounted by master.ts), through a profile saved by `corral login`: declare a data
 * set on a role with a password from a file, see it listed with the password sealed and never printed,
 * refuse a snapshot of a data set that covers no node and a restore without the name typed back, delete.
 * The snapshots themselves are tested over SSH in data-snapshots.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, exitOf, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';

const PASSWORD = 'data-set-cli-test-password';
const root = mkdtempSync(join(tmpdir(), 'corral-dataset-cli-'));
const home = join(root, 'home');
let master: MasterProcess | undefined;

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

function cli(args: string[], input = ''): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, HOME: home };
  delete env['CORRAL_CONFIG_DIR'];
  delete env['XDG_CONFIG_HOME'];
  const child = spawn('node', [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return exitOf(child, 60_000).then((code) => ({ code, stdout, stderr }));
}

describe('corral data-set / data-snapshot through a running master', { timeout: 180_000 }, () => {
  before(async () => {
    const configFile = join(root, 'corral.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir: join(root, 'data'),
        address: '127.0.0.1',
        http: { port: 0, bind: '127.0.0.1' },
        tftp: { enabled: false },
        lb: { enabled: false },
        monitor: { enabled: false },
      }),
    );
    master = await startMasterProcess({
      args: ['--config', configFile],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    });
    const login = await cli(['login', master.url, '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(login.code, 0, login.stderr);
  });

  after(async () => {
    await master?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('declares, lists, refuses what cannot be done, deletes', async () => {
    const pw = join(root, 'pw.txt');
    writeFileSync(pw, 'sealed-by-the-master\n', { mode: 0o600 });
    const created = await cli([
      'data-set',
      'create',
      'orders',
      '--kind',
      'postgresql',
      '--path',
      '/var/lib/postgresql/15/main',
      '--role',
      'db',
      '--host',
      '/var/run/postgresql',
      '--user',
      'postgres',
      '--password-file',
      pw,
      '--daily',
      '--keep-daily',
      '3',
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /declared orders \(postgresql \/var\/lib\/postgresql\/15\/main\)/);

    const shown = await cli(['data-set', 'show', 'orders', '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const d = JSON.parse(shown.stdout) as Record<string, unknown>;
    assert.equal(d['hasPassword'], true);
    assert.deepEqual(d['schedule'], { hourly: false, daily: true, weekly: false });
    assert.equal((d['retention'] as { keepDaily: number }).keepDaily, 3);
    assert.ok(
      !shown.stdout.includes('sealed-by-the-master') && !('secret' in d),
      'the password is never shown',
    );

    const list = await cli(['data-set', 'list']);
    assert.match(
      list.stdout,
      /^orders {2}postgresql {2}\/var\/lib\/postgresql\/15\/main {2}role db {2}nodes: -$/m,
    );

    const dup = await cli([
      'data-set',
      'create',
      'orders',
      '--kind',
      'files',
      '--path',
      '/srv',
      '--role',
      'db',
    ]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /exists/);
    const bad = await cli(['data-set', 'create', 'x', '--kind', 'files', '--path', 'srv', '--role', 'db']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /path: must be an absolute path/);

    const snap = await cli(['data-set', 'snapshot', 'orders']);
    assert.equal(snap.code, 1);
    assert.match(snap.stderr, /covers no node/);

    const none = await cli(['data-snapshot', 'list']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, 'no data snapshots\n');
    const noConfirm = await cli(['data-snapshot', 'restore', 'orders-x', '--confirm', 'other']);
    assert.equal(noConfirm.code, 1);
    assert.match(noConfirm.stderr, /--confirm orders-x/);

    const deleted = await cli(['data-set', 'delete', 'orders']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await cli(['data-set', 'list'])).stdout, 'no data sets\n');
  });
});
