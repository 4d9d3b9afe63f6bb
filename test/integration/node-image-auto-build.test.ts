/**
 * A plain `corral master` on a fresh data directory whose path has a dot component (`.lab/data`, as
 * `npm start` uses): it builds the node environment itself, in the background, and says so in
 * GET /api/v1/health, on the dashboard and in the boot script of a waiting node; then serves the kernel
 * and initrd (whole, by Range, 416 past the end), an OS image and the TFTP loaders from that directory.
 * A second master whose kernel cache cannot be created shows the failure with its reason and a retry time.
 *
 * Real peers: the `corral` CLI as a child process, curl, tftp-hpa, and the builder with the Debian kernel
 * in /var/cache/corral (scripts/setup.sh downloads it; CORRAL_CACHE_DIR overrides).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, exitOf, startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { Browser } from '../helpers/browser.js';
import type { NodeImageStatus } from '../../master/boot/node-image-builder.js';

const CACHE_DIR = process.env['CORRAL_CACHE_DIR'] ?? '/var/cache/corral';
/** A build from the cached kernel takes 5-15 s here; the bound leaves room for a loaded machine. */
const BUILD_TIMEOUT_MS = 240_000;
const PASSWORD = 'auto-build-test-password';
const UNKNOWN_MAC = '52:54:00:ab:cd:01';
const PUBLIC_URL = 'http://corral.test:8123';

const root = mkdtempSync(join(tmpdir(), 'corral-autobuild-'));
const running: MasterProcess[] = [];
/**
 * This run's own cache: the kernels are the shared cache's (no second download), but no built image is, so
 * the first master really builds (stages seen) and the second copies that build from the cache.
 */
const RUN_CACHE = join(root, 'cache');
mkdirSync(RUN_CACHE, { recursive: true });
mkdirSync(join(CACHE_DIR, 'kernels'), { recursive: true });
symlinkSync(join(CACHE_DIR, 'kernels'), join(RUN_CACHE, 'kernels'));

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function runCmd(
  cmd: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | string; out: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return exitOf(child, timeoutMs).then((code) => ({ code, out }));
}

async function startOn(dataDir: string, nodeImage: Record<string, unknown>): Promise<MasterProcess> {
  const configPath = join(dataDir, '..', `master-${running.length}.json`);
  writeFileSync(
    configPath,
    JSON.stringify({
      dataDir,
      address: '127.0.0.1',
      // Port 0 picks a free port after the URL nodes are given is made, so that URL is named here.
      http: { port: 0, bind: '127.0.0.1', publicUrl: PUBLIC_URL },
      tftp: { port: 0 },
      console: { https: false },
      monitor: { enabled: false },
      nodeImage,
    }),
  );
  const m = await startMasterProcess({
    args: ['--config', configPath],
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD, CORRAL_LOG_LEVEL: 'info' },
    timeoutMs: 30_000,
  });
  running.push(m);
  return m;
}

async function health(
  m: MasterProcess,
): Promise<{ nodeImage: NodeImageStatus; tftp: { port: number } | false }> {
  const res = await fetch(`${m.url}/api/v1/health`);
  assert.equal(res.status, 200);
  return (await res.json()) as { nodeImage: NodeImageStatus; tftp: { port: number } | false };
}

async function ipxe(m: MasterProcess): Promise<string> {
  const res = await fetch(`${m.url}/boot/ipxe?mac=${UNKNOWN_MAC}`);
  assert.equal(res.status, 200);
  return res.text();
}

after(async () => {
  for (const m of running) await m.stop('SIGTERM', 10_000).catch(() => m.stop('SIGKILL', 3000));
  rmSync(root, { recursive: true, force: true });
});

