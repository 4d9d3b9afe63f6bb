/**
 * Snapshots of directory trees: shared roots (the read-only NFS root of diskless nodes) and OS images.
 * On btrfs, where the tree is a subvolume, a snapshot is `btrfs subvolume snapshot -r` (instant,
 * copy-on-write). Elsewhere: immutable trees (content-addressed images) are hard-linked (`cp -al`: no
 * data copied, safe because nothing modifies them in place); mutable trees are copied with
 * `cp -a --reflink=auto` (a reflink on XFS/btrfs, a plain copy on ext4).
 *
 * A rollback builds the new tree beside the live one and swaps them with two renames, keeping the
 * previous tree, so there is no moment without a tree at the live path. Nodes booting from an NFS export
 * of that path see the rolled-back tree on their next boot once the export is refreshed (`exportfs -r`,
 * the shared-root module's job); running nodes keep the tree they mounted.
 */
import { execFile } from 'node:child_process';
import { existsSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CorralError } from '../util/errors.js';

const exec = promisify(execFile);

export type TreeMethod = 'btrfs-snapshot' | 'hardlink' | 'reflink-or-copy';

export interface TreeFacts {
  /** `stat -f -c %T`: 'btrfs', 'ext2/ext3', 'xfs', 'tmpfs', ... */
  fsType: string;
  /** The tree is a btrfs subvolume root (inode 256 on btrfs). */
  subvolume: boolean;
}

export interface TreePlan {
  method: TreeMethod;
  argv: string[];
}

/** Which command snapshots `src` into `dst` (pure: the facts are gathered by `treeFacts`). */
export function planTreeSnapshot(facts: TreeFacts, src: string, dst: string, immutable: boolean): TreePlan {
  if (facts.fsType === 'btrfs' && facts.subvolume) {
    return { method: 'btrfs-snapshot', argv: ['btrfs', 'subvolume', 'snapshot', '-r', src, dst] };
  }
  if (immutable) return { method: 'hardlink', argv: ['cp', '-al', '--', src, dst] };
  return { method: 'reflink-or-copy', argv: ['cp', '-a', '--reflink=auto', '--', src, dst] };
}

/**
 * Which command makes a writable tree at `dst` from the snapshot `snapshot` for a rollback. A btrfs
 * read-only snapshot is snapshotted again, writable; elsewhere a copy (never hard links: the live tree
 * is written to, and writes through a hard link would change the snapshot).
 */
export function planTreeRollback(facts: TreeFacts, snapshot: string, dst: string): TreePlan {
  if (facts.fsType === 'btrfs' && facts.subvolume) {
    return { method: 'btrfs-snapshot', argv: ['btrfs', 'subvolume', 'snapshot', snapshot, dst] };
  }
  return { method: 'reflink-or-copy', argv: ['cp', '-a', '--reflink=auto', '--', snapshot, dst] };
}

export async function treeFacts(path: string): Promise<TreeFacts> {
  const { stdout } = await exec('stat', ['-f', '-c', '%T', path]);
  const fsType = stdout.trim();
  // On btrfs every subvolume's root directory has inode number 256 (BTRFS_FIRST_FREE_OBJECTID).
  const subvolume = fsType === 'btrfs' && statSync(path).ino === 256;
  return { fsType, subvolume };
}

async function run(plan: TreePlan): Promise<void> {
  const [cmd, ...args] = plan.argv;
  try {
    await exec(cmd ?? 'false', args, { maxBuffer: 1 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CorralError('SNAPSHOT_FAILED', `${plan.argv.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

/** Snapshots the tree `src` to `dst` (which must not exist). */
export async function snapshotTree(
  src: string,
  dst: string,
  options: { immutable: boolean },
): Promise<TreePlan> {
  if (existsSync(dst)) throw new CorralError('CONFLICT', `snapshot target ${dst} exists`);
  const plan = planTreeSnapshot(await treeFacts(src), src, dst, options.immutable);
  await run(plan);
  return plan;
}

/**
 * Puts the tree of `snapshot` at `live`, keeping the previous live tree as `live.prev-<stamp>`.
 * Returns the previous tree's path.
 */
export async function rollbackTree(
  snapshot: string,
  live: string,
  stamp: string,
): Promise<{ previous: string; plan: TreePlan }> {
  const staging = join(dirname(live), `.${basename(live)}.rollback-${stamp}`);
  const previous = `${live}.prev-${stamp}`;
  const plan = planTreeRollback(await treeFacts(snapshot), snapshot, staging);
  await run(plan);
  if (existsSync(live)) renameSync(live, previous);
  renameSync(staging, live);
  return { previous, plan };
}
