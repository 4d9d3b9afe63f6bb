/**
 * The installer script (node-images/agent/corral-install) run on the build host with busybox's shell,
 * against a local HTTP master that serves a real rendered plan (master/deploy/plan.ts) and a raw image,
 * and records the installer's reports. What would touch the machine (the disk, mount, chroot, reboot) is
 * replaced by shell functions after sourcing the script (CORRAL_INSTALL_LIB=1); the fake disk's
 * partitions are a fake /sys (CORRAL_SYS). The real install runs in test/e2e/lab-deploy.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlan } from '../../master/deploy/plan.js';
import { planFile } from '../../master/deploy/deploy.js';
import { renderNetworkConfig } from '../../master/cloudinit/datasource.js';
import type { DeploymentRecord } from '../../master/store/deployments.js';
import type { NodeRecord } from '../../master/store/nodes.js';
import { nodeRecord } from '../helpers/node-record.js';

const AGENT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'node-images', 'agent');
const INSTALL = join(AGENT_DIR, 'corral-install');
const MAC = '52:54:00:ab:cd:01';
const TOKEN = 'f'.repeat(32);
// The node credential corral-agent got for this boot (issue 14): every request must carry it.
const CREDENTIAL = 'c'.repeat(64);
const SECTORS_8G = 16 * 2 ** 20;
// The host key the master made for the node (the installer only copies it, so its bytes need not be a key).
const HOST_KEY_PRIVATE =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nfake-for-the-installer-test\n-----END OPENSSH PRIVATE KEY-----\n';
const HOST_KEY_PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey corral-deploy\n';

test('the installer and the other node scripts parse with busybox sh', () => {
  for (const f of ['corral-install', 'corral-sharedroot', 'corral-node-report'])
    execFileSync('busybox', ['sh', '-n', join(AGENT_DIR, f)]);
});

interface Reports {
  progress: { phase: string }[];
  result: { ok: boolean; reason?: string; logTail?: string } | undefined;
}

/**
 * A master on loopback: the plan files (for the node credential and deployment 7), the image bytes, and
 * the reports (credential and the plan's token).
 */
