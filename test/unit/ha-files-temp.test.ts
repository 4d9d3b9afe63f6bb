/**
 * A backup master copies the primary's boot files (node-image/, tftp/, images/). Files still being written
 * there — by the master's own node environment build (issue 22), the installer tools or an image import —
 * are neither listed by the primary nor removed from the backup, where its own build may be writing them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileManifest, syncedFilePath, syncFiles, type SyncLayout } from '../../master/ha/files.js';

test('files being written are not in the manifest and survive a sync', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-hafiles-'));
  try {
    mkdirSync(join(dir, 'node-image'));
    mkdirSync(join(dir, 'images'));
    const inProgress = [
      'node-image/vmlinuz.tmp-4242-0a1b2c3d',
      'node-image/installer-tools.img.tmp',
      'images/.import-0123456789ab',
      'images/abc.tar.zst.part',
    ];
    for (const p of ['node-image/vmlinuz', ...inProgress]) writeFileSync(join(dir, p), p);
    assert.deepEqual(
      (await fileManifest({ dataDir: dir, sharedRootDir: join(dir, 'sharedroot') })).map((f) => f.path),
      ['node-image/vmlinuz'],
    );
    const r = await syncFiles({ dataDir: dir, sharedRootDir: join(dir, 'sharedroot') }, [], () =>
      Promise.reject(new Error('nothing to fetch')),
    );
    assert.equal(r.removed, 1);
    assert.equal(existsSync(join(dir, 'node-image', 'vmlinuz')), false);
    for (const p of inProgress) assert.ok(existsSync(join(dir, p)), p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * After a fail-over the new primary must reach and trust the nodes the old one deployed: its SSH client key
 * (in the nodes' authorized_keys), the host-key pins, and a deployment's waiting host key (an installer asks
 * the new primary for it). They replicate like boot files, with mode 0600, and nothing else of the node folders
 * (an overlay, an identity tar) or of ssh/ goes along.
 */
test('SSH client key, pins and node host keys replicate to a backup, private and nothing more', async () => {
  const root = mkdtempSync(join(tmpdir(), 'corral-hakeys-'));
  try {
    const primary: SyncLayout = { dataDir: join(root, 'p'), sharedRootDir: join(root, 'p-sharedroot') };
    // The backup's shared root is under its data directory (the default), the primary's elsewhere.
    const backup: SyncLayout = { dataDir: join(root, 'b'), sharedRootDir: join(root, 'b', 'sharedroot') };
    const node = join(primary.sharedRootDir, 'nodes', '52-54-00-12-34-56');
    for (const d of [
      join(primary.dataDir, 'ssh'),
      join(node, 'ssh'),
      join(node, 'deploy'),
      join(node, 'overlay'),
    ])
      mkdirSync(d, { recursive: true });
    const files: Record<string, string> = {
      'ssh/id_ed25519': 'PRIVATE client key',
      'ssh/id_ed25519.pub': 'ssh-ed25519 AAAA corral',
      'ssh/known_nodes': '52:54:00:12:34:56 ssh-ed25519 AAAA\n',
      'node-keys/52-54-00-12-34-56/deploy/ssh_host_ed25519_key': 'PRIVATE waiting host key',
      'node-keys/52-54-00-12-34-56/deploy/ssh_host_ed25519_key.pub': 'ssh-ed25519 BBBB',
      'node-keys/52-54-00-12-34-56/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 CCCC',
    };
    for (const [p, text] of Object.entries(files))
      writeFileSync(syncedFilePath(primary, p)!, text, { mode: 0o600 });
    writeFileSync(join(primary.dataDir, 'ssh', 'notes.txt'), 'not a key');
    writeFileSync(join(node, 'overlay', 'etc-shadow'), 'a node overlay');
    writeFileSync(join(node, 'ssh', 'ssh_host_rsa_key'), 'not a Corral-made key');

    const manifest = await fileManifest(primary);
    assert.deepEqual(manifest.map((f) => f.path).sort(), Object.keys(files).sort());
    const fetchFile = (p: string): Promise<WebReadableStream<Uint8Array>> =>
      Promise.resolve(
        Readable.toWeb(createReadStream(syncedFilePath(primary, p)!)) as WebReadableStream<Uint8Array>,
      );
    const r = await syncFiles(backup, manifest, fetchFile);
    assert.equal(r.fetched, Object.keys(files).length);
    for (const [p, text] of Object.entries(files)) {
      const at = syncedFilePath(backup, p)!;
      assert.equal(readFileSync(at, 'utf8'), text, p);
      assert.equal(statSync(at).mode & 0o777, 0o600, `${p} is private on the backup`);
    }
    assert.ok(
      existsSync(join(backup.sharedRootDir, 'nodes', '52-54-00-12-34-56', 'deploy', 'ssh_host_ed25519_key')),
    );

    // The deployment finished on the primary: its waiting key moved to ssh/. The backup follows (and drops the old).
    const done = await syncFiles(
      backup,
      manifest.filter((f) => !f.path.includes('/deploy/')),
      fetchFile,
    );
    assert.equal(done.removed, 2);

    // A hostile or broken manifest cannot reach outside the key files.
    for (const bad of [
      'ssh/../corral.db',
      'ssh/id_rsa',
      'node-keys/52-54-00-12-34-56/overlay/etc-shadow',
      'node-keys/../../etc/ssh_host_ed25519_key',
      'node-keys/x/ssh/ssh_host_ed25519_key',
    ]) {
      assert.equal(syncedFilePath(backup, bad), undefined, bad);
      await assert.rejects(
        syncFiles(backup, [{ path: bad, size: 1, sha256: '0'.repeat(64) }], fetchFile),
        /refusing file path/,
        bad,
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
