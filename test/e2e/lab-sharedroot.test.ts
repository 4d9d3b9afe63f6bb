/**
 * End to end (issue 6): two BIOS VMs PXE-boot and enlist; a shared root made from a small busybox tree
 * (test/helpers/sharedroot-tree.ts) is created through the API and both nodes are set diskless. Their
 * agents reboot them; they boot the Corral initramfs in shared-root mode, mount the master's read-only
 * export over NFSv4 from the real nfs-ganesha the master supervises (kernel NFS client in the VMs), put a
 * tmpfs overlay on top, apply their identity and switch_root into busybox init. Checked: same root id
 * on both, own hostname / machine-id / host key, a per-node write stays local, the master's tree is
 * unchanged, the boot reports reached the API, and the time from reboot to the login prompt.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../../master/lab/lab.js';
import { silentLogger } from '../../master/util/logger.js';
import { api as apiCall } from '../helpers/api.js';
import { waitFor } from '../helpers/netns.js';
import { makeBusyboxRoot, treeHash } from '../helpers/sharedroot-tree.js';

const BOOT_TIMEOUT_MS = 240_000;
const WRITE_DELAY_S = 15;

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  ip: string | null;
}

let lab: Lab | undefined;
let dir = '';
/** Per VM: when each marker was first printed (ms since epoch). */
const seen = new Map<string, Map<string, number>>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-e2e-sr-'));
  lab = await startLab({
    dir,
    vms: [{ firmware: 'bios' }, { firmware: 'bios' }],
    logger: silentLogger(),
    memoryMb: 512,
    diskGb: 1,
    subnetPrefix: '10.97.0',
    masterConfig: {
      nodes: { namePattern: 'dl-{n}', discoverAction: 'wait', pollSeconds: 3 },
      sharedRoot: { reconcileSeconds: 2 },
    },
  });
  for (const vm of lab.vms) {
    const m = new Map<string, number>();
    seen.set(vm.spec.name, m);
    vm.onLine((line) => {
      for (const key of ['corral: action reboot', 'corral: shared root mounted', 'corral: switching root']) {
        if (line.includes(key) && !m.has(key)) m.set(key, Date.now());
      }
    });
  }
});