async function fakeMaster(
  image: Buffer,
  format: 'raw' | 'tar.gz' = 'raw',
  /** Where the deployment's host key waits (HostKeyPins.deployKeyPath); none: a plan without a key. */
  hostKey?: string,
): Promise<{ server: Server; url: string; reports: Reports }> {
  const reports: Reports = { progress: [], result: undefined };
  if (hostKey) {
    await mkdir(dirname(hostKey), { recursive: true });
    await writeFile(hostKey, HOST_KEY_PRIVATE, { mode: 0o600 });
    await writeFile(`${hostKey}.pub`, HOST_KEY_PUB);
  }
  const sha = createHash('sha256').update(image).digest('hex');
  // Rendered once the server's port (the plan's base URL) is known.
  const state: { plan?: DeploymentRecord } = {};
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const file = /^\/boot\/deploy\/[^/]+\/([^/]+)$/.exec(url.pathname)?.[1];
      const authorised = req.headers.authorization === `Bearer ${CREDENTIAL}`;
      if (req.method === 'GET' && url.pathname === `/boot/images/${sha}`) {
        res.end(image);
      } else if (req.method === 'GET' && url.pathname === `/boot/cloud-init/${MAC}/network-config`) {
        // The master's own renderer (master/cloudinit/datasource.ts); the node's credential required.
        res.statusCode = authorised ? 200 : 403;
        res.end(authorised ? renderNetworkConfig({ mac: MAC, pools: [] }) : '{}');
      } else if (file && !authorised) {
        res.statusCode = 401;
        res.end('{}');
      } else if (req.method === 'GET' && file && state.plan && url.searchParams.get('deployment') === '7') {
        const text = planFile(state.plan, file, hostKey);
        res.statusCode = text === undefined ? 404 : 200;
        res.end(text ?? '');
      } else if (req.method === 'POST' && (file === 'progress' || file === 'result')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { token: string };
        assert.equal(body.token, TOKEN);
        if (file === 'progress') reports.progress.push(body as unknown as { phase: string });
        else reports.result = body as unknown as Reports['result'];
        res.end('{}');
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const node: NodeRecord = nodeRecord({
    mac: MAC,
    name: 'raw-1',
    state: 'deploying',
    firmware: 'bios',
    inventory: { disks: [{ name: 'vda', sizeBytes: SECTORS_8G * 512 }] },
    image: sha,
  });
  const built = buildPlan({
    node,
    image: {
      sha256: sha,
      name: 'cloud-raw',
      format,
      sizeBytes: image.length,
      osName: null,
      osVersion: null,
      minDiskBytes: image.length,
      file: `${sha}.${format}`,
      createdAt: '',
    },
    layoutName: 'default',
    layout: { espMb: 256, swapMb: 0, rootMb: null },
    baseUrl: url,
    token: TOKEN,
    rootUuid: '11111111-2222-3333-4444-555555555555',
    sshKeys: ['ssh-ed25519 AAAAtest corral-master'],
    kernelArgs: '',
    hostKeyPub: hostKey ? HOST_KEY_PUB : undefined,
  });
  state.plan = { plan: built } as unknown as DeploymentRecord;
  return { server, url, reports };
}

/**
 * The machine, faked: /dev/vda is the only disk; `dd` writes the image to a file; the partitions'
 * file system types come from fs_type; `mount -t T /dev/vdaN TARGET` copies the tree prepared for that
 * partition (if any) into TARGET, or succeeds empty for a partition marked mountable (the tarball path
 * makes its own file system); chroot records its commands; reboot ends the run.
 */
const FAKES = `
is_block() { case "$1" in /dev/vda | /dev/vda[0-9]) return 0 ;; esac; return 1; }
dd() { cat >"$FAKE/disk.img"; }
blockdev() { :; }
umount() { :; }
fs_type() { cat "$FAKE/type.\${1##*/}" 2>/dev/null; }
mount() {
	case "$1" in
	-t) dev=$3 target=$4 ;;
	*) echo "mount $*" >>"$FAKE/calls"; return 0 ;;
	esac
	case "$dev" in /dev/*) ;; *) echo "mount $*" >>"$FAKE/calls"; return 0 ;; esac
	echo "mount \${dev##*/}" >>"$FAKE/calls"
	[ -e "$FAKE/mountable.\${dev##*/}" ] && return 0
	[ -d "$FAKE/fs.\${dev##*/}" ] || return 32
	cp -a "$FAKE/fs.\${dev##*/}/." "$target/"
}
chroot() { shift; echo "chroot $*" >>"$FAKE/calls"; [ "$1" = ssh-keygen ] && : >"$T/etc/ssh/ssh_host_ed25519_key"; return 0; }
reboot() { echo "rebooted" >>"$FAKE/calls"; exit 0; }
`;

/** A fake disk vda: partitions (name, sectors, file system type, tree or none). */
async function fakeDisk(
  fake: string,
  sys: string,
  parts: { name: string; sectors: number; type: string; tree?: Record<string, string> }[],
): Promise<void> {
  await mkdir(join(sys, 'block/vda'), { recursive: true });
  await mkdir(fake, { recursive: true });
  await writeFile(join(sys, 'block/vda/size'), `${SECTORS_8G}\n`);
  for (const p of parts) {
    await mkdir(join(sys, 'block/vda', p.name), { recursive: true });
    await writeFile(join(sys, 'block/vda', p.name, 'size'), `${p.sectors}\n`);
    await writeFile(join(fake, `type.${p.name}`), `${p.type}\n`);
    for (const [rel, content] of Object.entries(p.tree ?? {})) {
      const file = join(fake, `fs.${p.name}`, rel);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content);
      if (rel.endsWith('bin/wget') || rel.endsWith('bin/ssh-keygen')) await chmod(file, 0o755);
    }
    if (p.tree) await mkdir(join(fake, `fs.${p.name}`, 'etc/systemd/system'), { recursive: true });
  }
}

