/**
 * Restore point manifests: the manifest's own digest (independent of key order, changed by any field),
 * and how `corral snapshot list|show` print size, checksums and creation time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatListLine, formatManifest } from '../../master/snapshots/cli-command.js';
import { manifestDigest, type Manifest } from '../../master/snapshots/manifest.js';

const DB_SHA = 'ab'.repeat(32);
const base: Manifest = {
  format: 1,
  id: '20300106T100000Z-1a2b',
  name: 'before-upgrade',
  note: '',
  kind: 'auto',
  reason: 'before deleting image debian-12 (sha256 0123456789ab)',
  createdAt: '2030-01-06T10:00:00.000Z',
  actor: 'admin',
  corralVersion: '0.1.0',
  schemaVersion: 9,
  migrations: [1, 2, 9],
  dbBytes: 3 * 2 ** 20,
  durationMs: 12,
  images: [{ sha256: '01'.repeat(32), name: 'debian-12' }],
  templates: {},
  hasConfig: true,
  files: {
    'config.json': { bytes: 2 ** 20, sha256: 'cd'.repeat(32) },
    'corral.db': { bytes: 3 * 2 ** 20, sha256: DB_SHA },
  },
};

describe('restore point manifests', () => {
  it('digests the manifest whatever the key order, and any change of a field changes it', () => {
    const reordered = Object.fromEntries(Object.entries(base).reverse()) as Manifest;
    assert.equal(manifestDigest(reordered), manifestDigest(base));
    assert.equal(manifestDigest({ ...base, manifestSha256: 'x' }), manifestDigest(base), 'itself left out');
    assert.notEqual(manifestDigest({ ...base, migrations: [1, 2, 10] }), manifestDigest(base));
    assert.notEqual(
      manifestDigest({ ...base, images: [{ sha256: '02'.repeat(32), name: 'debian-12' }] }),
      manifestDigest(base),
      'the image catalogue is covered',
    );
  });

  it('lists id, creation time, total size, database sha256, kind, name and reason', () => {
    assert.equal(
      formatListLine(base),
      '20300106T100000Z-1a2b  2030-01-06T10:00:00.000Z     4.0 MiB  abababababab  auto      before-upgrade  ' +
        'before deleting image debian-12 (sha256 0123456789ab)\n',
    );
    const { files: _files, ...legacy } = base;
    void _files;
    assert.match(formatListLine(legacy), / {2}3\.0 MiB {2}unchecked {5}auto /);
  });

  it('shows every file with its size and sha256', () => {
    const text = formatManifest({ ...base, manifestSha256: 'ef'.repeat(32) });
    assert.match(text, /^created {3}2030-01-06T10:00:00\.000Z by admin$/m);
    assert.match(text, /^size {6}4194304 bytes$/m);
    assert.match(text, new RegExp(`^manifest  sha256 ${'ef'.repeat(32)}$`, 'm'));
    assert.match(text, new RegExp(`^ {2}corral\\.db {7}3145728  sha256 ${DB_SHA}$`, 'm'));
    assert.match(text, /^ {2}config\.json {5}1048576 {2}sha256 (cd){32}$/m);
  });
});