describe('corral master builds its node environment (data under .lab/)', () => {
  const dataDir = join(root, '.lab', 'data');
  let m: MasterProcess;
  let image: { sha256: string; sizeBytes: number };
  const seen: NodeImageStatus[] = [];
  let buildingScript = '';
  let buildingKernel: { status: number; body: string } | undefined;
  let buildingDashboard = '';
  let browser: Browser;

  before(async () => {
    // An OS image in the catalogue, so /boot/images/<sha256> is served from the dotted directory too.
    const tree = join(root, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'os-release'), 'ID=debian\nVERSION_ID="12"\n');
    writeFileSync(join(tree, 'hello'), 'served from a dotted data directory\n');
    const imported = await runCmd('node', [
      CLI,
      'image',
      'import',
      tree,
      '--name',
      'dot-test',
      '--data-dir',
      dataDir,
      '--json',
    ]);
    assert.equal(imported.code, 0, imported.out);
    image = JSON.parse(imported.out) as { sha256: string; sizeBytes: number };
    assert.equal(existsSync(join(dataDir, 'node-image')), false, 'a fresh data directory has no node image');

    m = await startOn(dataDir, { cacheDir: RUN_CACHE });
    browser = new Browser(m.url);
    assert.equal((await browser.login('admin', PASSWORD)).status, 303);

    // Poll until ready (bounded); while nothing is served, look at what a waiting node and the admin see.
    const deadline = Date.now() + BUILD_TIMEOUT_MS;
    for (;;) {
      const s = (await health(m)).nodeImage;
      seen.push(s);
      if (s.state === 'ready' || s.state === 'failed') break;
      if (s.state === 'building' && !s.available && !buildingScript) {
        buildingScript = await ipxe(m);
        const k = await fetch(`${m.url}/boot/node/vmlinuz`);
        buildingKernel = { status: k.status, body: await k.text() };
        buildingDashboard = await (await browser.get('/')).text();
      }
      if (Date.now() > deadline)
        throw new Error(`no ready node image after ${BUILD_TIMEOUT_MS} ms:\n${m.logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  it('reports building (with stage and percent), then ready, in GET /api/v1/health and the log', () => {
    const first = seen[0];
    assert.equal(first?.state, 'building', JSON.stringify(seen[0]));
    assert.equal(first.available, false);
    const last = seen.at(-1);
    assert.equal(last?.state, 'ready', `${JSON.stringify(last)}\n${m.logs().slice(-4000)}`);
    assert.equal(last.available, true);
    assert.match(last.kernelVersion ?? '', /^\d+\.\d+\.\d+-\d+-/);
    const stages = [...new Set(seen.filter((s) => s.state === 'building').map((s) => s.stage))];
    assert.ok(stages.length >= 2, `several stages seen while polling: ${stages.join(',')}`);
    const percents = seen.filter((s) => s.state === 'building').map((s) => s.percent ?? -1);
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'percent never goes back',
    );
    const logged = m
      .logs()
      .split('\n')
      .filter((l) => l.includes('"module":"node-image"'))
      .map((l) => JSON.parse(l) as { stage?: string; percent?: number; msg: string });
    assert.deepEqual(
      logged.filter((l) => l.msg === 'node environment build').map((l) => l.stage),
      ['kernel', 'inputs', 'modules', 'initramfs', 'writing', 'done'],
    );
    assert.ok(logged.some((l) => l.msg === 'node environment ready'));
  });

  it('while building, a waiting node is told so (no 404 loop), and the dashboard shows the stage', () => {
    assert.match(buildingScript, /^#!ipxe\n/);
    assert.match(
      buildingScript,
      /^echo Corral: Corral is building the node environment \((kernel|inputs|modules|initramfs|writing), \d+%\)$/m,
    );
    assert.match(buildingScript, /^echo Corral: retrying in 10 s$/m);
    assert.match(
      buildingScript,
      new RegExp(
        `^chain --autofree ${PUBLIC_URL}/boot/ipxe\\?mac=${UNKNOWN_MAC}&platform=\\$\\{platform\\} \\|\\| goto fallback$`,
        'm',
      ),
    );
    assert.doesNotMatch(buildingScript, /^kernel /m);
    assert.equal(buildingKernel?.status, 404);
    assert.match(buildingKernel?.body ?? '', /Corral is building the node environment/);
    assert.match(
      buildingDashboard,
      /<dt>Node environment<\/dt><dd data-node-image="building">building \((kernel|inputs|modules|initramfs|writing), \d+%\)<\/dd>/,
    );
  });

  it('once ready, an unknown MAC gets the discover script and the dashboard says ready', async () => {
    const script = await ipxe(m);
    assert.match(
      script,
      new RegExp(`^kernel ${PUBLIC_URL}/boot/node/vmlinuz initrd=initrd.img .*corral.mode=discover`, 'm'),
    );
    assert.match(script, new RegExp(`^initrd --name initrd.img ${PUBLIC_URL}/boot/node/initrd.img`, 'm'));
    const dash = await (await browser.get('/')).text();
    assert.match(dash, /<dd data-node-image="ready">ready \(kernel \d+\.\d+\.\d+-\d+-[a-z0-9-]+\)<\/dd>/);
  });

  it('serves the kernel and initrd from the dotted directory: whole (curl), by Range, 416 past the end', async () => {
    const manifest = JSON.parse(readFileSync(join(dataDir, 'node-image', 'manifest.json'), 'utf8')) as {
      files: Record<'kernel' | 'initrd', { sha256: string; size: number }>;
    };
    for (const [name, file] of [
      ['vmlinuz', manifest.files.kernel],
      ['initrd.img', manifest.files.initrd],
    ] as const) {
      const url = `${m.url}/boot/node/${name}`;
      const out = join(root, `fetched-${name}`);
      const curl = await runCmd('curl', ['-sS', '--fail', '-o', out, url]);
      assert.equal(curl.code, 0, curl.out);
      assert.equal(sha256(readFileSync(out)), file.sha256, `${name} byte-identical`);

      const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 100-199/${file.size}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), readFileSync(out).subarray(100, 200));

      const past = await fetch(url, { headers: { range: `bytes=${file.size}-` } });
      assert.equal(past.status, 416);
      assert.equal(past.headers.get('content-range'), `bytes */${file.size}`);
    }
  });

  it('serves an OS image and the TFTP loaders from the dotted directory; TFTP traversal is still refused', async () => {
    const res = await fetch(`${m.url}/boot/images/${image.sha256}`);
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), image.sha256);

    const h = await health(m);
    assert.ok(h.tftp, 'TFTP server running');
    const loader = join(root, 'undionly.kpxe');
    const got = await runCmd('tftp', [
      '127.0.0.1',
      String(h.tftp.port),
      '-m',
      'binary',
      '-c',
      'get',
      'undionly.kpxe',
      loader,
    ]);
    assert.equal(got.code, 0, got.out);
    assert.deepEqual(readFileSync(loader), readFileSync('/usr/lib/ipxe/undionly.kpxe'));

    const stolen = join(root, 'stolen.db');
    const refused = await runCmd('tftp', [
      '127.0.0.1',
      String(h.tftp.port),
      '-m',
      'binary',
      '-c',
      'get',
      '../corral.db',
      stolen,
    ]);
    assert.match(refused.out, /Access violation/i, refused.out);
    assert.ok(
      !existsSync(stolen) || readFileSync(stolen).length === 0,
      'nothing of the database left the root',
    );
  });
});

describe('a second data directory on the same machine', () => {
  it('copies the built node environment from the cache instead of building it again', async () => {
    const dataDir = join(root, 'second', 'data');
    mkdirSync(dataDir, { recursive: true });
    const m = await startOn(dataDir, { cacheDir: RUN_CACHE });
    const deadline = Date.now() + BUILD_TIMEOUT_MS;
    let s = (await health(m)).nodeImage;
    while (s.state !== 'ready') {
      if (s.state === 'failed' || Date.now() > deadline) throw new Error(`${JSON.stringify(s)}\n${m.logs()}`);
      await new Promise((r) => setTimeout(r, 200));
      s = (await health(m)).nodeImage;
    }
    assert.ok(m.logs().includes('"msg":"node image copied from the cache"'), m.logs());
    assert.ok(!m.logs().includes('"msg":"node image built"'), 'no second build');
    const first = readFileSync(join(root, '.lab', 'data', 'node-image', 'initrd.img'));
    assert.ok(readFileSync(join(dataDir, 'node-image', 'initrd.img')).equals(first), 'the same initrd');
  });
});

describe('a failing build is shown with its reason and retried', () => {
  it('health, boot script and log carry the reason and the next attempt', async () => {
    const dataDir = join(root, '.failing', 'data');
    mkdirSync(dataDir, { recursive: true });
    // A kernel cache that cannot be created: the builder fails at once, as it would on a read-only disk.
    const notADir = join(root, 'cache-is-a-file');
    writeFileSync(notADir, 'not a directory\n');
    const m = await startOn(dataDir, { cacheDir: notADir });
    const deadline = Date.now() + 60_000;
    let s = (await health(m)).nodeImage;
    while (s.state !== 'failed') {
      if (Date.now() > deadline) throw new Error(`no failure reported:\n${JSON.stringify(s)}\n${m.logs()}`);
      await new Promise((r) => setTimeout(r, 200));
      s = (await health(m)).nodeImage;
    }
    assert.equal(s.available, false);
    assert.equal(s.failures, 1);
    assert.match(s.reason ?? '', /ENOTDIR|EEXIST|not a directory/i);
    const retryIn = Date.parse(s.retryAt ?? '') - Date.now();
    assert.ok(retryIn > 20_000 && retryIn <= 30_000, `first retry about 30 s away (${retryIn} ms)`);

    const script = await ipxe(m);
    assert.match(script, /^echo Corral: the node environment build failed: .+, next attempt in \d+ s$/m);
    assert.match(script, /^echo Corral: retrying in 10 s$/m);
    assert.ok(
      m.logs().includes('"msg":"node environment build failed; will retry"'),
      'the failure is in the log',
    );
  });
});