async function runInstaller(
  dir: string,
  url: string,
): Promise<{ code: number; stdout: string; calls: string; target: string }> {
  const target = join(dir, 'target');
  // The tools initrd: GNU tar from the host, the disk tools only record their arguments.
  const tools = join(dir, 'tools');
  await mkdir(tools, { recursive: true });
  await writeFile(join(tools, 'tar'), '#!/bin/sh\nexec /usr/bin/tar "$@"\n');
  for (const t of ['wipefs', 'sfdisk', 'mkfs.ext4', 'mkfs.vfat'])
    await writeFile(join(tools, t), `#!/bin/sh\necho "${t} $*" >>"$FAKE/calls"\n`);
  for (const t of ['tar', 'wipefs', 'sfdisk', 'mkfs.ext4', 'mkfs.vfat']) await chmod(join(tools, t), 0o755);
  await writeFile(join(dir, 'credential'), `${CREDENTIAL}\n`, { mode: 0o600 });
  const fakeAgent = join(dir, 'agent');
  await writeFile(fakeAgent, '#!/bin/sh\necho "agent $*"\nexit 42\n');
  await chmod(fakeAgent, 0o755);
  const env = {
    PATH: process.env['PATH'],
    CORRAL_INSTALL_LIB: '1',
    CORRAL_TOOLS: tools,
    CORRAL_SERVER: url,
    CORRAL_MAC: MAC,
    CORRAL_CRED_FILE: join(dir, 'credential'),
    CORRAL_DEPLOY: '7',
    CORRAL_WORK: join(dir, 'work'),
    CORRAL_TARGET: target,
    CORRAL_SYS: join(dir, 'sys'),
    CORRAL_SHARE: AGENT_DIR,
    CORRAL_AGENT: fakeAgent,
    FAKE: join(dir, 'fake'),
  };
  return new Promise((resolve) => {
    execFile(
      'busybox',
      ['sh', '-c', `. "$0"\n${FAKES}\nmain`, INSTALL],
      { env, timeout: 60_000 },
      (err, stdout) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        const calls = existsSync(join(dir, 'fake/calls'))
          ? readFileSync(join(dir, 'fake/calls'), 'utf8')
          : '';
        resolve({ code, stdout, calls, target });
      },
    );
  });
}

const ROOT_TREE = {
  'etc/os-release': 'ID=cloud\nVERSION_ID=1\n',
  'etc/hostname': 'image-default\n',
  'usr/bin/wget': '#!/bin/sh\n',
  'usr/bin/ssh-keygen': '#!/bin/sh\n',
  'etc/ssh/.keep': '',
};

