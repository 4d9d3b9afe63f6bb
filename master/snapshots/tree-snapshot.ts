/**
 * Snapshots of directory trees: shared roots (the read-only NFS root of diskless nodes) and OS images.
 * On btrfs, where the tree is a subvolume (every shared-root version is one there: sharedroot/tree.ts),
 * a snapshot is `btrfs subvolume snapshot -r` (instant, copy-on-write). Elsewhere: immutable trees (content-addressed images) are hard-linked (`cp -al`: no
 * data copied, safe because nothing modifies them in place); mutable trees are copied with
 * `cp -a --reflink=auto` (a reflink on XFS/btrfs, a plain copy on ext4).
 *
 * A rollback builds the new tree beside the live one and swaps them with two renames, keeping the
 * previous tree, so there is no moment without a tree at the live path. Nodes booting from an NFS export
 * of that path see the rolled-back tree on their next boot once the export is refreshed (`exportfs -r`,
 * the shared-root module's job); running nodes keep the tree they mounted.
 *
 * Each snapshot gets a checksum manifest beside it (`<snapshot>.sha256.json`: sha256 and size of every
 * regular file, the target of every symlink), and a rollback verifies the snapshot against it before
 * copying anything (SNAPSHOT_CORRUPT, naming the file). Beside, not inside: a btrfs snapshot is
 * read-only, and the tree must stay exactly as it was taken.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { z } from 'zod';
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

const TreeEntrySchema = z.union([
  z.object({ bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
  z.object({ link: z.string() }).strict(),
]);
const TreeSumsSchema = z.object({ format: z.literal(1), files: z.record(z.string(), TreeEntrySchema) });
export type TreeEntry = z.infer<typeof TreeEntrySchema>;

export function treeSumsPath(snapshot: string): string {
  return `${snapshot}.sha256.json`;
}

/**
 * sha256 and size of every regular file under `root`, and the target of every symlink, by relative
 * path. Files are streamed (image trees hold multi-gigabyte files). Devices, fifos and sockets carry no
 * content and are left out; so are owners and modes: this finds damaged content, not changed metadata.
 */
export async function checksumTree(root: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = join(root, r);
      if (e.isDirectory()) await walk(r);
      else if (e.isSymbolicLink()) out[r] = { link: await readlink(p) };
      else if (e.isFile()) {
        const hash = createHash('sha256');
        await pipeline(createReadStream(p), hash);
        out[r] = { bytes: (await lstat(p)).size, sha256: hash.digest('hex') };
      }
    }
  };
  await walk('');
  return out;
}

/** The first difference between a tree and its checksums: a changed, missing or added file. */
export function compareTree(
  want: Record<string, TreeEntry>,
  got: Record<string, TreeEntry>,
): { file: string; problem: string } | undefined {
  for (const [file, w] of Object.entries(want)) {
    const g = got[file];
    if (!g) return { file, problem: 'is missing' };
    if ('link' in w || 'link' in g) {
      if (!('link' in w && 'link' in g && w.link === g.link))
        return { file, problem: 'is not the same link' };
    } else if (w.bytes !== g.bytes) return { file, problem: `has ${g.bytes} bytes, not ${w.bytes}` };
    else if (w.sha256 !== g.sha256) return { file, problem: `has sha256 ${g.sha256}, not ${w.sha256}` };
  }
  const added = Object.keys(got).find((f) => !(f in want));
  return added === undefined ? undefined : { file: added, problem: 'was added after the snapshot' };
}

/**
 * Throws SNAPSHOT_CORRUPT when `snapshot` differs from the checksums taken with it. A snapshot without
 * them (taken before they existed) is not checked.
 */
export async function verifyTree(snapshot: string): Promise<void> {
  const path = treeSumsPath(snapshot);
  if (!existsSync(path)) return;
  let want: Record<string, TreeEntry>;
  try {
    want = TreeSumsSchema.parse(JSON.parse(readFileSync(path, 'utf8'))).files;
  } catch (err) {
    throw new CorralError(
      'SNAPSHOT_CORRUPT',
      `snapshot ${snapshot}: ${path} is unreadable: ${(err as Error).message}`,
      {
        file: basename(path),
      },
    );
  }
  const diff = compareTree(want, await checksumTree(snapshot));
  if (diff) {
    throw new CorralError(
      'SNAPSHOT_CORRUPT',
      `snapshot ${snapshot} is damaged: ${diff.file} ${diff.problem}; nothing was rolled back`,
      {
        file: diff.file,
      },
    );
  }
}

/** Snapshots the tree `src` to `dst` (which must not exist), and writes its checksums beside it. */
export async function snapshotTree(
  src: string,
  dst: string,
  options: { immutable: boolean },
): Promise<TreePlan> {
  if (existsSync(dst)) throw new CorralError('CONFLICT', `snapshot target ${dst} exists`);
  const plan = planTreeSnapshot(await treeFacts(src), src, dst, options.immutable);
  await run(plan);
  // Of the snapshot, not of the source: a mutable source may have changed while it was copied.
  const sums = { format: 1, files: await checksumTree(dst) };
  const tmp = `${treeSumsPath(dst)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(sums)}\n`, { mode: 0o600 });
  renameSync(tmp, treeSumsPath(dst));
  return plan;
}

/**
 * Puts the tree of `snapshot` at `live`, keeping the previous live tree as `live.prev-<stamp>`; refuses
 * (SNAPSHOT_CORRUPT) before touching anything if the snapshot no longer matches its checksums.
 * Returns the previous tree's path.
 */
export async function rollbackTree(
  snapshot: string,
  live: string,
  stamp: string,
): Promise<{ previous: string; plan: TreePlan }> {
  await verifyTree(snapshot);
  const staging = join(dirname(live), `.${basename(live)}.rollback-${stamp}`);
  const previous = `${live}.prev-${stamp}`;
  const plan = planTreeRollback(await treeFacts(snapshot), snapshot, staging);
  await run(plan);
  if (existsSync(live)) renameSync(live, previous);
  renameSync(staging, live);
  return { previous, plan };
}
