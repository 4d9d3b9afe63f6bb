/**
 * A backup master copies the primary's boot files (node-image/, tftp/, images/). Files still being written
 * there — by the master's own node environment build (issue 22), the installer tools or an image import —
 * are neither listed by the primary nor removed from the backup, where its own build may be writing them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileManifest, syncFiles } from '../../master/ha/files.js';

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
      (await fileManifest(dir)).map((f) => f.path),
      ['node-image/vmlinuz'],
    );
    const r = await syncFiles(dir, [], () => Promise.reject(new Error('nothing to fetch')));
    assert.equal(r.removed, 1);
    assert.equal(existsSync(join(dir, 'node-image', 'vmlinuz')), false);
    for (const p of inProgress) assert.ok(existsSync(join(dir, p)), p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
