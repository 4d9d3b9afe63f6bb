/**
 * Shared roots on a real btrfs volume (a loop-mounted 256 MiB image the test makes): every version is a
 * subvolume, a draft is a writable snapshot of the current version (its `Parent UUID` is the current
 * version's UUID), a tree snapshot of a version is a btrfs snapshot and rolls back a change, an exported
 * version is bind-mounted so the real nfs-ganesha accepts it, and deleting a version deletes its
 * subvolume. Root and CI have loop devices: a mount that fails here fails the test, it is not skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
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
import { SharedRoots } from '../../master/sharedroot/service.js';
import { exportable, mountPoints, versionDir } from '../../master/sharedroot/tree.js';
import { renderGaneshaConfig } from '../../master/sharedroot/ganesha-config.js';
import { NfsServer } from '../../master/sharedroot/nfs-server.js';
import { rollbackTree, snapshotTree, treeFacts } from '../../master/snapshots/tree-snapshot.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos, testConfig } from '../helpers/repos.js';
import { TestNet, hasCommand } from '../helpers/netns.js';

function sh(cmd: string, args: string[], timeout = 30_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `btrfs subvolume show PATH` as key → value; throws (the command fails) where PATH is no subvolume. */
function subvolume(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of sh('btrfs', ['subvolume', 'show', path]).split('\n')) {
    const m = /^\s+([A-Za-z ]+):\s+(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out[m[1].trim()] = m[2].trim();
  }
  return out;
}

function mounted(path: string): boolean {
  return mountPoints(readFileSync('/proc/self/mountinfo', 'utf8')).has(path);
}

/** A small root tree: /sbin/init, a few hundred files and one larger file, so a copy takes measurable time. */
function makeTree(dir: string): void {
  mkdirSync(join(dir, 'sbin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  symlinkSync('/lib/systemd/systemd', join(dir, 'sbin/init'));
  writeFileSync(join(dir, 'etc/os-release'), 'ID=test\n');
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(dir, 'usr/share', `d${d}`), { recursive: true });
    for (let f = 0; f < 50; f++)
      writeFileSync(join(dir, 'usr/share', `d${d}`, `f${f}`), `${d}/${f}\n`.repeat(200));
  }
  writeFileSync(join(dir, 'usr/lib.bin'), Buffer.alloc(24 * 1024 * 1024, 7));
}

