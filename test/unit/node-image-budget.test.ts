import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkInitrdBudget, INITRD_BUDGET_BYTES } from '../../node-images/initramfs.js';
import type { CpioEntry } from '../../node-images/cpio.js';
import { isCorralError } from '../../master/util/errors.js';

const file = (path: string, size: number): CpioEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  data: Buffer.alloc(size),
});

const entries: CpioEntry[] = [
  { path: 'lib', type: 'dir', mode: 0o755 },
  file('lib/modules/v/kernel/a.ko', 3 * 1024 * 1024),
  file('lib/modules/v/kernel/mlx5_core.ko', 4 * 1024 * 1024),
  file('bin/busybox', 2 * 1024 * 1024),
  { path: 'bin/sh', type: 'symlink', target: '/bin/busybox' },
];

test('an initrd at or under the budget passes', () => {
  checkInitrdBudget(INITRD_BUDGET_BYTES, entries);
  checkInitrdBudget(1000, entries, 1000);
});

test('an initrd over the budget fails with NODE_IMAGE_TOO_LARGE naming sizes and the largest files', () => {
  assert.throws(
    () => checkInitrdBudget(INITRD_BUDGET_BYTES + 1, entries),
    (err: unknown) => {
      assert.ok(isCorralError(err));
      assert.equal(err.code, 'NODE_IMAGE_TOO_LARGE');
      assert.match(
        err.message,
        /is 16777217 bytes \(16\.0 MiB\) gzipped, over its budget of 16777216 bytes \(16\.0 MiB;/,
      );
      // Largest first, directories and symlinks ignored.
      assert.match(
        err.message,
        /largest files: lib\/modules\/v\/kernel\/mlx5_core\.ko 4\.0 MiB, lib\/modules\/v\/kernel\/a\.ko 3\.0 MiB, bin\/busybox 2\.0 MiB$/,
      );
      return true;
    },
  );
  assert.throws(
    () => checkInitrdBudget(2_000_001, [], 2_000_000),
    /is 2000001 bytes \(1\.9 MiB\) gzipped, over its budget of 2000000 bytes/,
  );
});
