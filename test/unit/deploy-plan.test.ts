/**
 * Deployment, pure and store-level: the partition plan and rendered node files (golden), the boot
 * decision for deploying nodes, and the deploy state flow (start, token check, failure → failed with
 * reason, retry, installed → booted → deployed, stall watchdog) on a temporary SQLite store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { golden as goldenFile } from '../helpers/golden.js';
import { buildPlan, HOST_KEY_FILE, partitionPlan, renderEnv } from '../../master/deploy/plan.js';
import {
  adoptHostKey,
  createDeployHostKey,
  planFile,
  resolveLayout,
  startDeploy,
  authorise,
  recordResult,
  recordProgress,
  recordBooted,
  failStalled,
} from '../../master/deploy/deploy.js';
import { decide } from '../helpers/boot.js';
import { renderTemplate } from '../../master/util/templates.js';
import { CorralError } from '../../master/util/errors.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import type { ImageRecord } from '../../master/store/images.js';
import { HostKeyPins, publicKeyBlob } from '../../master/remote/host-keys.js';
import { publicDeployment } from '../../master/deploy/api.js';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { nodeRecord } from '../helpers/node-record.js';

const GiB = 2 ** 30;

const golden = (name: string, text: string): void => goldenFile(`deploy/${name}`, text);

function node(firmware: 'bios' | 'uefi', diskBytes = 4 * GiB): NodeRecord {
  return nodeRecord({
    mac: '52:54:00:12:34:56',
    ip: '10.99.0.100',
    firmware,
    inventory: {
      disks: [
        { name: 'vdb', sizeBytes: 64 * GiB },
        { name: 'vda', sizeBytes: diskBytes },
      ],
    },
  });
}

const image: ImageRecord = {
  sha256: 'ab'.repeat(32),
  name: 'debian-12',
  format: 'tar.zst',
  sizeBytes: 126_000_000,
  osName: 'debian',
  osVersion: '12.15',
  minDiskBytes: 700 * 2 ** 20,
  file: `${'ab'.repeat(32)}.tar.zst`,
  createdAt: '',
};

const planInput = (n: NodeRecord, swapMb = 0) => ({
  node: n,
  image,
  layoutName: swapMb ? 'swap' : 'default',
  layout: { espMb: 256, swapMb, rootMb: null },
  baseUrl: 'http://10.99.0.1',
  token: 'feedface',
  rootUuid: '0b9d2c84-5f0e-4d43-9d2a-4a3c8d9a1e11',
  sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample corral-master'],
  kernelArgs: 'console=tty0 console=ttyS0,115200n8',
});

test('BIOS plan: GPT with a BIOS boot partition and root; files rendered (golden)', () => {
  const plan = buildPlan(planInput(node('bios')));
  assert.equal(plan.env['DISK'], 'vda', 'first disk by name that fits');
  golden('bios-plan.env', renderEnv(plan.env));
  for (const f of ['partitions.sfdisk', 'fstab', 'grub.cfg', 'network', 'node.conf'])
    golden(`bios-${f}`, plan.files[f]!);
});

test('UEFI plan with swap: ESP, swap, root; fstab mounts the ESP and swap (golden)', () => {
  const plan = buildPlan(planInput(node('uefi'), 512));
  assert.equal(plan.env['ESP_PART'], '1');
  assert.equal(plan.env['SWAP_PART'], '2');
  assert.equal(plan.env['ROOT_PART'], '3');
  golden('uefi-swap-partitions.sfdisk', plan.files['partitions.sfdisk']!);
  golden('uefi-swap-fstab', plan.files['fstab']!);
});

test('a disk too small for image plus layout is refused before anything moves', () => {
  const p = partitionPlan({ espMb: 256, swapMb: 0, rootMb: null }, 'bios');
  const tiny = {
    ...node('bios', 512 * 2 ** 20),
    inventory: { disks: [{ name: 'vda', sizeBytes: 512 * 2 ** 20 }] },
  };
  assert.throws(
    () => buildPlan(planInput(tiny)),
    (e: unknown) => e instanceof CorralError && e.code === 'DISK_TOO_SMALL',
  );
  assert.ok(p.overheadBytes > 2 ** 20);
});

test('layouts: default built in, named ones from config, unknown refused', () => {
  const config = testConfig({ deploy: { layouts: { big: { swapMb: 1024 } } } });
  assert.equal(resolveLayout(config, undefined).name, 'default');
  assert.equal(resolveLayout(config, 'big').layout.swapMb, 1024);
  assert.throws(
    () => resolveLayout(config, 'nope'),
    (e: unknown) => e instanceof CorralError && e.code === 'LAYOUT_UNKNOWN',
  );
});

test('boot decision: pending → install script with tools initrd and no token; installed → local disk', () => {
  const n = { ...node('bios'), state: 'deploying' as const };
  const base = { mac: n.mac, baseUrl: 'http://10.99.0.1', kernelArgs: '', nodeImageReady: true, node: n };
  // A deployment record as the store gives it, token included: the script must not carry it (issue 14).
  const d = { id: 7, status: 'pending', token: 'feedfacefeedface' };
  const s = decide({ ...base, deployment: d });
  assert.equal(s.template, 'ipxe/install.hbs');
  const text = renderTemplate(s.template, s.vars);
  assert.ok(!text.includes(d.token) && !/token/i.test(text), 'no deploy token in a boot script');
  golden('install.ipxe', text);
  const l = decide({ ...base, deployment: { ...d, status: 'installed' } });
  assert.equal(l.template, 'ipxe/local.hbs');
});

function seed(repos: ReturnType<typeof tempRepos>['repos']): NodeRecord {
  return repos.store.write((journal) => {
    repos.images.insertIn(journal, { ...image });
    return repos.nodes.insertIn(journal, {
      mac: '52:54:00:12:34:56',
      name: 'node-1',
      seqNo: 1,
      state: 'discovered',
      firmware: 'bios',
      inventory: node('bios').inventory,
    });
  });
}

test('deploy flow: failure → failed with reason, retry, installed → booted → deployed; image in use', () => {
  let now = new Date('2026-01-01T00:00:00Z');
  const t = tempRepos(() => now);
  try {
    const { repos } = t;
    const config = testConfig({ deploy: { stallSeconds: 60 } });
    const n = seed(repos);
    const d1 = startDeploy(repos, config, n, { image: 'debian-12', actor: 'test' }, ['ssh-ed25519 AAAA k']);
    assert.equal(repos.nodes.get(n.mac)?.state, 'deploying');
    assert.equal(repos.nodes.get(n.mac)?.image, image.sha256);
    assert.deepEqual(repos.images.usedBy(image.sha256), ['node-1']);
    assert.throws(
      () => authorise(repos, n.mac, 'wrong'),
      (e: unknown) => e instanceof CorralError && e.code === 'DEPLOY_TOKEN_INVALID',
    );
    recordProgress(repos, authorise(repos, n.mac, d1.token), {
      phase: 'write',
      percent: 40,
      bytes: 5,
      bytesPerSec: 2 ** 20,
    });
    recordResult(repos, authorise(repos, n.mac, d1.token), {
      ok: false,
      reason: 'image checksum mismatch: expected a, got b',
      logTail: 'x',
    });
    const failed = repos.nodes.get(n.mac)!;
    assert.equal(failed.state, 'failed');
    assert.match(failed.stateReason ?? '', /checksum mismatch/);

    // Retry from failed: a new deployment and token; the old token is refused.
    const d2 = startDeploy(repos, config, failed, { image: 'debian-12', actor: 'test' }, []);
    assert.notEqual(d2.token, d1.token);
    assert.throws(() => authorise(repos, n.mac, d1.token));
    recordResult(repos, authorise(repos, n.mac, d2.token), { ok: true });
    assert.equal(repos.deployments.get(d2.id)?.status, 'installed');
    assert.throws(() => recordBooted(repos, repos.deployments.get(d1.id)!, { ip: null }));
    recordBooted(repos, authorise(repos, n.mac, d2.token), { hostname: 'node-1', ip: '10.99.0.150' });
    const deployed = repos.nodes.get(n.mac)!;
    assert.equal(deployed.state, 'deployed');
    // The report's address is not the node's: only a lease or an operator sets it (issue 14).
    assert.equal(deployed.ip, null);
    assert.equal(repos.events.list({ nodeMac: n.mac, kind: 'node.address-mismatch' }).length, 1);
    // The token is spent: a replayed report is refused and changes nothing.
    assert.throws(
      () => recordBooted(repos, authorise(repos, n.mac, d2.token), { ip: '10.99.0.66' }),
      (e: unknown) => e instanceof CorralError && e.code === 'DEPLOY_NOT_ACTIVE',
    );
    assert.equal(repos.nodes.get(n.mac)?.ip, null);

    // A third deploy that never hears from the node fails by the watchdog after stallSeconds.
    const d3 = startDeploy(repos, config, deployed, { image: 'debian-12', actor: 'test' }, []);
    assert.equal(failStalled(repos, config, new Date(now.getTime() + 30_000)), 0);
    now = new Date(now.getTime() + 61_000);
    assert.equal(failStalled(repos, config, now), 1);
    assert.equal(repos.deployments.get(d3.id)?.status, 'failed');
    assert.match(repos.nodes.get(n.mac)?.stateReason ?? '', /no report from the node/);
  } finally {
    t.cleanup();
  }
});

test('a late installer result for a deployment the watchdog failed is refused (409) and recorded', () => {
  let now = new Date('2026-01-01T00:00:00Z');
  const t = tempRepos(() => now);
  try {
    const { repos } = t;
    const config = testConfig({ deploy: { stallSeconds: 60 } });
    const n = seed(repos);
    const d = startDeploy(repos, config, n, { image: 'debian-12', actor: 'test' }, []);
    recordProgress(repos, authorise(repos, n.mac, d.token), { phase: 'write', percent: 10 });
    now = new Date(now.getTime() + 61_000);
    assert.equal(failStalled(repos, config, now), 1);
    assert.equal(repos.nodes.get(n.mac)?.state, 'failed');

    const notActive = (e: unknown): boolean =>
      e instanceof CorralError && e.code === 'DEPLOY_NOT_ACTIVE' && e.status === 409;
    // The token is still the node's latest, so only the status check stands between it and `installed`.
    assert.throws(() => recordResult(repos, authorise(repos, n.mac, d.token), { ok: true }), notActive);
    assert.throws(
      () => recordResult(repos, authorise(repos, n.mac, d.token), { ok: false, reason: 'late failure' }),
      notActive,
    );
    assert.throws(
      () => recordProgress(repos, authorise(repos, n.mac, d.token), { phase: 'write', percent: 90 }),
      notActive,
    );
    assert.throws(() => recordBooted(repos, authorise(repos, n.mac, d.token), { ip: null }), notActive);
    assert.equal(repos.deployments.get(d.id)?.status, 'failed');
    assert.match(repos.deployments.get(d.id)?.message ?? '', /no report from the node/);
    assert.equal(repos.nodes.get(n.mac)?.state, 'failed');
    const late = repos.events.list({ nodeMac: n.mac, kind: 'deploy.late-result', limit: 10 });
    assert.equal(late.length, 2);
    assert.equal(
      late.every((e) => e.severity === 'warning' && e.data?.['deployment'] === d.id),
      true,
    );
    assert.ok(
      late.some((e) => /reported success for deployment \d+, which is already failed/.test(e.message)),
    );

    // The operator's retry works as before; a repeated success (answer lost, installer retried) is a no-op.
    const d2 = startDeploy(repos, config, repos.nodes.get(n.mac)!, { image: 'debian-12', actor: 'test' }, []);
    recordResult(repos, authorise(repos, n.mac, d2.token), { ok: true });
    const again = recordResult(repos, authorise(repos, n.mac, d2.token), { ok: true });
    assert.equal(again.status, 'installed');
    assert.equal(repos.events.list({ nodeMac: n.mac, kind: 'deploy.installed', limit: 10 }).length, 1);
    recordBooted(repos, authorise(repos, n.mac, d2.token), { ip: '10.99.0.150' });
    assert.equal(repos.nodes.get(n.mac)?.state, 'deployed');
    assert.throws(() => recordResult(repos, authorise(repos, n.mac, d2.token), { ok: true }), notActive);
  } finally {
    t.cleanup();
  }
});

test("deploy makes the node's SSH host key: the plan carries it (private half from its file), success pins it", async () => {
  const t = tempRepos();
  try {
    const { repos } = t;
    const config = testConfig({ dataDir: t.dir });
    const pins = HostKeyPins.forConfig(config);
    const n = seed(repos);
    // The node's previous system was pinned on first contact; another node's pin must survive.
    const known = join(t.dir, 'ssh', 'known_nodes');
    mkdirSync(join(t.dir, 'ssh'), { recursive: true });
    const oldKey = Buffer.from('old system key');
    writeFileSync(known, `52:54:00:99:99:99 b3RoZXI=\n${n.mac} ${oldKey.toString('base64')}\n`);

    const pub = await createDeployHostKey(pins, n.mac);
    assert.match(pub, /^ssh-ed25519 AAAA\S+ corral-deploy\n$/);
    const d = startDeploy(repos, config, n, { image: 'debian-12', actor: 'test' }, [], pub);
    const plan = d.plan as unknown as { env: Record<string, string>; files: Record<string, string> };
    assert.equal(plan.env['HOST_KEY'], HOST_KEY_FILE);
    assert.equal(plan.files[`${HOST_KEY_FILE}.pub`], pub);
    assert.equal(planFile(d, `${HOST_KEY_FILE}.pub`), pub);
    const priv = planFile(d, HOST_KEY_FILE, pins.deployKeyPath(n.mac));
    assert.match(priv ?? '', /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.equal(statSync(pins.deployKeyPath(n.mac)).mode & 0o777, 0o600);
    assert.equal(planFile(d, HOST_KEY_FILE), undefined, 'served only from its file');
    // The private key is in no row, event or API view.
    const body = priv!.split('\n')[1]!;
    const stored = repos.deployments.get(d.id)!;
    assert.ok(!JSON.stringify(stored).includes(body), 'not in the deployment row');
    assert.ok(!JSON.stringify(publicDeployment(stored)).includes(body));
    assert.ok(!JSON.stringify(repos.events.list({ nodeMac: n.mac })).includes(body));

    // Until the installer reports success, the running system keeps its pin.
    const made = publicKeyBlob(pub)!;
    assert.equal(pins.check(n, made).ok, false);
    assert.equal(pins.check(n, oldKey).ok, true);

    // A newer deploy replaces the waiting key: the older plan no longer gets a private key it would not match.
    const pub2 = await createDeployHostKey(pins, n.mac);
    assert.notEqual(pub2, pub);
    assert.equal(planFile(d, HOST_KEY_FILE, pins.deployKeyPath(n.mac)), undefined);
    assert.equal(adoptHostKey(pins, d), false, 'not the waiting key: nothing adopted');
    const d2 = startDeploy(
      repos,
      config,
      repos.nodes.get(n.mac)!,
      { image: 'debian-12', actor: 'test' },
      [],
      pub2,
    );
    assert.match(planFile(d2, HOST_KEY_FILE, pins.deployKeyPath(n.mac)) ?? '', /PRIVATE KEY/);

    const installed = recordResult(repos, authorise(repos, n.mac, d2.token), { ok: true });
    assert.equal(adoptHostKey(pins, installed), true);
    const made2 = publicKeyBlob(pub2)!;
    assert.deepEqual(
      pins.check(n, made2),
      { ok: true },
      'pinned from the first connection, no first-use pin',
    );
    const other = pins.check(n, oldKey);
    assert.equal(other.ok, false);
    assert.match(other.reason ?? '', /the key Corral created for it: refused/);
    assert.equal(
      readFileSync(known, 'utf8'),
      '52:54:00:99:99:99 b3RoZXI=\n',
      'the old first-contact pin is gone',
    );
    assert.equal(statSync(pins.corralKeyPath(n.mac)).mode & 0o777, 0o600);
    assert.equal(adoptHostKey(pins, installed), false, 'a repeated success changes nothing');
  } finally {
    t.cleanup();
  }
});
