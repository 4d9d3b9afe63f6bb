/**
 * Shared roots, the pure and store-level parts: the ganesha config (golden file), export ids, the ustar
 * writer (read back by busybox tar, the initramfs's own reader), the identity files, the boot script for
 * a diskless node, and the domain over a temporary store and directory: create from a directory, draft
 * copy, publish, rollback, exports, assignment with its lifecycle transition. The identity tar served
 * over HTTP is test/integration/sharedroot-identity.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { golden } from '../helpers/golden.js';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportId, renderGaneshaConfig } from '../../master/sharedroot/ganesha-config.js';
import { writeTar } from '../../master/sharedroot/tar.js';
import { identityEntries } from '../../master/sharedroot/identity.js';
import { SharedRoots } from '../../master/sharedroot/service.js';
import {
  mountPoints,
  planExportMount,
  planVersionRemove,
  planVersionTree,
} from '../../master/sharedroot/tree.js';
import { decide } from '../helpers/boot.js';
import { enlist } from '../../master/nodes/enlist.js';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { CorralError } from '../../master/util/errors.js';

test('ganesha config: golden file, stable export ids, unsafe paths refused', () => {
  const text = renderGaneshaConfig({
    port: 2049,
    recoveryDir: '/var/lib/corral/sharedroot/nfs/recovery',
    exports: [
      {
        id: exportId('/roots/lab/1'),
        path: '/var/lib/corral/sharedroot/roots/lab/1',
        pseudo: '/roots/lab/1',
        access: 'RO',
        clients: ['*'],
        comment: 'shared root lab version 1',
      },
      {
        id: exportId('/state/52-54-00-00-00-01'),
        path: '/var/lib/corral/sharedroot/state/52-54-00-00-00-01',
        pseudo: '/state/52-54-00-00-00-01',
        access: 'RW',
        clients: ['10.0.0.101'],
        comment: 'persistent directory of node-1',
      },
    ],
  });
  golden('sharedroot/ganesha.conf', text);
  assert.equal(exportId('/roots/lab/1'), exportId('/roots/lab/1'));
  assert.notEqual(exportId('/roots/lab/1'), exportId('/roots/lab/2'));
  for (let i = 0; i < 200; i++) {
    const id = exportId(`/roots/r${i}/1`);
    assert.ok(id >= 2 && id <= 65535);
  }
  const bad = (path: string, clients = ['*']): void =>
    assert.throws(
      () =>
        renderGaneshaConfig({
          port: 2049,
          recoveryDir: '/r',
          exports: [{ id: 5, path, pseudo: '/roots/x/1', access: 'RO', clients, comment: '' }],
        }),
      (e: unknown) => e instanceof CorralError && e.code === 'NFS_CONFIG_INVALID',
    );
  bad('/srv/a";\nEXPORT {');
  bad('relative/path');
  bad('/srv/../etc');
  bad('/srv/ok', ['10.0.0.1; Access_Type = RW']);
});

test('ustar writer: busybox tar unpacks files, directories and modes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-tar-'));
  try {
    const tar = writeTar([
      { path: 'etc', type: 'dir', mode: 0o755 },
      { path: 'etc/hostname', type: 'file', mode: 0o644, data: Buffer.from('node-1\n') },
      { path: 'etc/ssh/key', type: 'file', mode: 0o600, data: Buffer.alloc(1000, 0x61) },
      { path: 'etc/empty', type: 'file', mode: 0o444 },
    ]);
    assert.equal(tar.length % 512, 0);
    writeFileSync(join(dir, 'x.tar'), tar);
    mkdirSync(join(dir, 'out'));
    execFileSync('busybox', ['tar', '-x', '-f', join(dir, 'x.tar'), '-C', join(dir, 'out')]);
    assert.equal(readFileSync(join(dir, 'out/etc/hostname'), 'utf8'), 'node-1\n');
    assert.equal(readFileSync(join(dir, 'out/etc/ssh/key')).length, 1000);
    assert.equal(statSync(join(dir, 'out/etc/ssh/key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'out/etc/empty')).size, 0);
    // GNU tar agrees on the checksums (it verifies every header).
    const listing = execFileSync('tar', ['-tvf', join(dir, 'x.tar')], { encoding: 'utf8' });
    assert.match(listing, /-rw------- root\/root\s+1000 .* etc\/ssh\/key/);
    assert.throws(() => writeTar([{ path: '../evil', type: 'file', mode: 0o644 }]));
    assert.throws(() => writeTar([{ path: '/abs', type: 'file', mode: 0o644 }]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('identity: hostname, machine-id, hosts, networkd keeps the boot address, host keys 0600', () => {
  const e = identityEntries({
    hostname: 'node-7',
    mac: '52:54:00:00:00:07',
    machineId: '0123456789abcdef0123456789abcdef',
    masterAddress: '10.0.0.1',
    hostKeys: { ed25519: [Buffer.from('PRIVATE'), Buffer.from('ssh-ed25519 AAAA corral')] },
  });
  const get = (p: string): string => e.find((x) => x.path === p)?.data?.toString() ?? '';
  assert.equal(get('etc/hostname'), 'node-7\n');
  assert.equal(get('etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
  assert.match(get('etc/hosts'), /10\.0\.0\.1\tcorral-master/);
  assert.match(get('etc/systemd/network/10-corral-boot.network'), /KeepConfiguration=yes/);
  assert.equal(e.find((x) => x.path === 'etc/ssh/ssh_host_ed25519_key')?.mode, 0o600);
});

test('version trees: a subvolume and snapshots on btrfs, directories and copies elsewhere', () => {
  const btrfs = { fsType: 'btrfs', subvolume: false };
  const sub = { fsType: 'btrfs', subvolume: true };
  const ext4 = { fsType: 'ext2/ext3', subvolume: false };
  assert.deepEqual(planVersionTree(btrfs, '/r/web/1.tmp'), {
    method: 'btrfs-subvolume',
    argv: ['btrfs', 'subvolume', 'create', '/r/web/1.tmp'],
  });
  assert.deepEqual(planVersionTree(ext4, '/r/web/1.tmp'), {
    method: 'directory',
    argv: ['mkdir', '-m', '0755', '--', '/r/web/1.tmp'],
  });
  // A draft of a subvolume is a writable snapshot (no -r): it is edited, then published as it is.
  assert.deepEqual(planVersionTree(btrfs, '/r/web/2.tmp', { path: '/r/web/1', facts: sub }), {
    method: 'btrfs-snapshot',
    argv: ['btrfs', 'subvolume', 'snapshot', '/r/web/1', '/r/web/2.tmp'],
  });
  // A version made as a plain directory (before, or copied in) is copied into a new subvolume.
  assert.equal(planVersionTree(btrfs, '/t', { path: '/r/web/1', facts: btrfs }).method, 'btrfs-subvolume');
  assert.equal(planVersionTree(ext4, '/t', { path: '/r/web/1', facts: ext4 }).method, 'directory');

  assert.deepEqual(planVersionRemove({ ...sub, mounted: true }, '/r/web/1'), [
    ['umount', '--lazy', '/r/web/1'],
    ['btrfs', 'subvolume', 'delete', '/r/web/1'],
  ]);
  assert.deepEqual(planVersionRemove({ ...ext4, mounted: false }, '/r/web/1'), [
    ['rm', '-rf', '--', '/r/web/1'],
  ]);
  assert.deepEqual(planExportMount({ ...sub, mounted: false }, '/r/web/1'), [
    'mount',
    '--bind',
    '/r/web/1',
    '/r/web/1',
  ]);
  assert.equal(planExportMount({ ...sub, mounted: true }, '/r/web/1'), undefined);
  assert.equal(planExportMount({ ...ext4, mounted: false }, '/r/web/1'), undefined);

  const info =
    '36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n' +
    '40 36 0:45 /roots/web/1 /var/lib/corral/shared\\040root/roots/web/1 rw - btrfs /dev/loop0 rw\n';
  assert.deepEqual([...mountPoints(info)], ['/mnt/parent', '/var/lib/corral/shared root/roots/web/1']);
});

function makeTree(dir: string): void {
  mkdirSync(join(dir, 'sbin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  symlinkSync('/lib/systemd/systemd', join(dir, 'sbin/init')); // dangling on the host: must be accepted
  writeFileSync(join(dir, 'etc/os-release'), 'ID=test\n');
}

test('shared roots: create, draft copy, publish atomically, rollback, exports, diskless assignment', async () => {
  const t = tempRepos();
  const src = join(t.dir, 'src');
  makeTree(src);
  const config = testConfig({ dataDir: t.dir });
  const roots = new SharedRoots(t.repos, config);
  try {
    await assert.rejects(
      roots.create('Bad_Name', { dir: src }),
      (e: unknown) => e instanceof CorralError && e.code === 'SHAREDROOT_INVALID',
    );
    await assert.rejects(
      roots.create('x', { dir: join(t.dir, 'missing') }),
      (e: unknown) => e instanceof CorralError && e.code === 'SHAREDROOT_INVALID',
    );
    const empty = join(t.dir, 'empty');
    mkdirSync(empty);
    await assert.rejects(
      roots.create('x', { dir: empty }),
      (e: unknown) => e instanceof CorralError && e.code === 'SHAREDROOT_INVALID',
    );
    assert.equal(t.repos.sharedRoots.get('x'), undefined, 'no row for a failed create');

    const r = await roots.create('web', { dir: src });
    assert.equal(r.currentVersion, 1);
    const id1 = readFileSync(join(r.path, 'etc/corral-root-id'), 'utf8').trim();
    assert.equal(id1, r.versions[0]?.rootId);
    assert.ok(!existsSync(join(src, 'etc/corral-root-id')), 'the source directory is not touched');
    await assert.rejects(
      roots.create('web', { dir: src }),
      (e: unknown) => e instanceof CorralError && e.code === 'CONFLICT',
    );

    // A draft is a copy; nodes keep booting version 1 until it is published.
    const draft = await roots.edit('web');
    assert.equal(draft.version, 2);
    writeFileSync(join(draft.path, 'etc/os-release'), 'ID=test\nVERSION=2\n');
    assert.equal(readFileSync(join(r.path, 'etc/os-release'), 'utf8'), 'ID=test\n');
    assert.deepEqual(
      roots.exports().map((e) => e.pseudo),
      ['/roots/web/1'],
      'drafts are not exported',
    );

    const enlisted = enlist(
      t.repos,
      config,
      { mac: '52:54:00:00:00:01', mode: 'discover', inventory: {} },
      { sourceIp: '10.99.0.101', credential: undefined, leaseIp: undefined },
    );
    const node = enlisted.node;
    assert.throws(
      () => roots.assign(node, 'nope'),
      (e: unknown) => e instanceof CorralError && e.code === 'SHAREDROOT_NOT_FOUND',
    );
    assert.equal(t.repos.nodes.get(node.mac)?.state, 'discovered');
    const a = roots.assign(node, 'web', { persistent: true });
    assert.match(a.machineId, /^[0-9a-f]{32}$/);
    const diskless = t.repos.nodes.get(node.mac)!;
    assert.equal(diskless.state, 'diskless');
    assert.deepEqual(roots.bootFor(diskless)?.params, [
      'corral.nfs=10.99.0.1:/roots/web/1',
      'corral.nfsvers=4.1',
      'corral.rwsize=50%',
      'corral.persist=10.99.0.1:/state/52-54-00-00-00-01',
    ]);
    const rw = roots.exports().find((e) => e.access === 'RW');
    assert.deepEqual(rw?.clients, ['10.99.0.101'], 'a persistent directory is exported to its node only');
    assert.deepEqual(
      roots.exports().find((e) => e.access === 'RO')?.clients,
      ['10.99.0.0/24'],
      'read-only roots go to the provisioning subnet, not to everyone',
    );
    const relayed = testConfig({
      dataDir: t.dir,
      dhcp: {
        mode: 'server',
        range: '10.99.0.100-10.99.0.199',
        relayPools: [{ subnet: '10.98.0.0/24', range: '10.98.0.100-10.98.0.199' }],
      },
    });
    assert.deepEqual(
      new SharedRoots(t.repos, relayed).exports().find((e) => e.access === 'RO')?.clients,
      ['10.99.0.0/24', '10.98.0.0/24'],
      'relayed racks may mount the roots too',
    );
    const open = testConfig({ dataDir: t.dir, sharedRoot: { clients: ['*'] } });
    assert.deepEqual(new SharedRoots(t.repos, open).exports().find((e) => e.access === 'RO')?.clients, ['*']);
    assert.throws(
      () => testConfig({ sharedRoot: { clients: ['10.0.0.0/24; rm'] } }),
      /sharedRoot\.clients\.0/,
    );

    const published = roots.publish('web');
    assert.equal(published.currentVersion, 2);
    assert.equal(roots.bootFor(diskless)?.version, 2);
    assert.deepEqual(
      roots
        .exports()
        .filter((e) => e.access === 'RO')
        .map((e) => e.pseudo),
      ['/roots/web/1', '/roots/web/2'],
      'the previous version stays exported',
    );
    assert.equal(roots.rollback('web').currentVersion, 1);
    assert.equal(roots.publish('web', 2).currentVersion, 2);

    roots.booted(diskless, published.versions[1]!.rootId, '10.99.0.101/24');
    assert.equal(t.repos.sharedRoots.assignment(node.mac)?.bootedVersion, 2);
    await assert.rejects(
      roots.remove('web'),
      (e: unknown) => e instanceof CorralError && e.code === 'SHAREDROOT_IN_USE',
    );
    await assert.rejects(
      roots.remove('web', 2),
      (e: unknown) => e instanceof CorralError && e.code === 'SHAREDROOT_IN_USE',
    );
    await roots.remove('web', 1);
    assert.ok(!existsSync(r.path));

    // Every mutation went through the journal.
    const journaled = new Set(t.repos.changes.since(0, 1000).map((c: { entity: string }) => c.entity));
    for (const table of ['shared_roots', 'shared_root_versions', 'diskless_nodes'])
      assert.ok(journaled.has(table), table);

    // The boot script: diskless + shared root → sharedroot template with the NFS parameters.
    const boot = roots.bootFor(diskless)!;
    const s = decide({
      mac: node.mac,
      node: diskless,
      baseUrl: 'http://10.99.0.1',
      kernelArgs: '',
      nodeImageReady: true,
      sharedRoot: boot,
    });
    assert.equal(s.template, 'ipxe/sharedroot.hbs');
    assert.match(
      String(s.vars['cmdline']),
      /corral\.mode=sharedroot .*corral\.nfs=10\.99\.0\.1:\/roots\/web\/2/,
    );
    const noRoot = decide({
      mac: node.mac,
      node: diskless,
      baseUrl: 'http://10.99.0.1',
      kernelArgs: '',
      nodeImageReady: true,
    });
    assert.equal(noRoot.template, 'ipxe/discover.hbs');
  } finally {
    t.cleanup();
  }
});
