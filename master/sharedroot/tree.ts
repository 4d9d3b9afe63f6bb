/**
 * Shared root trees on disk: SHAREDROOT_DIR/roots/NAME/VERSION/. A version is built under a temporary
 * name and renamed into place when complete, so an export never points at half a tree. Copies use
 * `cp -a --reflink=auto` (instant on btrfs/xfs, a full copy elsewhere).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../util/errors.js';

const exec = promisify(execFile);

export const ROOT_ID_FILE = 'etc/corral-root-id';
export const ROOT_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function rootsDir(sharedRootDir: string): string {
  return join(sharedRootDir, 'roots');
}

export function versionDir(sharedRootDir: string, name: string, version: number): string {
  return join(rootsDir(sharedRootDir), name, String(version));
}

/** The content of /etc/corral-root-id: name, version and a random tag, so two builds never look alike. */
export function newRootId(name: string, version: number): string {
  return `${name}@${version}:${randomBytes(4).toString('hex')}`;
}

export type TreeSource =
  { kind: 'dir'; path: string } | { kind: 'tarball'; path: string; format: 'tar' | 'tar.gz' | 'tar.zst' };

async function run(cmd: string, args: string[], what: string): Promise<void> {
  try {
    await exec(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CorralError(
      'SHAREDROOT_FAILED',
      `${what}: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
}

/** Builds version `version` of `name` from `source`; returns its root id. */
export async function buildVersion(
  sharedRootDir: string,
  name: string,
  version: number,
  source: TreeSource,
): Promise<string> {
  const dest = versionDir(sharedRootDir, name, version);
  if (existsSync(dest))
    throw new CorralError('CONFLICT', `shared root ${name} version ${version} already exists on disk`);
  const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true, mode: 0o755 });
  try {
    if (source.kind === 'dir') {
      const st = await stat(source.path).catch(() => undefined);
      if (!st?.isDirectory())
        throw new CorralError('SHAREDROOT_INVALID', `${source.path} is not a directory`);
      await run('cp', ['-a', '--reflink=auto', `${source.path}/.`, tmp], `copying ${source.path}`);
    } else {
      const z = source.format === 'tar.gz' ? ['-z'] : source.format === 'tar.zst' ? ['--zstd'] : [];
      await run(
        'tar',
        ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-x', ...z, '-f', source.path, '-C', tmp],
        `unpacking ${source.path}`,
      );
    }
    // lstat: /sbin/init is often an absolute symlink (/lib/systemd/systemd) that only resolves inside the tree.
    const init = await lstat(join(tmp, 'sbin/init')).catch(() => undefined);
    if (!init)
      throw new CorralError('SHAREDROOT_INVALID', 'the tree has no /sbin/init: not a root filesystem');
    const rootId = newRootId(name, version);
    await mkdir(join(tmp, 'etc'), { recursive: true });
    await writeFile(join(tmp, ROOT_ID_FILE), `${rootId}\n`, { mode: 0o644 });
    await rename(tmp, dest);
    return rootId;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** A new version as a copy of an existing one (the draft an operator edits before publishing). */
export async function copyVersion(
  sharedRootDir: string,
  name: string,
  from: number,
  to: number,
): Promise<string> {
  return buildVersion(sharedRootDir, name, to, { kind: 'dir', path: versionDir(sharedRootDir, name, from) });
}

export async function removeVersion(sharedRootDir: string, name: string, version: number): Promise<void> {
  await rm(versionDir(sharedRootDir, name, version), { recursive: true, force: true });
}

export async function removeRoot(sharedRootDir: string, name: string): Promise<void> {
  await rm(join(rootsDir(sharedRootDir), name), { recursive: true, force: true });
}