test(
  'shared roots on btrfs: subvolumes, snapshot drafts, tree snapshot rollback, ganesha export, delete',
  { timeout: 180_000 },
  async () => {
    assert.ok(
      hasCommand('mkfs.btrfs') && hasCommand('btrfs'),
      'btrfs-progs is not installed: run scripts/setup.sh',
    );
    const dir = mkdtempSync(join(tmpdir(), 'corral-btrfs-'));
    const img = join(dir, 'btrfs.img');
    const mnt = join(dir, 'mnt');
    const t = tempRepos();
    const net = new TestNet('btrfs');
    let server: NfsServer | undefined;
    try {
      // Sparse: only what btrfs writes takes space.
      sh('truncate', ['-s', '256M', img]);
      sh('mkfs.btrfs', ['-q', img]);
      mkdirSync(mnt);
      try {
        sh('mount', ['-o', 'loop', img, mnt]);
      } catch (err) {
        assert.fail(
          `could not loop-mount a btrfs image (root with /dev/loop-control and btrfs in /proc/filesystems needed): ${(err as { stderr?: string }).stderr ?? String(err)}`,
        );
      }
      assert.equal((await treeFacts(mnt)).fsType, 'btrfs');

      const src = join(dir, 'src');
      makeTree(src);
      const config = testConfig({ dataDir: t.dir, sharedRoot: { dir: join(mnt, 'sharedroot') } });
      const roots = new SharedRoots(t.repos, config);
      const r = await roots.create('web', { dir: src });
      const v1 = subvolume(r.path); // throws "Not a Btrfs subvolume" for a plain directory
      assert.match(v1['UUID'] ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(v1['Parent UUID'], '-', 'version 1 is a new subvolume, not a snapshot');
      assert.equal(readFileSync(join(r.path, 'usr/share/d3/f7'), 'utf8'), '3/7\n'.repeat(200));

      // The draft is a writable snapshot of version 1: its parent is version 1, and it starts with no
      // extents of its own.
      let t0 = process.hrtime.bigint();
      const draft = await roots.edit('web');
      const editMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const v2 = subvolume(draft.path);
      assert.equal(
        v2['Parent UUID'],
        v1['UUID'],
        `the draft is a snapshot of version 1: ${JSON.stringify(v2)}`,
      );
      assert.equal(v2['Flags'], '-', 'the draft is writable');
      assert.equal(roots.get('web').versions.find((v) => v.version === 2)?.note, 'btrfs snapshot of 1');
      const id2 = readFileSync(join(draft.path, 'etc/corral-root-id'), 'utf8').trim();
      assert.notEqual(id2, readFileSync(join(r.path, 'etc/corral-root-id'), 'utf8').trim());
      assert.equal(id2, roots.get('web').versions.find((v) => v.version === 2)?.rootId);
      sh('btrfs', ['filesystem', 'sync', mnt]);
      const du = sh('btrfs', ['filesystem', 'du', '-s', '--raw', r.path, draft.path]);
      // Columns: Total, Exclusive, Set shared, Filename. The draft shares the 24 MiB file with version 1.
      const exclusive = Number(
        du
          .split('\n')
          .find((l) => l.endsWith(draft.path))
          ?.trim()
          .split(/\s+/)[1],
      );
      assert.ok(
        exclusive < 1024 * 1024,
        `the draft has ${exclusive} bytes of its own; a copy would have >24 MiB`,
      );
      writeFileSync(join(draft.path, 'etc/os-release'), 'ID=test\nVERSION=2\n');
      assert.equal(
        readFileSync(join(r.path, 'etc/os-release'), 'utf8'),
        'ID=test\n',
        'version 1 is untouched',
      );

      // The same tree copied on the temp dir's own file system, as a draft is made there.
      const fsType = (await treeFacts(dir)).fsType;
      t0 = process.hrtime.bigint();
      sh('cp', ['-a', '--reflink=auto', `${r.path}/.`, join(dir, 'copy')]);
      const copyMs = Number(process.hrtime.bigint() - t0) / 1e6;
      console.log(
        `# edit() on btrfs (snapshot) ${editMs.toFixed(1)} ms; cp -a of the same tree (501 files, 24 MiB) on ${fsType} ${copyMs.toFixed(1)} ms`,
      );

      roots.publish('web');
      assert.equal(roots.get('web').currentVersion, 2);

      // A tree snapshot of the current version is a read-only btrfs snapshot and rolls a later change back.
      const live = versionDir(roots.dir, 'web', 2);
      const snap = join(mnt, 'snapshots', 'web-2');
      mkdirSync(join(mnt, 'snapshots'));
      const plan = await snapshotTree(live, snap, { immutable: false });
      assert.equal(plan.method, 'btrfs-snapshot');
      assert.equal(subvolume(snap)['Flags'], 'readonly');
      writeFileSync(join(live, 'etc/os-release'), 'broken\n');
      const { previous, plan: back } = await rollbackTree(snap, live, 't1');
      assert.equal(back.method, 'btrfs-snapshot');
      assert.equal(readFileSync(join(live, 'etc/os-release'), 'utf8'), 'ID=test\nVERSION=2\n');
      assert.equal(readFileSync(join(previous, 'etc/os-release'), 'utf8'), 'broken\n');
      assert.equal(
        subvolume(live)['Parent UUID'],
        subvolume(snap)['UUID'],
        'the rolled-back tree is a snapshot',
      );

      // ganesha (Debian's, without libbtrfsutil) refuses an unmounted subvolume; bind-mounted it serves it.
      await exportable(r.path);
      await exportable(live);
      assert.ok(mounted(r.path) && mounted(live), 'exported versions are bind-mounted');
      await exportable(live); // idempotent: not mounted twice
      assert.equal(
        readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .filter((l) => l.split(' ')[4] === live).length,
        1,
      );
      assert.ok(hasCommand('ganesha.nfsd'), 'nfs-ganesha is not installed: run scripts/setup.sh');
      const host = net.addHost('srv', '10.79.3.1/24');
      const wrapper = join(dir, 'ganesha-in-ns');
      writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${host.ns} ganesha.nfsd "$@"\n`);
      chmodSync(wrapper, 0o755);
      mkdirSync(join(dir, 'recovery'));
      server = new NfsServer({
        dir: join(dir, 'nfs'),
        bin: wrapper,
        logger: silentLogger(),
        startTimeoutMs: 20_000,
      });
      await server.apply(
        renderGaneshaConfig({ port: 2049, recoveryDir: join(dir, 'recovery'), exports: roots.exports() }),
      );
      assert.equal(server.status().running, true);
      const log = readFileSync(join(dir, 'nfs', 'ganesha.log'), 'utf8');
      assert.doesNotMatch(log, /Could not create export/);
      assert.equal(roots.exports().filter((e) => e.access === 'RO').length, 2);
      await server.close();
      server = undefined;

      // Deleting version 1 (mounted for export) unmounts it and deletes its subvolume.
      await roots.remove('web', 1);
      assert.ok(!existsSync(r.path) && !mounted(r.path));
      const list = sh('btrfs', ['subvolume', 'list', mnt]);
      assert.doesNotMatch(list, /roots\/web\/1$/m);
      assert.match(list, /roots\/web\/2$/m);
      await roots.remove('web');
      assert.ok(!mounted(live));
      assert.doesNotMatch(sh('btrfs', ['subvolume', 'list', mnt]), /roots\/web\//, 'the whole root is gone');
    } finally {
      await server?.close().catch(() => undefined);
      await net.destroy();
      t.cleanup();
      // Bounded: each command has a timeout; nothing here throws, so every step runs.
      const quiet = (cmd: string, args: string[]): string => {
        try {
          return sh(cmd, args, 20_000);
        } catch {
          return '';
        }
      };
      if (mounted(mnt)) quiet('umount', ['--recursive', mnt]);
      if (mounted(mnt)) quiet('umount', ['--recursive', '--lazy', mnt]);
      for (const line of quiet('losetup', ['-j', img]).split('\n')) {
        const dev = line.split(':')[0];
        if (dev) quiet('losetup', ['-d', dev]);
      }
      // Never rm -r through a mount that is still there.
      if (!mounted(mnt)) rmSync(dir, { recursive: true, force: true });
    }
  },
);