test('raw image: written with dd, root found (largest Linux partition with an os-release), identity, host key and first-boot report set', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'corral-install-'));
  const image = randomBytes(256 * 1024);
  const { server, url, reports } = await fakeMaster(image, 'raw', join(dir, 'master/ssh_host_ed25519_key'));
  try {
    await fakeDisk(join(dir, 'fake'), join(dir, 'sys'), [
      { name: 'vda1', sectors: 2048, type: 'vfat' }, // ESP: never tried
      {
        name: 'vda2',
        sectors: 8_000_000,
        type: 'ext4',
        // The image brings host keys of its own, and cloud-init, which would remake them at first boot.
        tree: {
          ...ROOT_TREE,
          'etc/ssh/ssh_host_ed25519_key': 'image own\n',
          'etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAAimage\n',
          'etc/ssh/ssh_host_rsa_key': 'image rsa\n',
          'etc/ssh/ssh_host_rsa_key.pub': 'ssh-rsa AAAAimage\n',
          'etc/cloud/cloud.cfg.d/.keep': '',
          // State of the instance the image was made on: gone, so the node's first boot is a new instance.
          'var/lib/cloud/instance/boot-finished': 'x',
        },
      },
      // Larger, so tried first: a data file system without an os-release is not the root.
      { name: 'vda3', sectors: 8_100_000, type: 'ext4', tree: { 'srv/data': 'x' } },
      { name: 'vda4', sectors: 9_000_000, type: 'swap' },
    ]);
    await rm(join(dir, 'fake/fs.vda3/etc'), { recursive: true, force: true });
    const r = await runInstaller(dir, url);
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(await readFile(join(dir, 'fake/disk.img')), image, 'the image went to the disk as is');
    assert.equal(reports.result?.ok, true, r.stdout);
    assert.match(r.stdout, /corral: root file system of the raw image: \/dev\/vda2/);
    assert.deepEqual(
      r.calls.split('\n').filter((l) => /^mount vda/.test(l)),
      ['mount vda3', 'mount vda2'],
      'largest Linux partition first; swap and the ESP are not mounted',
    );

    const t = r.target;
    assert.equal(readFileSync(join(t, 'etc/hostname'), 'utf8'), 'raw-1\n');
    assert.match(readFileSync(join(t, 'etc/hosts'), 'utf8'), /raw-1/);
    assert.ok(existsSync(join(t, 'etc/systemd/network/10-corral.network')));
    // networkd's DHCPv6 DUID (issue 18): DUID-LL, so Corral's DHCPv6 server knows the node by its MAC.
    assert.match(
      readFileSync(join(t, 'etc/systemd/networkd.conf.d/10-corral.conf'), 'utf8'),
      /^DUIDType=link-layer$/m,
    );
    const conf = readFileSync(join(t, 'etc/corral/node.conf'), 'utf8');
    assert.match(conf, new RegExp(`CORRAL_TOKEN=.?${TOKEN}`));
    assert.match(conf, new RegExp(`^CORRAL_CREDENTIAL=${CREDENTIAL}$`, 'm'));
    assert.match(conf, new RegExp(`CORRAL_SERVER=.?${url.replace(/[.:/]/g, '\\$&')}`));
    assert.equal(statSync(join(t, 'etc/corral/node.conf')).mode & 0o777, 0o600);
    assert.equal(
      readFileSync(join(t, 'root/.ssh/authorized_keys'), 'utf8'),
      'ssh-ed25519 AAAAtest corral-master\n',
    );
    assert.equal(statSync(join(t, 'root/.ssh/authorized_keys')).mode & 0o777, 0o600);
    // The first-boot reporter, the master's own copy, enabled the way `systemctl enable` would.
    assert.deepEqual(
      readFileSync(join(t, 'usr/local/sbin/corral-node-report')),
      readFileSync(join(AGENT_DIR, 'corral-node-report')),
    );
    assert.equal(statSync(join(t, 'usr/local/sbin/corral-node-report')).mode & 0o777, 0o755);
    const wants = join(t, 'etc/systemd/system/multi-user.target.wants/corral-node-report.service');
    assert.ok(lstatSync(wants).isSymbolicLink());
    assert.equal(readlinkSync(wants), '/etc/systemd/system/corral-node-report.service');
    assert.ok(existsSync(join(t, 'etc/systemd/system/corral-node-report.service')));
    // The host key the master made (and pins) is the only one sshd can present: the image's own are gone.
    assert.equal(readFileSync(join(t, 'etc/ssh/ssh_host_ed25519_key'), 'utf8'), HOST_KEY_PRIVATE);
    assert.equal(statSync(join(t, 'etc/ssh/ssh_host_ed25519_key')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(t, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8'), HOST_KEY_PUB);
    assert.equal(statSync(join(t, 'etc/ssh/ssh_host_ed25519_key.pub')).mode & 0o777, 0o644);
    assert.ok(
      !existsSync(join(t, 'etc/ssh/ssh_host_rsa_key')) &&
        !existsSync(join(t, 'etc/ssh/ssh_host_rsa_key.pub')),
    );
    assert.match(
      readFileSync(join(t, 'etc/cloud/cloud.cfg.d/90-corral-host-key.cfg'), 'utf8'),
      /^ssh_deletekeys: false$/m,
    );
    // cloud-init (issue 16): the master's NoCloud datasource for this node; network-config in the seed.
    assert.equal(
      readFileSync(join(t, 'etc/cloud/cloud.cfg.d/90-corral.cfg'), 'utf8'),
      `# Corral: this node reads its cloud-init data from the master (written at deploy time).\ndatasource_list: [NoCloud, None]\ndatasource:\n  NoCloud:\n    seedfrom: ${url}/boot/cloud-init/${MAC}/\n`,
    );
    assert.equal(
      readFileSync(join(t, 'var/lib/cloud/seed/nocloud/network-config'), 'utf8'),
      renderNetworkConfig({ mac: MAC, pools: [] }),
    );
    assert.equal(readFileSync(join(t, 'var/lib/cloud/seed/nocloud/meta-data'), 'utf8'), '');
    assert.ok(!existsSync(join(t, 'var/lib/cloud/instance')), "the image's cloud-init state is removed");
    assert.doesNotMatch(r.calls, /ssh-keygen/, 'no key made on the node');
    assert.ok(!readFileSync(join(dir, 'work/install.log'), 'utf8').includes('fake-for-the-installer-test'));
    // A raw image keeps its own boot loader and fstab.
    assert.ok(!existsSync(join(t, 'etc/fstab')));
    assert.doesNotMatch(r.calls, /grub-install/);
    assert.match(r.calls, /rebooted/);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('raw image without a Linux root, or without wget for the report: failure with the reason, not success', async () => {
  const cases = [
    {
      parts: [
        { name: 'vda1', sectors: 2048, type: 'vfat' },
        { name: 'vda2', sectors: 8_000_000, type: 'ext4' }, // does not mount
        { name: 'vda3', sectors: 4096, type: 'LVM2_member' },
      ],
      reason:
        /the raw image has no Linux root file system: no partition of \/dev\/vda mounts with an \/etc\/os-release/,
    },
    {
      parts: [{ name: 'vda1', sectors: 8_000_000, type: 'ext4', tree: { 'etc/os-release': 'ID=x\n' } }],
      reason: /the image has no wget, which corral-node-report needs to report its first boot/,
    },
  ];
  for (const c of cases) {
    const dir = await mkdtemp(join(tmpdir(), 'corral-install-'));
    const { server, url, reports } = await fakeMaster(randomBytes(4096));
    try {
      await fakeDisk(join(dir, 'fake'), join(dir, 'sys'), c.parts);
      const r = await runInstaller(dir, url);
      assert.equal(reports.result?.ok, false, r.stdout);
      assert.match(reports.result?.reason ?? '', c.reason);
      // Then it polls the master again (here the fake agent), so a retry can reboot it.
      assert.equal(r.code, 42, r.stdout);
      assert.match(r.stdout, /agent discover/);
      assert.doesNotMatch(r.calls, /rebooted/);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
});

for (const withKey of [true, false]) {
  test(`tarball image, plan ${withKey ? 'with the master-made host key' : 'without a host key (made in the image)'}: partitioned and made, unpacked, the same identity plus fstab and GRUB`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'corral-install-'));
    const root = join(dir, 'rootfs');
    for (const [rel, content] of Object.entries(ROOT_TREE)) {
      await mkdir(dirname(join(root, rel)), { recursive: true });
      await writeFile(join(root, rel), content);
    }
    await chmod(join(root, 'usr/bin/wget'), 0o755);
    await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
    await mkdir(join(root, 'boot/grub'), { recursive: true });
    execFileSync('tar', ['-czf', join(dir, 'image.tar.gz'), '-C', root, '.']);
    const { server, url, reports } = await fakeMaster(
      await readFile(join(dir, 'image.tar.gz')),
      'tar.gz',
      withKey ? join(dir, 'master/ssh_host_ed25519_key') : undefined,
    );
    try {
      await fakeDisk(join(dir, 'fake'), join(dir, 'sys'), []);
      await writeFile(join(dir, 'fake/mountable.vda2'), '');
      const r = await runInstaller(dir, url);
      assert.equal(r.code, 0, r.stdout);
      assert.equal(reports.result?.ok, true, r.stdout);
      assert.match(r.calls, /^wipefs -a -q \/dev\/vda$/m);
      assert.match(r.calls, /^sfdisk -q --wipe always \/dev\/vda$/m);
      assert.match(
        r.calls,
        /^mkfs\.ext4 -q -F -U 11111111-2222-3333-4444-555555555555 -L root \/dev\/vda2$/m,
      );
      const t = r.target;
      assert.equal(readFileSync(join(t, 'etc/os-release'), 'utf8'), 'ID=cloud\nVERSION_ID=1\n', 'unpacked');
      assert.equal(readFileSync(join(t, 'etc/hostname'), 'utf8'), 'raw-1\n');
      assert.match(readFileSync(join(t, 'etc/fstab'), 'utf8'), /UUID=11111111-2222-3333-4444-555555555555/);
      assert.match(
        readFileSync(join(t, 'boot/grub/grub.cfg'), 'utf8'),
        /11111111-2222-3333-4444-555555555555/,
      );
      assert.match(readFileSync(join(t, 'etc/corral/node.conf'), 'utf8'), new RegExp(TOKEN));
      assert.ok(
        lstatSync(
          join(t, 'etc/systemd/system/multi-user.target.wants/corral-node-report.service'),
        ).isSymbolicLink(),
      );
      if (withKey) {
        assert.equal(readFileSync(join(t, 'etc/ssh/ssh_host_ed25519_key'), 'utf8'), HOST_KEY_PRIVATE);
        assert.equal(statSync(join(t, 'etc/ssh/ssh_host_ed25519_key')).mode & 0o777, 0o600);
        assert.equal(readFileSync(join(t, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8'), HOST_KEY_PUB);
        assert.doesNotMatch(r.calls, /ssh-keygen/);
        assert.match(
          r.calls,
          /mount -t proc proc .*\n(.*\n)*chroot grub-install --target=i386-pc \/dev\/vda/,
        );
      } else {
        assert.match(r.calls, /chroot ssh-keygen -A\n(.*\n)*chroot grub-install --target=i386-pc \/dev\/vda/);
        assert.equal((r.calls.match(/mount -t proc/g) ?? []).length, 1, 'the chroot is prepared once');
      }
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('corral-node-report: booted with the token and the node credential, once; later boots report nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'corral-report-'));
  const seen: { auth: string | undefined; url: string | undefined; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, url: req.url, body: Buffer.concat(chunks).toString() });
      res.end('{"status":"booted"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const conf = join(dir, 'node.conf');
    await writeFile(
      conf,
      `CORRAL_SERVER=${url}\nCORRAL_MAC=${MAC}\nCORRAL_TOKEN=${TOKEN}\nCORRAL_CREDENTIAL=${CREDENTIAL}\n`,
      { mode: 0o600 },
    );
    const env = {
      PATH: process.env['PATH'],
      CORRAL_NODE_CONF: conf,
      CORRAL_REPORTED: join(dir, 'state', 'reported'),
    };
    const report = (): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile(
          'busybox',
          ['sh', join(AGENT_DIR, 'corral-node-report')],
          { env, timeout: 30_000 },
          (err, out) => (err ? reject(err) : resolve(out)),
        ),
      );
    assert.match(await report(), /corral: reported booted/);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.url, `/boot/deploy/${MAC}/booted`);
    assert.equal(seen[0]?.auth, `Bearer ${CREDENTIAL}`);
    assert.equal((JSON.parse(seen[0]?.body ?? '{}') as { token: string }).token, TOKEN);
    assert.match(await report(), /first boot already reported/);
    assert.equal(seen.length, 1, 'the spent token is not sent again');
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
