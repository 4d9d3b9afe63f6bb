/**
 * The agent script run on the build host with busybox's own shell and applets: inventory against a
 * fake /proc and /sys (CORRAL_ROOT), JSON escaping of awkward strings, and the enlist protocol against a
 * local HTTP server (power actions in dry-run). The real boot is in test/integration/node-image-boot.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';
import { ENLIST_BODY_LIMIT_BYTES, EnlistSchema } from '../../master/nodes/inventory.js';

const AGENT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'node-images', 'agent');
const AGENT = join(AGENT_DIR, 'corral-agent');

let root: string;

async function put(rel: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), content);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'corral-agent-'));
  await put(
    'proc/cpuinfo',
    'processor\t: 0\nmodel name\t: Fake "Quoted" CPU \\ v2\n\nprocessor\t: 1\nmodel name\t: Fake "Quoted" CPU \\ v2\n',
  );
  await put('proc/meminfo', 'MemTotal:        1000 kB\nMemFree:          500 kB\n');
  await put('sys/firmware/efi/.keep', '');
  // Secure Boot on (issue 18): the EFI global variable as efivarfs shows it, 4 bytes of attributes + 1.
  await put(
    'sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c',
    Buffer.from([6, 0, 0, 0, 1]),
  );
  // virtio disk: serial in /sys/block/X/serial, no model.
  await put('sys/block/vda/size', '4194304\n');
  await put('sys/block/vda/serial', 'SER"1\\\n');
  await put('sys/block/vda/queue/rotational', '0\n');
  // SATA disk: model padded with spaces, serial only in VPD page 0x80 (4-byte header).
  await put('sys/block/sda/size', '1953525168\n');
  await put('sys/block/sda/device/model', 'QEMU HARDDISK   \n');
  await put(
    'sys/block/sda/device/vpd_pg80',
    Buffer.concat([Buffer.from([0, 0x80, 0, 10]), Buffer.from('  WD-123  ')]),
  );
  await put('sys/block/sda/queue/rotational', '1\n');
  // Not install targets.
  await put('sys/block/loop0/size', '100\n');
  await put('sys/block/sr0/size', '100\n');
  await put('sys/block/vdb/size', '0\n');
  await put('sys/class/net/eth0/address', '52:54:00:aa:bb:cc\n');
  await put('sys/class/net/eth0/carrier', '1\n');
  await put('sys/class/net/eth0/speed', '1000\n');
  await mkdir(join(root, 'sys/class/net/eth0/device'), { recursive: true });
  await put('sys/class/net/eth1/address', '52:54:00:aa:bb:cd\n');
  await put('sys/class/net/eth1/carrier', '0\n');
  await put('sys/class/net/eth1/speed', '-1\n');
  await mkdir(join(root, 'sys/class/net/eth1/device'), { recursive: true });
  await put('sys/class/net/lo/address', '00:00:00:00:00:00\n');
  await put('sys/class/dmi/id/sys_vendor', 'Acme\tCorp\n');
  await put('sys/class/dmi/id/product_name', 'Zürich \u0001Model\n');
  await put('sys/class/dmi/id/product_serial', '\n');
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const EXPECTED_INVENTORY = {
  cpu: { model: 'Fake "Quoted" CPU \\ v2', count: 2 },
  memoryBytes: 1024000,
  firmware: 'uefi',
  secureBoot: true,
  disks: [
    { name: 'sda', sizeBytes: 1953525168 * 512, serial: 'WD-123', model: 'QEMU HARDDISK', rotational: true },
    { name: 'vda', sizeBytes: 2 * 1024 ** 3, serial: 'SER"1\\', model: null, rotational: false },
  ],
  nics: [
    { name: 'eth0', mac: '52:54:00:aa:bb:cc', link: 'up', speedMbps: 1000 },
    { name: 'eth1', mac: '52:54:00:aa:bb:cd', link: 'down', speedMbps: null },
  ],
  dmi: { vendor: 'Acme\tCorp', product: 'Zürich Model', serial: null },
};

function agentEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'], CORRAL_ROOT: root, ...extra };
}

function runAgent(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'busybox',
      ['sh', AGENT, ...args],
      { env: agentEnv(env), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

test('the agent and init scripts parse with busybox sh', () => {
  for (const f of ['init', 'corral-agent', 'udhcpc.script'])
    execFileSync('busybox', ['sh', '-n', join(AGENT_DIR, f)]);
});

test('inventory from a fake /proc and /sys is valid JSON with the expected fields', async () => {
  const r = await runAgent(['inventory'], {});
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), EXPECTED_INVENTORY);
});

test('the enlist body wraps the inventory with mac and mode', async () => {
  const r = await runAgent(['body'], { CORRAL_MAC: '52:54:00:aa:bb:cc', CORRAL_MODE: 'discover' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    mac: '52:54:00:aa:bb:cc',
    mode: 'discover',
    inventory: EXPECTED_INVENTORY,
  });
});

/** An enlist endpoint on loopback answering with `replies` in turn (the last repeats). */
async function enlistServer(replies: string[]): Promise<{ server: Server; url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/api/v1/enlist');
      assert.equal(req.headers['content-type'], 'application/json');
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(replies[Math.min(bodies.length - 1, replies.length - 1)]);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, bodies };
}

