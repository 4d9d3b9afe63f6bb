/**
 * End to end, OS deployment (issue 5): a BIOS lab VM with a 3 GiB virtio disk PXE-boots, enlists, and is
 * deployed with the real Debian image (node-images/os-image.ts, cached in /var/cache/corral).
 *   1. failure path: the stored image file is corrupted (one byte flipped) → the installer's checksum
 *      check fails → node `failed` with the reason in the API; the installer falls back to polling;
 *   2. retry: the file is restored, deploy again → installer → reboot → GRUB from the VM's own disk →
 *      the installed system's agent reports → `deployed`; `ssh root@IP hostname` with the master's key
 *      answers the name Corral gave it.
 * Real peers: QEMU/SeaBIOS/iPXE, the Linux installer environment, Debian's GRUB and systemd, OpenSSH.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, openSync, readSync, writeSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import { basic } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';
import { CLI } from '../../master/lab/master-process.js';

const exec = promisify(execFile);
const DEPLOY_TIMEOUT_MS = 900_000;

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  ip: string | null;
  stateReason: string | null;
}
interface ApiDeployment {
  id: number;
  status: string;
  message: string | null;
  logTail: string | null;
  bytesPerSec: number;
  createdAt: string;
  updatedAt: string;
}

let lab: Lab | undefined;
let dir = '';
let dataDir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-deploy-'));
  dataDir = join(dir, 'master');
  lab = await startLab({
    dir,
    vms: [{ firmware: 'bios' }],
    logger: silentLogger(),
    memoryMb: 768,
    diskGb: 3,
    subnetPrefix: '10.97.0',
    masterConfig: {
      nodes: { namePattern: 'dep-{n}', discoverAction: 'wait', pollSeconds: 3 },
      deploy: { stallSeconds: 600 },
    },
  });
});

after(async () => {
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(`${lab!.hostUrl}/api/v1${path}`, {
    method,
    headers: { ...basic('admin', lab!.adminPassword), 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: (await r.json().catch(() => ({}))) as T };
}

async function node(): Promise<ApiNode | undefined> {
  const r = await api<{ nodes: ApiNode[] }>('GET', '/nodes');
  return r.json.nodes?.[0];
}

function diag(): string {
  const vm = lab!.vms[0]!;
  return `\n--- VM serial (last 4000 chars):\n${vm.console().slice(-4000)}\n--- master log tail:\n${lab!.master.logs().slice(-3000)}`;
}

async function waitState(state: string, timeoutMs: number): Promise<ApiNode> {
  try {
    return await waitFor(
      `node to become ${state}`,
      async () => {
        const n = await node().catch(() => undefined);
        return n?.state === state ? n : undefined;
      },
      timeoutMs,
      2000,
    );
  } catch (err) {
    return assert.fail(`${(err as Error).message}; now ${(await node())?.state}${diag()}`);
  }
}

/** Flips one byte near the end of the stored image; returns a function that puts it back. */
function corrupt(path: string): () => void {
  const pos = statSync(path).size - 4096;
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, pos);
  const original = b[0]!;
  writeSync(fd, Buffer.from([original ^ 0xff]), 0, 1, pos);
  closeSync(fd);
  return () => {
    const fd2 = openSync(path, 'r+');
    writeSync(fd2, Buffer.from([original]), 0, 1, pos);
    closeSync(fd2);
  };
}

test('deploy: bad checksum fails with the reason, retry deploys Debian and SSH answers the hostname', async () => {
  const l = lab!;
  const discovered = await waitState('discovered', 300_000);

  // The real Debian image: built once (debootstrap, cached), imported into this lab's master.
  const t0 = Date.now();
  const { stdout } = await exec(
    'node',
    [CLI, 'image', 'build-debian', '--name', 'debian-12', '--data-dir', dataDir, '--json'],
    { timeout: 1_800_000 },
  );
  const image = JSON.parse(stdout) as { sha256: string; file: string; sizeBytes: number };
  console.log(`# image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${image.sizeBytes} bytes`);

  // 1. Failure path: a corrupted image file on the master.
  const restore = corrupt(join(dataDir, 'images', image.file));
  let r = await api<{ deployment: ApiDeployment }>('POST', `/nodes/${discovered.name}/deploy`, {
    image: 'debian-12',
  });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  const failed = await waitState('failed', DEPLOY_TIMEOUT_MS);
  restore();
  assert.match(failed.stateReason ?? '', /checksum mismatch/);
  const deps = await api<{ deployments: ApiDeployment[] }>('GET', `/nodes/${discovered.name}/deployments`);
  assert.equal(deps.json.deployments[0]?.status, 'failed');
  assert.match(deps.json.deployments[0]?.logTail ?? '', /checksum mismatch/);
  console.log(`# failure path: ${failed.stateReason}`);

  // 2. Retry: deploy again from `failed`; the installer's fallback poll gets `reboot`.
  const started = Date.now();
  r = await api('POST', `/nodes/${discovered.name}/deploy`, { image: 'debian-12' });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  const deployed = await waitState('deployed', DEPLOY_TIMEOUT_MS);
  const seconds = (Date.now() - started) / 1000;
  const last = (await api<{ deployments: ApiDeployment[] }>('GET', `/nodes/${discovered.name}/deployments`))
    .json.deployments[0]!;
  assert.equal(last.status, 'booted');
  console.log(
    `# deployed ${deployed.name} in ${seconds.toFixed(0)} s (last reported rate ${(last.bytesPerSec / 2 ** 20).toFixed(1)} MiB/s)`,
  );
  assert.ok(deployed.ip, 'deployed node has an address');
  // The VM booted from its disk: iPXE was answered with the local-boot script.
  assert.match(l.master.logs(), new RegExp(`"mac":"${deployed.mac}"[^\\n]*"template":"ipxe/local.hbs"`));

  // 3. SSH with the master's key answers the hostname Corral gave it.
  const ssh = await waitFor(
    'ssh to the deployed node',
    async () => {
      try {
        const res = await exec(
          'ip',
          [
            'netns',
            'exec',
            l.masterNs,
            'ssh',
            '-i',
            join(dataDir, 'ssh', 'id_ed25519'),
            '-o',
            'StrictHostKeyChecking=no',
            '-o',
            'UserKnownHostsFile=/dev/null',
            '-o',
            'BatchMode=yes',
            '-o',
            'ConnectTimeout=10',
            `root@${deployed.ip}`,
            'hostname',
          ],
          { timeout: 30_000 },
        );
        return res.stdout.trim();
      } catch {
        return undefined;
      }
    },
    120_000,
    3000,
  ).catch((err: Error) => assert.fail(`${err.message}${diag()}`));
  assert.equal(ssh, deployed.name);

  // The image is in use now: delete is refused.
  const del = await api<{ error: { code: string } }>('DELETE', '/images/debian-12');
  assert.equal(del.status, 409);
  assert.equal(del.json.error.code, 'IMAGE_IN_USE');
});
