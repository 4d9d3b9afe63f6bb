/**
 * Restore points end to end on a real `corral master` process (loopback, port 0): the REST API, the
 * `corral snapshot` CLI against the running master (--url) and against its stopped data directory
 * (--data-dir), and the console with its typed confirmation.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Browser, hiddenValue } from '../helpers/browser.js';
import { CLI, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { api as apiCall } from '../helpers/api.js';

const PASSWORD = 'snapshot test password';

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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

describe('restore points through a running master', { timeout: 120_000 }, () => {
  let dataDir: string;
  let m: MasterProcess | undefined;
  const api = (method: string, path: string, body?: unknown) =>
    apiCall<Record<string, unknown>>({ url: m?.url ?? '', password: PASSWORD }, method, path, body);

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'corral-snapshot-master-'));
    m = await startMasterProcess({
      args: ['--data-dir', dataDir, '--address', '127.0.0.1', '--http-port', '0', '--tftp-port', '0'],
      env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
      timeoutMs: 30_000,
    });
  });
  after(async () => {
    await m?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates, diffs and restores through the API; restore asks for the name typed back', async () => {
    const enl = await fetch(`${m?.url}/api/v1/enlist`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        mac: '52:54:00:00:09:01',
        inventory: { memoryBytes: 536870912, cpu: { count: 2 } },
      }),
    });
    assert.equal(enl.status, 201);
    const created = await api('POST', '/snapshots', { name: 'base', note: 'one node' });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const snap = created.json['snapshot'] as { id: string; name: string; schemaVersion: number };
    assert.equal(snap.name, 'base');

    assert.equal((await api('DELETE', '/nodes/node-1')).status, 204);
    const diff = await api('GET', `/snapshots/base/diff`);
    const tables = diff.json['tables'] as { table: string; removed: number; rows: { key: string }[] }[];
    assert.deepEqual(
      tables.filter((t) => t.table === 'nodes').map((t) => [t.removed, t.rows[0]?.key]),
      [[1, '52:54:00:00:09:01']],
    );

    const unconfirmed = await api('POST', `/snapshots/${snap.id}/restore`, {});
    assert.equal(unconfirmed.status, 400);
    assert.equal((unconfirmed.json['error'] as { code: string }).code, 'SNAPSHOT_CONFIRMATION_REQUIRED');
    const restored = await api('POST', `/snapshots/${snap.id}/restore`, { confirm: 'base' });
    assert.equal(restored.status, 200, JSON.stringify(restored.json));
    const node = await api('GET', '/nodes/node-1');
    assert.equal(node.status, 200, 'the deleted node is back');
    const list = await api('GET', '/snapshots');
    const kinds = (list.json['snapshots'] as { kind: string }[]).map((s) => s.kind).sort();
    assert.deepEqual(kinds, ['manual', 'safety']);
    assert.equal((await api('GET', '/snapshots/nope')).status, 404);
  });

  it('the CLI talks to the running master with --url and refuses an offline restore beside it', async () => {
    const env = { CORRAL_URL: m?.url ?? '', CORRAL_PASSWORD: PASSWORD };
    const list = await cli(['snapshot', 'list'], env);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /manual\s+base\s+one node/);
    const created = await cli(['snapshot', 'create', '--name', 'from-cli'], env);
    assert.equal(created.code, 0, created.err);
    const diff = await cli(['snapshot', 'diff', 'from-cli'], env);
    assert.match(diff.out, /nothing a restore would change/);
    assert.match(
      diff.out,
      /events: \+1 -0 ~0 \(kept as is by a restore\)/,
      'its own creation event is newer than the copy',
    );
    const noConfirm = await cli(['snapshot', 'restore', 'from-cli'], env);
    assert.equal(noConfirm.code, 1);
    assert.match(noConfirm.err, /--confirm from-cli/);
    const offline = await cli([
      'snapshot',
      'restore',
      'from-cli',
      '--confirm',
      'from-cli',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(offline.code, 1);
    assert.match(offline.err, /is running on this data directory/);
    const preview = await cli(
      [
        'snapshot',
        'retention',
        '--keep-last',
        '0',
        '--keep-hourly',
        '0',
        '--keep-daily',
        '0',
        '--keep-weekly',
        '0',
      ],
      env,
    );
    assert.equal(preview.code, 0, preview.err);
    assert.match(preview.out, /preview \(nothing deleted/);
    assert.match(preview.out, /remove\s+\S+\s+safety/);
    assert.match(preview.out, /keep\s+\S+\s+manual/);
  });

  it('the console lists restore points, shows the diff, and restores only with the name typed', async () => {
    const browser = new Browser(m?.url ?? '');
    assert.equal((await browser.login('admin', PASSWORD)).status, 303);
    const listPage = await (await browser.get('/snapshots')).text();
    assert.match(listPage, /from-cli/);
    const id = /data-snapshot="([^"]+)"[^>]*>\s*<th scope="row"><a href="\/snapshots\/[^"]+">from-cli</.exec(
      listPage,
    )?.[1];
    assert.ok(id, 'the list links the restore point');
    const csrf = hiddenValue(listPage, '_csrf');
    const detail = await browser.get(`/snapshots/${id}`);
    assert.equal(detail.status, 200);
    const detailHtml = await detail.text();
    assert.match(detailHtml, /Nothing a restore would change/);
    assert.match(detailHtml, /Type <strong class="mono">from-cli<\/strong> to confirm/);

    const wrong = await browser.post(`/snapshots/${id}/restore`, { _csrf: csrf, confirm: 'from-cl' });
    assert.equal(wrong.status, 400);
    assert.match(await wrong.text(), /Type the restore point&#x27;s name &quot;from-cli&quot; exactly/);
    const noCsrf = await browser.post(`/snapshots/${id}/restore`, { confirm: 'from-cli' });
    assert.equal(noCsrf.status, 403);

    const ok = await browser.post(`/snapshots/${id}/restore`, { _csrf: csrf, confirm: 'from-cli' });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /The store is back at restore point <strong>from-cli<\/strong>/);

    const preview = await browser.post('/snapshots/retention', {
      _csrf: csrf,
      keepLast: '1',
      keepHourly: '0',
      keepDaily: '0',
      keepWeekly: '0',
      action: 'preview',
    });
    const html = await preview.text();
    assert.match(html, /Preview only: this policy keeps \d+ and removes 1/);
    const before = ((await api('GET', '/snapshots')).json['snapshots'] as unknown[]).length;
    assert.equal(before, 4, 'preview deleted nothing');
  });

  it('shows each file with size and sha256, and refuses a restore point with a damaged file everywhere', async () => {
    const created = await api('POST', '/snapshots', { name: 'rot' });
    assert.equal(created.status, 201);
    const snap = created.json['snapshot'] as {
      id: string;
      createdAt: string;
      files: Record<string, { bytes: number; sha256: string }>;
    };
    const db = join(dataDir, 'snapshots', snap.id, 'corral.db');
    assert.equal(snap.files['corral.db']?.bytes, statSync(db).size);
    assert.equal(
      snap.files['corral.db']?.sha256,
      createHash('sha256').update(readFileSync(db)).digest('hex'),
    );
    const shown = await api('GET', `/snapshots/${snap.id}`);
    assert.deepEqual((shown.json['snapshot'] as typeof snap).files, snap.files);
    const env = { CORRAL_URL: m?.url ?? '', CORRAL_PASSWORD: PASSWORD };
    const list = await cli(['snapshot', 'list'], env);
    assert.match(
      list.out,
      new RegExp(
        `${snap.id}  ${snap.createdAt}  +[\\d.]+ MiB  ${snap.files['corral.db']?.sha256.slice(0, 12)}  manual +rot`,
      ),
    );
    const show = await cli(['snapshot', 'show', 'rot'], env);
    assert.match(
      show.out,
      new RegExp(`corral\\.db +${snap.files['corral.db']?.bytes}  sha256 ${snap.files['corral.db']?.sha256}`),
    );
    const browser = new Browser(m?.url ?? '');
    assert.equal((await browser.login('admin', PASSWORD)).status, 303);
    const page = await (await browser.get(`/snapshots/${snap.id}`)).text();
    assert.match(
      page,
      new RegExp(`corral\\.db</th><td>[^<]+</td><td class="mono">${snap.files['corral.db']?.sha256}`),
    );

    // One flipped bit in the stored config: refused by the API, the CLI and the console, nothing changed.
    const config = join(dataDir, 'snapshots', snap.id, 'config.json');
    const bytes = readFileSync(config);
    bytes[10] = (bytes[10] ?? 0) ^ 0x01;
    writeFileSync(config, bytes);
    const before = (await api('GET', '/snapshots')).json['snapshots'] as unknown[];
    const viaApi = await api('POST', `/snapshots/${snap.id}/restore`, { confirm: 'rot' });
    assert.equal(viaApi.status, 409);
    const error = viaApi.json['error'] as { code: string; message: string; details: { file: string } };
    assert.equal(error.code, 'SNAPSHOT_CORRUPT');
    assert.equal(error.details.file, 'config.json');
    const viaCli = await cli(['snapshot', 'restore', 'rot', '--confirm', 'rot'], env);
    assert.equal(viaCli.code, 1);
    assert.match(viaCli.err, /restore point rot \(\S+\) is damaged: config\.json has sha256/);
    const viaConsole = await browser.post(`/snapshots/${snap.id}/restore`, {
      _csrf: hiddenValue(page, '_csrf'),
      confirm: 'rot',
    });
    assert.equal(viaConsole.status, 400);
    assert.match(await viaConsole.text(), /is damaged: config\.json has sha256/);
    assert.equal(
      ((await api('GET', '/snapshots')).json['snapshots'] as unknown[]).length,
      before.length,
      'no safety restore point: nothing was restored',
    );
    assert.equal((await api('GET', '/nodes/node-1')).status, 200);
  });

  it('with the master stopped, the CLI restores on the data directory', async () => {
    assert.equal(await m?.stop(), 0);
    m = undefined;
    const list = await cli(['snapshot', 'list', '--data-dir', dataDir, '--json']);
    assert.equal(list.code, 0, list.err);
    assert.equal((JSON.parse(list.out) as unknown[]).length, 5);
    const r = await cli([
      'snapshot',
      'restore',
      'base',
      '--confirm',
      'base',
      '--data-dir',
      dataDir,
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { mode: string }).mode, 'rows');
  });
});
