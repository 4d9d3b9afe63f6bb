/**
 * `corral lab` on a directory it used before: the master's data already holds the first admin password, so
 * the lab must print (and its own poller use) that one, not a new one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAdminPassword } from '../../master/lab/lab.js';

test('the lab admin password is made once per lab directory (0600) and reused on the next run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-labpw-'));
  try {
    const first = labAdminPassword(dir);
    assert.match(first, /^\S{16,}$/);
    assert.equal(statSync(join(dir, 'admin-password')).mode & 0o777, 0o600);
    assert.equal(labAdminPassword(dir), first, 'a second lab on the same directory uses the same password');
    const other = mkdtempSync(join(tmpdir(), 'corral-labpw-'));
    try {
      assert.notEqual(labAdminPassword(other), first, 'another lab directory gets its own');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
