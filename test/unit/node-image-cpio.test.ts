import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { decodeNewc, encodeNewc, type CpioEntry } from '../../node-images/cpio.js';
import { ImageTree, elfIsDynamic } from '../../node-images/initramfs.js';

const entries: CpioEntry[] = [
  { path: 'init', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
  { path: 'bin/sh', type: 'symlink', target: '/bin/busybox' },
  { path: 'bin', type: 'dir', mode: 0o755 },
  { path: 'dev', type: 'dir', mode: 0o755 },
  { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
  { path: 'bin/busybox', type: 'file', mode: 0o755, data: Buffer.from('x'.repeat(5)) },
];

test('newc archive: sorted, 4-byte aligned, owners 0, one fixed mtime, readable back', () => {
  const archive = encodeNewc(entries, 1700000000);
  assert.equal(archive.length % 4, 0);
  const listed = decodeNewc(archive);
  assert.deepEqual(
    listed.map((e) => e.path),
    ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init'],
  );
  for (const e of listed) {
    assert.equal(e.uid, 0);
    assert.equal(e.gid, 0);
    assert.equal(e.mtime, 1700000000);
  }
  const init = listed.find((e) => e.path === 'init');
  assert.equal(init?.mode, 0o100755);
  assert.equal(init?.data.toString(), '#!/bin/sh\necho hi\n');
  assert.equal(listed.find((e) => e.path === 'bin/sh')?.data.toString(), '/bin/busybox');
  assert.equal(listed.find((e) => e.path === 'dev/console')?.mode, 0o020600);
});

test('newc archive: the same entries in any order give the same bytes', () => {
  const a = encodeNewc(entries, 0);
  const b = encodeNewc([...entries].reverse(), 0);
  assert.ok(a.equals(b));
});

test('newc archive: GNU cpio lists it', () => {
  const listing = execFileSync('cpio', ['-it', '--quiet'], {
    input: encodeNewc(entries, 0),
    encoding: 'utf8',
  });
  assert.deepEqual(listing.trim().split('\n'), [
    'bin',
    'bin/busybox',
    'bin/sh',
    'dev',
    'dev/console',
    'init',
  ]);
});

test('newc archive: refuses duplicates, absolute paths and orphans', () => {
  const dir: CpioEntry = { path: 'a', type: 'dir', mode: 0o755 };
  assert.throws(() => encodeNewc([dir, dir], 0), /duplicate/);
  assert.throws(() => encodeNewc([{ path: '/abs', type: 'dir', mode: 0o755 }], 0), /relative/);
  assert.throws(() => encodeNewc([{ path: 'x/y', type: 'dir', mode: 0o755 }], 0), /no parent/);
});

test('decodeNewc: a truncated archive is an error, not a short listing', () => {
  const archive = encodeNewc(entries, 0);
  assert.throws(() => decodeNewc(archive.subarray(0, 200)), /truncated/);
  assert.throws(() => decodeNewc(Buffer.from('nonsense'.repeat(20))), /magic/);
});

test('ImageTree creates parent directories and refuses a second entry at one path', () => {
  const t = new ImageTree().file('lib/modules/v/kernel/a.ko', Buffer.from('a'));
  assert.deepEqual(
    t
      .list()
      .map((e) => `${e.type}:${e.path}`)
      .sort(),
    [
      'dir:lib',
      'dir:lib/modules',
      'dir:lib/modules/v',
      'dir:lib/modules/v/kernel',
      'file:lib/modules/v/kernel/a.ko',
    ],
  );
  assert.throws(() => t.symlink('lib/modules/v/kernel/a.ko', '/x'), /duplicate/);
});

test('elfIsDynamic tells a static busybox from a dynamic program', () => {
  assert.equal(elfIsDynamic(readFileSync('/bin/busybox')), false);
  assert.equal(elfIsDynamic(readFileSync(process.execPath)), true);
  assert.throws(() => elfIsDynamic(Buffer.from('#!/bin/sh\n')), /ELF/);
});
