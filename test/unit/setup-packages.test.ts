/**
 * scripts/setup.sh's two package sets: `npm start` (--main) installs what the master and the lab run, and
 * no test-only peer; `npm test` (--test) installs that and the peers. Read from the script itself (--list),
 * so the check follows the real lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { installPath } from '../../master/util/paths.js';
import { TOOL_PACKAGES } from '../../node-images/os-image-tools.js';
import { FILE_PACKAGES, PEER_PACKAGES } from '../helpers/peers.js';

const SETUP = installPath('scripts', 'setup.sh');

function list(mode: 'main' | 'test'): string[] {
  return execFileSync('bash', [SETUP, `--${mode}`, '--list'], { encoding: 'utf8' })
    .trim()
    .split('\n');
}

/** Essential packages are on every Debian system; setup need not name them. */
function essential(pkg: string): boolean {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Essential}', pkg], { encoding: 'utf8' }).trim() === 'yes';
  } catch {
    return false;
  }
}

test('the main set has what the master and lab run, and none of the tests’ peers', () => {
  const main = list('main');
  for (const p of ['qemu-system-x86', 'ipxe-qemu', 'ipxe', 'ovmf', 'busybox-static', 'kmod', 'iproute2']) {
    assert.ok(main.includes(p), `${p} in --main`);
  }
  // The installer's tools go into an initrd the master builds at start.
  for (const p of TOOL_PACKAGES) assert.ok(main.includes(p) || essential(p), `${p} in --main or essential`);
  for (const p of ['dnsmasq-base', 'kea-admin', 'wrk', 'chromium', 'postgresql', 'tftp-hpa', 'udhcpc']) {
    assert.ok(!main.includes(p), `${p} is test-only`);
  }
});

test('the test set is the main set plus the peers, with no duplicates', () => {
  const main = list('main');
  const all = list('test');
  assert.deepEqual(all.slice(0, main.length), main);
  assert.equal(new Set(all).size, all.length, 'no package listed twice');
  for (const p of [
    'dnsmasq-base',
    'kea-admin',
    'wrk',
    'chromium',
    'postgresql',
    'openipmi',
    'isc-dhcp-client',
  ]) {
    assert.ok(all.includes(p), `${p} in --test`);
  }
});

test('every real peer a test requires (test/helpers/peers.ts) is in the test set', () => {
  const all = list('test');
  for (const p of new Set([...Object.values(PEER_PACKAGES), ...Object.values(FILE_PACKAGES)])) {
    assert.ok(all.includes(p) || essential(p), `${p} in --test (a test fails without it)`);
  }
});

test('an unknown option is refused with exit status 2', () => {
  assert.throws(
    () => execFileSync('bash', [SETUP, '--everything'], { stdio: 'pipe' }),
    (err: { status?: number; stderr?: Buffer }) =>
      err.status === 2 && /usage: scripts\/setup\.sh/.test(err.stderr?.toString() ?? ''),
  );
});