test('discover: posts, waits pollSeconds on "wait", then powers off (dry run)', async () => {
  const work = await mkdtemp(join(tmpdir(), 'corral-agent-work-'));
  const { server, url, bodies } = await enlistServer([
    '{"action":"wait","pollSeconds":1,"node":{"name":"node-3","state":"discovered"}}',
    '{"action":"poweroff","node":{"name":"node-3","state":"discovered"}}',
  ]);
  try {
    const r = await runAgent(['discover'], {
      CORRAL_SERVER: `${url}/`,
      CORRAL_MAC: '52:54:00:aa:bb:cc',
      CORRAL_MODE: 'discover',
      CORRAL_DRY_RUN: '1',
      CORRAL_WORK: work,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(bodies.length, 2);
    assert.deepEqual(bodies[0], {
      mac: '52:54:00:aa:bb:cc',
      mode: 'discover',
      inventory: EXPECTED_INVENTORY,
    });
    assert.match(r.stdout, /corral: enlisted as node-3\n/);
    assert.match(r.stdout, /corral: action wait\ncorral: action poweroff\ncorral: dry-run poweroff\n/);
    assert.equal(r.stdout.match(/enlisted as/g)?.length, 1);
  } finally {
    server.close();
    await rm(work, { recursive: true, force: true });
  }
});

test('discover: a "wait" that never ends is bounded by CORRAL_MAX_POLLS, then power off', async () => {
  const work = await mkdtemp(join(tmpdir(), 'corral-agent-work-'));
  const { server, url, bodies } = await enlistServer(['{"action":"wait","pollSeconds":1}']);
  try {
    const r = await runAgent(['discover'], {
      CORRAL_SERVER: url,
      CORRAL_MAC: '52:54:00:aa:bb:cc',
      CORRAL_DRY_RUN: '1',
      CORRAL_MAX_POLLS: '2',
      CORRAL_WORK: work,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(bodies.length, 3);
    assert.match(r.stdout, /still waiting after 2 polls; powering off\ncorral: dry-run poweroff/);
  } finally {
    server.close();
    await rm(work, { recursive: true, force: true });
  }
});

test('discover: an unreachable master is retried a bounded number of times', async () => {
  const work = await mkdtemp(join(tmpdir(), 'corral-agent-work-'));
  try {
    const r = await runAgent(['discover'], {
      CORRAL_SERVER: 'http://127.0.0.1:1',
      CORRAL_MAC: '52:54:00:aa:bb:cc',
      CORRAL_DRY_RUN: '1',
      CORRAL_POST_TRIES: '2',
      CORRAL_MAX_BACKOFF: '1',
      CORRAL_WORK: work,
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /enlist attempt 1 of 2 failed/);
    assert.match(r.stdout, /enlist attempt 2 of 2 failed/);
    assert.match(r.stdout, /corral: error master unreachable at http:\/\/127\.0\.0\.1:1\/api\/v1\/enlist/);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('discover: a reply without a known action is an error, not a loop', async () => {
  const work = await mkdtemp(join(tmpdir(), 'corral-agent-work-'));
  const { server, url } = await enlistServer(['{"error":{"code":"BODY_INVALID"}}']);
  try {
    const r = await runAgent(['discover'], { CORRAL_SERVER: url, CORRAL_DRY_RUN: '1', CORRAL_WORK: work });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /corral: action none\ncorral: error unexpected reply from the master/);
  } finally {
    server.close();
    await rm(work, { recursive: true, force: true });
  }
});

test('install mode without the installer tools initrd, sharedroot and unknown arguments fail clearly', async () => {
  // The build host has no /opt/corral/bin/corral-install: the agent must say which initrd is missing.
  const install = await runAgent(['install'], {});
  assert.equal(install.code, 3);
  assert.match(
    install.stdout,
    /corral: error install mode needs the installer tools initrd \(\/opt\/corral\/bin\/corral-install missing\)/,
  );
  // /init hands sharedroot to corral-sharedroot (it must stay PID 1) before it would run the agent, so
  // the agent has no such mode.
  const init = readFileSync(join(AGENT_DIR, 'init'), 'utf8');
  const handOver = init.indexOf('[ "$MODE" = sharedroot ] && exec /usr/sbin/corral-sharedroot');
  assert.ok(handOver > 0 && handOver < init.indexOf('/usr/sbin/corral-agent "$MODE"'));
  for (const args of [['sharedroot'], ['dance']]) {
    const bad = await runAgent(args, {});
    assert.equal(bad.code, 64, args[0]);
    assert.match(bad.stderr, /usage: corral-agent discover\|install\|credential\|inventory\|body/);
  }
});

test('what the real agent sends passes the strict enlist schema, well under the body limit', async () => {
  // The fake tree above (awkward strings, two disks, two NICs) and this build host's real /proc and /sys
  // (CORRAL_ROOT empty): the schema must accept every inventory the agent prints.
  for (const root of [undefined, '']) {
    const env: Record<string, string> = { CORRAL_MAC: '52:54:00:aa:bb:cc', CORRAL_MODE: 'discover' };
    const r = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        'busybox',
        ['sh', AGENT, 'body'],
        { env: { ...agentEnv(env), ...(root === undefined ? {} : { CORRAL_ROOT: root }) }, timeout: 60_000 },
        (err, stdout) => resolve({ code: err ? -1 : 0, stdout }),
      ),
    );
    assert.equal(r.code, 0);
    const parsed = EnlistSchema.safeParse(JSON.parse(r.stdout));
    assert.ok(
      parsed.success,
      `${root === '' ? 'host' : 'fake'} inventory: ${JSON.stringify(parsed.error?.issues)}`,
    );
    assert.ok(
      Buffer.byteLength(r.stdout) < ENLIST_BODY_LIMIT_BYTES / 8,
      `${Buffer.byteLength(r.stdout)} bytes`,
    );
  }
});

test('credential: kept 0600 from the reply that issues it, sent as Bearer, dropped after a 403', async () => {
  const work = await mkdtemp(join(tmpdir(), 'corral-agent-work-'));
  const cred = 'ab'.repeat(32);
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(req.headers.authorization);
      const n = seen.length;
      if (n === 2) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"NODE_CREDENTIAL_INVALID"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        n === 1
          ? `{"action":"wait","pollSeconds":1,"node":{"name":"node-1","state":"discovered"},"credential":"${cred}"}`
          : '{"action":"poweroff","node":{"name":"node-1","state":"discovered"}}',
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const r = await runAgent(['discover'], {
      CORRAL_SERVER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      CORRAL_MAC: '52:54:00:aa:bb:cc',
      CORRAL_DRY_RUN: '1',
      CORRAL_WORK: work,
      CORRAL_MAX_BACKOFF: '1',
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // 1: no credential yet; 2: the issued one (refused); 3: none again, so the master may issue a new one.
    assert.deepEqual(seen, [undefined, `Bearer ${cred}`, undefined]);
    assert.match(r.stdout, /corral: credential received\n/);
    assert.match(r.stdout, /corral: credential refused; asking for a new one\n/);
  } finally {
    server.close();
    await rm(work, { recursive: true, force: true });
  }
});

test('credential subcommand: one enlistment, the credential file 0600, the reply action not followed', async () => {
  const work = await mkdtemp(join(tmpdir(), 'corral-agent-work-'));
  const cred = 'cd'.repeat(32);
  const { server, url, bodies } = await enlistServer([
    `{"action":"reboot","node":{"name":"node-1","state":"diskless"},"credential":"${cred}"}`,
  ]);
  try {
    const r = await runAgent(['credential'], {
      CORRAL_SERVER: url,
      CORRAL_MAC: '52:54:00:aa:bb:cc',
      CORRAL_MODE: 'sharedroot',
      CORRAL_WORK: work,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(bodies.length, 1);
    assert.equal((bodies[0] as { mode: string }).mode, 'sharedroot');
    assert.equal(readFileSync(join(work, 'credential'), 'utf8'), `${cred}\n`);
    assert.equal(statSync(join(work, 'credential')).mode & 0o777, 0o600);
    assert.doesNotMatch(r.stdout, /dry-run|reboot/);
    // A reply without a credential (and none kept) is an error, not a silent success.
    await rm(join(work, 'credential'));
    const { server: s2, url: u2 } = await enlistServer(['{"action":"wait","pollSeconds":1}']);
    try {
      const r2 = await runAgent(['credential'], {
        CORRAL_SERVER: u2,
        CORRAL_MAC: '52:54:00:aa:bb:cc',
        CORRAL_WORK: work,
      });
      assert.equal(r2.code, 1);
      assert.match(r2.stdout, /corral: error the master gave no credential/);
    } finally {
      s2.close();
    }
  } finally {
    server.close();
    await rm(work, { recursive: true, force: true });
  }
});
