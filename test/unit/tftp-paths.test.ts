import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeRequestPath, openInRoot } from '../../master/tftp/paths.js';

describe('tftp paths: normalizeRequestPath (pure)', () => {
  const cases: Array<[string, string | { code: number }]> = [
    ['undionly.kpxe', 'undionly.kpxe'],
    ['/undionly.kpxe', 'undionly.kpxe'], // PXE ROMs send a leading '/': tftpd-hpa -s semantics
    ['//boot///x86_64/./ipxe.efi', 'boot/x86_64/ipxe.efi'],
    ['\\boot\\pxeboot.n12', 'boot/pxeboot.n12'], // Windows-style separators
    ['../etc/passwd', { code: 2 }],
    ['/../etc/passwd', { code: 2 }],
    ['boot/../../etc/passwd', { code: 2 }],
    ['boot/../undionly.kpxe', { code: 2 }], // even when it would stay inside
    ['..\\..\\etc\\passwd', { code: 2 }],
    ['..', { code: 2 }],
    ['a\0b', { code: 2 }],
    ['/', { code: 1 }],
    ['.', { code: 1 }],
  ];
  for (const [requested, expected] of cases) {
    test(JSON.stringify(requested), () => {
      const r = normalizeRequestPath(requested);
      if (typeof expected === 'string') assert.deepEqual(r, { ok: true, relative: expected });
      else assert.equal(!r.ok && r.code, expected.code);
    });
  }

  test('"..." and "..x" are ordinary names, not parent references', () => {
    assert.deepEqual(normalizeRequestPath('.../..x'), { ok: true, relative: '.../..x' });
  });
});

describe('tftp paths: openInRoot (against a real directory)', () => {
  let base: string;
  let root: string;
  let outside: string;

  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'corral-tftp-paths-')));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await mkdir(join(root, 'boot'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(root, 'undionly.kpxe'), 'ipxe-bios');
    await writeFile(join(root, 'boot', 'ipxe.efi'), 'ipxe-uefi');
    await writeFile(join(outside, 'secret'), 'secret');
    await symlink(join(outside, 'secret'), join(root, 'link-out'));
    await symlink('../outside', join(root, 'dir-out'));
    await symlink('boot/ipxe.efi', join(root, 'link-in'));
    await symlink(join(root, 'loop-b'), join(root, 'loop-a'));
    await symlink(join(root, 'loop-a'), join(root, 'loop-b'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
  });

  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function served(requested: string): Promise<string> {
    const r = await openInRoot(root, requested);
    assert.ok(r.ok, `expected ${requested} to be served, got ${r.ok ? '' : r.reason}`);
    try {
      return (await r.handle.readFile()).toString();
    } finally {
      await r.handle.close();
    }
  }

  async function refused(requested: string): Promise<number> {
    const r = await openInRoot(root, requested);
    if (r.ok) {
      await r.handle.close();
      assert.fail(`expected ${JSON.stringify(requested)} to be refused`);
    }
    return r.code;
  }

  test('serves a file at the root, with or without a leading slash', async () => {
    assert.equal(await served('undionly.kpxe'), 'ipxe-bios');
    assert.equal(await served('/undionly.kpxe'), 'ipxe-bios');
  });

  test('serves files in subdirectories and reports size and relative path', async () => {
    const r = await openInRoot(root, '\\boot\\ipxe.efi');
    assert.ok(r.ok);
    assert.equal(r.size, 'ipxe-uefi'.length);
    assert.equal(r.relative, 'boot/ipxe.efi');
    await r.handle.close();
  });

  test('follows a symlink that stays inside the root', async () => {
    assert.equal(await served('link-in'), 'ipxe-uefi');
  });

  test('refuses traversal with access violation (2)', async () => {
    assert.equal(await refused('../outside/secret'), 2);
    assert.equal(await refused('boot/../../outside/secret'), 2);
    assert.equal(await refused('..\\outside\\secret'), 2);
  });

  test('an absolute path is taken inside the root, so /etc/passwd is simply not found (1)', async () => {
    assert.equal(await refused('/etc/passwd'), 1);
    assert.equal(await refused(join(outside, 'secret')), 1);
  });

  test('refuses NUL bytes', async () => {
    assert.equal(await refused('undionly.kpxe\0.txt'), 2);
  });

  test('refuses symlinks that resolve outside the root, file or directory', async () => {
    assert.equal(await refused('link-out'), 2);
    assert.equal(await refused('dir-out/secret'), 2);
  });

  test('refuses symlink loops without hanging', async () => {
    assert.equal(await refused('loop-a'), 2);
  });

  test('refuses directories and FIFOs (without blocking on the FIFO)', async () => {
    assert.equal(await refused('boot'), 2);
    assert.equal(await refused('/'), 1);
    assert.equal(await refused('fifo'), 2);
  });

  test('missing files are not found (1)', async () => {
    assert.equal(await refused('nope.efi'), 1);
    assert.equal(await refused('undionly.kpxe/child'), 1);
  });
});
