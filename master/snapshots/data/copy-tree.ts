/**
 * A file-by-file copy of a live directory tree, for data directories whose files change while they are
 * copied (PostgreSQL during a non-exclusive backup). Files that vanish mid-copy are skipped, as
 * PostgreSQL's backup documentation allows; ownership and modes are kept when run as root, so a
 * restored data directory belongs to the database's user as before. Each file is reflinked where the
 * file system can (FICLONE), copied otherwise. Never hard links: the source keeps being written.
 */
import { constants } from 'node:fs';
import { chmod, copyFile, lchown, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface CopyStats {
  files: number;
  bytes: number;
  vanished: number;
}

export interface CopyOptions {
  /** Relative paths (from the root, '/'-separated) whose contents are not copied; the directory itself is. */
  skipContents?: readonly string[];
  /** Relative paths not copied at all. */
  skip?: readonly string[];
  /** Follow a symlink at these relative paths and copy what it points to as a directory (e.g. pg_wal). */
  followLinks?: readonly string[];
  /** Owner for everything copied (root only); by default each copy keeps its source's owner. */
  owner?: { uid: number; gid: number };
}

const asRoot = process.getuid?.() === 0;

function gone(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export async function copyLiveTree(src: string, dst: string, options: CopyOptions = {}): Promise<CopyStats> {
  const stats: CopyStats = { files: 0, bytes: 0, vanished: 0 };
  const skip = new Set(options.skip ?? []);
  const skipContents = new Set(options.skipContents ?? []);
  const follow = new Set(options.followLinks ?? []);

  const copyDir = async (from: string, to: string, rel: string): Promise<void> => {
    const st = await lstat(from);
    await mkdir(to, { recursive: true });
    await chmod(to, st.mode & 0o7777);
    if (asRoot) await lchown(to, options.owner?.uid ?? st.uid, options.owner?.gid ?? st.gid);
    if (skipContents.has(rel)) return;
    let entries;
    try {
      entries = await readdir(from, { withFileTypes: true });
    } catch (err) {
      if (gone(err)) return void stats.vanished++;
      throw err;
    }
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (skip.has(childRel)) continue;
      const f = join(from, e.name);
      const t = join(to, e.name);
      try {
        if (e.isSymbolicLink() && follow.has(childRel)) await copyDir(f, t, childRel);
        else if (e.isDirectory()) await copyDir(f, t, childRel);
        else if (e.isSymbolicLink()) await symlink(await readlink(f), t);
        // A file that changes while it is copied is fine here: WAL replay rewrites its pages.
        else if (e.isFile()) {
          const fst = await lstat(f);
          await copyFile(f, t, constants.COPYFILE_FICLONE);
          if (asRoot) await lchown(t, options.owner?.uid ?? fst.uid, options.owner?.gid ?? fst.gid);
          stats.files++;
          stats.bytes += fst.size;
        }
      } catch (err) {
        if (gone(err)) stats.vanished++;
        else throw err;
      }
    }
  };
  await copyDir(src, dst, '');
  return stats;
}