after(async () => {
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const api = (method: string, path: string, body?: unknown) =>
  apiCall({ url: lab!.hostUrl, password: lab!.adminPassword }, method, path, body);

function serialTails(): string {
  return lab!.vms.map((vm) => `--- ${vm.spec.name} serial tail:\n${vm.console().slice(-2500)}`).join('\n');
}

function markerOf(consoleText: string, key: string): string | undefined {
  const after = consoleText.lastIndexOf('corral: switching root');
  const m = new RegExp(`corral-test: ${key}(?: (.*))?`).exec(consoleText.slice(after < 0 ? 0 : after));
  return m ? (m[1] ?? '').trim() : undefined;
}

test('two VMs boot diskless from one shared root over NFS, each with its own overlay and identity', async () => {
  const l = lab!;
  const tree = join(dir, 'busybox-root');
  makeBusyboxRoot(tree, WRITE_DELAY_S);

  // The shared root, through the API (the master copies the tree and exports it with nfs-ganesha).
  const created = await api('POST', '/sharedroots', { name: 'lab', fromDir: tree });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const rootId: string = created.json.sharedRoot.versions[0].rootId;
  const versionDir: string = created.json.sharedRoot.path;
  assert.match(rootId, /^lab@1:[0-9a-f]{8}$/);
  const nfs = await waitFor(
    'the NFS server to run',
    async () => {
      const s = (await api('GET', '/sharedroots')).json.nfs;
      return s.running ? s : undefined;
    },
    30_000,
    500,
  );
  assert.equal(nfs.rejected, null);
  assert.ok(nfs.exports >= 1);
  const hashBefore = treeHash(versionDir);

  let enlisted: ApiNode[] = [];
  try {
    enlisted = await waitFor(
      'both VMs to enlist',
      async () => {
        const r = await api('GET', '/nodes').catch(() => undefined);
        const list = (r?.json?.nodes ?? []) as ApiNode[];
        return list.length === 2 ? list : undefined;
      },
      BOOT_TIMEOUT_MS,
      2000,
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}\n${serialTails()}`);
  }

  const assignments = new Map<string, { machineId: string }>();
  for (const n of enlisted) {
    const r = await api('POST', `/nodes/${n.mac}/diskless`, { root: 'lab' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.node.state, 'diskless');
    assignments.set(n.mac, r.json.assignment);
  }
  // An unknown root is refused with its code, and does not move the node.
  const bad = await api('POST', `/nodes/${enlisted[0]!.mac}/diskless`, { root: 'nope' });
  assert.equal(bad.status, 404);
  assert.equal(bad.json.error.code, 'SHAREDROOT_NOT_FOUND');

  try {
    await waitFor(
      'both VMs to finish the shared-root boot',
      () => {
        // getty's prompt has no newline: poll the console for it (1 s resolution).
        for (const vm of l.vms) {
          const m = seen.get(vm.spec.name)!;
          const c = vm.console();
          if (
            !m.has('login:') &&
            c.slice(Math.max(0, c.lastIndexOf('corral: switching root'))).includes('login:')
          )
            m.set('login:', Date.now());
        }
        return (
          l.vms.every(
            (vm) => markerOf(vm.console(), 'rcS done') !== undefined && seen.get(vm.spec.name)!.has('login:'),
          ) || undefined
        );
      },
      BOOT_TIMEOUT_MS,
      1000,
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}\n${serialTails()}`);
  }

  const byMac = new Map(enlisted.map((n) => [n.mac, n]));
  const hostnames = new Set<string>();
  const machineIds = new Set<string>();
  for (const vm of l.vms) {
    const c = vm.console();
    const node = byMac.get(vm.spec.mac);
    assert.ok(node, `no node for ${vm.spec.mac}`);
    assert.ok(c.includes(`corral: root id ${rootId}`), `${vm.spec.name}: initramfs did not report ${rootId}`);
    assert.equal(markerOf(c, 'root-id'), rootId, `${vm.spec.name}: /etc/corral-root-id after switch_root`);
    assert.equal(markerOf(c, 'root-fs'), 'overlay overlay');
    assert.equal(markerOf(c, 'hostname'), node.name);
    assert.equal(markerOf(c, 'machine-id'), assignments.get(node.mac)?.machineId);
    const pub = readFileSync(
      join(
        dir,
        'master',
        'sharedroot',
        'nodes',
        node.mac.replace(/:/g, '-'),
        'ssh',
        'ssh_host_ed25519_key.pub',
      ),
    );
    assert.equal(markerOf(c, 'hostkey'), createHash('sha256').update(pub).digest('hex'));
    // Both wrote /root/written-by within the same window; each reads back its own name.
    assert.equal(markerOf(c, 'written-by'), node.name);
    hostnames.add(node.name);
    machineIds.add(markerOf(c, 'machine-id') ?? '');
  }
  assert.equal(hostnames.size, 2);
  assert.equal(machineIds.size, 2);

  // The master's tree saw none of the nodes' writes.
  assert.equal(treeHash(versionDir), hashBefore, 'the shared tree on the master changed');

  // The initramfs reported its boot: recorded per node.
  const listed = (await api('GET', '/sharedroots')).json.sharedRoots[0];
  assert.deepEqual([...listed.nodes].sort(), [...hostnames].sort());
  const events = (await api('GET', '/events?kind=sharedroot.booted')).json.events as { message: string }[];
  assert.equal(events.length, 2, JSON.stringify(events));

  const timings = l.vms.map((vm) => {
    const m = seen.get(vm.spec.name)!;
    const reboot = m.get('corral: action reboot');
    const login = m.get('login:');
    return {
      vm: vm.spec.name,
      rebootToMountS:
        reboot && m.get('corral: shared root mounted')
          ? (m.get('corral: shared root mounted')! - reboot) / 1000
          : null,
      rebootToLoginS: reboot && login ? (login - reboot) / 1000 : null,
    };
  });
  process.stdout.write(`# shared-root boot (2 VMs at once, TCG): ${JSON.stringify(timings)}\n`);
});
