/**
 * Shared root trees on disk: SHAREDROOT_DIR/roots/NAME/VERSION/. A version is built under a temporary
 * name and renamed into place when complete, so an export never points at half a tree.
 *
 * Where the root's directory is on btrfs, each version is a subvolume: a draft is then a writable
 * `btrfs subvolume snapshot` of the current version (instant, copy-on-write, whatever the tree's size)
 * and a delete is `btrfs subvolume delete` (no walk of the tree). Elsewhere a version is a directory and
 * a draft a `cp -a --reflink=auto` copy (shared extents on XFS, a full copy on ext4). A version made as
 * a directory before (or copied in) is drafted by copy into a new subvolume, so its next draft is instant.
 *
 * nfs-ganesha's VFS FSAL (Debian's build has no libbtrfsutil) only exports paths on a file system in the
 * mount table and refuses a subvolume that is not mounted ("Could not create export", which fails the
 * whole config), so an exported subvolume is bind-mounted on itself first (`exportable`).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../util/errors.js';
import { treeFacts, type TreeFacts } from '../snapshots/tree-snapshot.js';

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

export type VersionMethod = 'btrfs-subvolume' | 'btrfs-snapshot' | 'directory';

export interface VersionPlan {
  method: VersionMethod;
  argv: string[];
}

/**
 * Which command starts the tree `tmp` of a new version in a directory with the facts `parent`; with
 * `from` (a draft), of the version it is drafted from. Only a 'btrfs-snapshot' comes back filled: the
 * others are empty and filled by a copy or an unpack.
 */
export function planVersionTree(
  parent: TreeFacts,
  tmp: string,
  from?: { path: string; facts: TreeFacts },
): VersionPlan {
  // Writable (no -r): the draft is edited in place, then published as it is.
  if (from?.facts.fsType === 'btrfs' && from.facts.subvolume && parent.fsType === 'btrfs')
    return { method: 'btrfs-snapshot', argv: ['btrfs', 'subvolume', 'snapshot', from.path, tmp] };
  if (parent.fsType === 'btrfs')
    return { method: 'btrfs-subvolume', argv: ['btrfs', 'subvolume', 'create', tmp] };
  return { method: 'directory', argv: ['mkdir', '-m', '0755', '--', tmp] };
}

export interface MountedTreeFacts extends TreeFacts {
  /** The path is a mount point (in /proc/self/mountinfo), e.g. a subvolume bind-mounted for ganesha. */
  mounted: boolean;
}

/**
 * The commands that delete a version tree: unmounted first (lazily: ganesha may still hold it until its
 * restart with the new exports), then a subvolume is deleted as one, a directory removed file by file.
 */
export function planVersionRemove(facts: MountedTreeFacts, path: string): string[][] {
  const steps: string[][] = facts.mounted ? [['umount', '--lazy', path]] : [];
  if (facts.fsType === 'btrfs' && facts.subvolume) steps.push(['btrfs', 'subvolume', 'delete', path]);
  else steps.push(['rm', '-rf', '--', path]);
  return steps;
}

/** The command that makes an exported tree visible to ganesha, or undefined where nothing is needed. */
export function planExportMount(facts: MountedTreeFacts, path: string): string[] | undefined {
  if (facts.fsType === 'btrfs' && facts.subvolume && !facts.mounted) return ['mount', '--bind', path, path];
  return undefined;
}

/** Mount points listed in a /proc/self/mountinfo text (field 5, with its octal escapes undone). */
export function mountPoints(mountinfo: string): Set<string> {
  const out = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (field) out.add(field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

async function mountedFacts(path: string): Promise<MountedTreeFacts> {
  const facts = await treeFacts(path);
  return { ...facts, mounted: mountPoints(readFileSync('/proc/self/mountinfo', 'utf8')).has(path) };
}

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

async function runArgv(argv: string[], what: string): Promise<void> {
  const [cmd, ...args] = argv;
  await run(cmd ?? 'false', args, what);
}

/** Builds version `version` of `name` from `source`; returns its root id and how the tree was made. */
export async function buildVersion(
  sharedRootDir: string,
  name: string,
  version: number,
  source: TreeSource | { kind: 'version'; version: number },
): Promise<{ rootId: string; method: VersionMethod }> {
  const dest = versionDir(sharedRootDir, name, version);
  if (existsSync(dest))
    throw new CorralError('CONFLICT', `shared root ${name} version ${version} already exists on disk`);
  const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(tmp), { recursive: true, mode: 0o755 });
  const fromPath = source.kind === 'version' ? versionDir(sharedRootDir, name, source.version) : undefined;
  if (fromPath !== undefined && !existsSync(fromPath))
    throw new CorralError('SHAREDROOT_INVALID', `${fromPath} is not a directory`);
  const plan = planVersionTree(
    await treeFacts(dirname(tmp)),
    tmp,
    fromPath === undefined ? undefined : { path: fromPath, facts: await treeFacts(fromPath) },
  );
  await runArgv(plan.argv, `making ${tmp}`);
  try {
    if (source.kind === 'version' || source.kind === 'dir') {
      const path = fromPath ?? (source.kind === 'dir' ? source.path : '');
      const st = await stat(path).catch(() => undefined);
      if (!st?.isDirectory()) throw new CorralError('SHAREDROOT_INVALID', `${path} is not a directory`);
      if (plan.method !== 'btrfs-snapshot')
        await run('cp', ['-a', '--reflink=auto', `${path}/.`, tmp], `copying ${path}`);
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
    return { rootId, method: plan.method };
  } catch (err) {
    await removeTree(tmp).catch(() => undefined);
    throw err;
  }
}

/** A new version as a copy (on btrfs a snapshot) of an existing one: the draft an operator edits. */
export async function copyVersion(
  sharedRootDir: string,
  name: string,
  from: number,
  to: number,
): Promise<{ rootId: string; method: VersionMethod }> {
  return buildVersion(sharedRootDir, name, to, { kind: 'version', version: from });
}

/** Deletes a version's tree (or a leftover temporary one): subvolume, mounted or not, or directory. */
export async function removeTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  for (const argv of planVersionRemove(await mountedFacts(path), path))
    await runArgv(argv, `removing ${path}`);
}

export async function removeVersion(sharedRootDir: string, name: string, version: number): Promise<void> {
  await removeTree(versionDir(sharedRootDir, name, version));
}

/** Makes an exported version tree servable by ganesha (see the header); idempotent. */
export async function exportable(path: string): Promise<void> {
  const argv = planExportMount(await mountedFacts(path), path);
  if (argv) await runArgv(argv, `mounting ${path} for NFS`);
}

export async function removeRoot(sharedRootDir: string, name: string): Promise<void> {
  const dir = join(rootsDir(sharedRootDir), name);
  // Each version (and leftover) one by one first: a subvolume or a mount point is not removed by rm.
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  await rm(dir, { recursive: true, force: true });
}
