/**
 * Boot files and images follow the primary by content hash: the primary lists the files under a few
 * data-directory folders with their sha256; a backup fetches what differs, checks the hash, and renames
 * it into place (never a half-written file). Hashes are cached by size and mtime.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CorralError } from '../util/errors.js';

/** Data-directory folders that replicate as files (TFTP loaders, node environment, OS images). */
export const SYNCED_DIRS = ['tftp', 'node-image', 'images'] as const;

export interface FileEntry {
  path: string;
  size: number;
  sha256: string;
}

const hashCache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

export async function sha256File(path: string): Promise<string> {
  const st = statSync(path);
  const hit = hashCache.get(path);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  const sha256 = h.digest('hex');
  hashCache.set(path, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return sha256;
}

function walk(root: string, dir: string, out: string[]): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(root, p, out);
    // Files still being written are not synced (nor removed from a backup): `.part` (this sync), `.tmp` and
    // `.tmp-PID-HEX` (the node environment builders), `.import-*` (image import).
    else if (e.isFile() && !/\.part$|\.tmp(-\d+-[0-9a-f]+)?$|^\.import-/.test(e.name))
      out.push(relative(root, p).split(sep).join('/'));
  }
}

export async function fileManifest(
  dataDir: string,
  dirs: readonly string[] = SYNCED_DIRS,
): Promise<FileEntry[]> {
  const paths: string[] = [];
  for (const d of dirs) walk(dataDir, join(dataDir, d), paths);
  const out: FileEntry[] = [];
  for (const p of paths.sort()) {
    const abs = join(dataDir, p);
    out.push({ path: p, size: statSync(abs).size, sha256: await sha256File(abs) });
  }
  return out;
}

/** A manifest path is only ever relative, inside one of the synced folders, without `..`. */
export function safeSyncedPath(p: string, dirs: readonly string[] = SYNCED_DIRS): boolean {
  const parts = p.split('/');
  return (
    parts.length >= 2 &&
    (dirs as readonly string[]).includes(parts[0] ?? '') &&
    parts.every((x) => x !== '' && x !== '.' && x !== '..' && !x.includes('\\') && !x.includes('\0'))
  );
}

export interface SyncResult {
  fetched: number;
  removed: number;
  bytes: number;
}

/**
 * Makes the synced folders of `dataDir` equal to `manifest`, fetching each differing file with `fetchFile`
 * (a web stream), verifying its sha256 before the rename. Files absent from the manifest are removed.
 */
export async function syncFiles(
  dataDir: string,
  manifest: readonly FileEntry[],
  fetchFile: (path: string) => Promise<WebReadableStream<Uint8Array>>,
): Promise<SyncResult> {
  const result: SyncResult = { fetched: 0, removed: 0, bytes: 0 };
  const wanted = new Set<string>();
  for (const f of manifest) {
    if (!safeSyncedPath(f.path)) throw new CorralError('CLONE_FAILED', `refusing file path ${f.path}`);
    wanted.add(f.path);
    const abs = join(dataDir, f.path);
    if (existsSync(abs) && statSync(abs).size === f.size && (await sha256File(abs)) === f.sha256) continue;
    mkdirSync(dirname(abs), { recursive: true });
    const part = `${abs}.part`;
    const h = createHash('sha256');
    const body = Readable.fromWeb(await fetchFile(f.path));
    body.on('data', (c: Buffer) => h.update(c));
    await pipeline(body, createWriteStream(part));
    const got = h.digest('hex');
    if (got !== f.sha256) {
      rmSync(part, { force: true });
      throw new CorralError(
        'CLONE_FAILED',
        `checksum mismatch for ${f.path}: expected ${f.sha256}, got ${got}`,
      );
    }
    renameSync(part, abs);
    result.fetched++;
    result.bytes += f.size;
  }
  const local: string[] = [];
  for (const d of SYNCED_DIRS) walk(dataDir, join(dataDir, d), local);
  for (const p of local) {
    if (!wanted.has(p)) {
      rmSync(join(dataDir, p), { force: true });
      result.removed++;
    }
  }
  return result;
}
