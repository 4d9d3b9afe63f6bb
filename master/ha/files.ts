/**
 * Boot files, images and SSH keys follow the primary by content hash: the primary lists the files under a
 * few data-directory folders with their sha256; a backup fetches what differs, checks the hash, and renames
 * it into place (never a half-written file). Hashes are cached by size and mtime.
 *
 * The SSH keys matter at a fail-over: without the master's client key (ssh/id_ed25519, the one in every
 * deployed node's authorized_keys) the new primary cannot reach a node; without the host-key pins
 * (ssh/known_nodes, the node's Corral-made key) it refuses them; without a deployment's waiting host key
 * (sharedroot nodes/<mac>/deploy/) an installer that asks the new primary for its plan fails with "cannot
 * fetch the SSH host key of the deploy plan" (seen in an unplanned fail-over mid-deploy, issue 16). Those
 * files travel as `ssh/<file>` and `node-keys/<mac>/<ssh|deploy>/<file>`, and are written mode 0600.
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
import type { FrozenConfig } from '../config.js';
import { sharedRootDir } from '../sharedroot/service.js';
import { CorralError } from '../util/errors.js';

/** Data-directory folders that replicate as files (TFTP loaders, node environment, OS images). */
export const SYNCED_DIRS = ['tftp', 'node-image', 'images'] as const;

/** Where a master keeps what replicates: its data directory, and the shared root's per-node folders. */
export interface SyncLayout {
  dataDir: string;
  /** sharedroot/service.ts sharedRootDir(config): node host keys live in its nodes/<mac>/ folders. */
  sharedRootDir: string;
}

/** The layout of a running master's config. */
export function syncLayout(config: Pick<FrozenConfig, 'dataDir' | 'sharedRoot'>): SyncLayout {
  return { dataDir: config.dataDir, sharedRootDir: sharedRootDir(config) };
}

/** The master's SSH client key and its host-key pins (deploy/ssh.ts, remote/host-keys.ts). */
const SSH_FILE = /^(id_ed25519(\.pub)?|known_nodes)$/;
/** A node's Corral-made host key, installed (`ssh`) or waiting for its deployment (`deploy`). */
const NODE_KEY_DIRS = ['ssh', 'deploy'] as const;
const NODE_KEY_FILE = /^ssh_host_ed25519_key(\.pub)?$/;
const NODE_DIR = /^[0-9a-f]{2}(-[0-9a-f]{2}){5}$/;

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

/** Every replicated file a master holds now, by its manifest path (`tftp/…`, `ssh/…`, `node-keys/…`). */
function localSyncedPaths(layout: SyncLayout): string[] {
  const paths: string[] = [];
  for (const d of SYNCED_DIRS) walk(layout.dataDir, join(layout.dataDir, d), paths);
  const ssh = join(layout.dataDir, 'ssh');
  if (existsSync(ssh)) {
    for (const e of readdirSync(ssh, { withFileTypes: true }))
      if (e.isFile() && SSH_FILE.test(e.name)) paths.push(`ssh/${e.name}`);
  }
  const nodes = join(layout.sharedRootDir, 'nodes');
  if (existsSync(nodes)) {
    for (const n of readdirSync(nodes, { withFileTypes: true })) {
      if (!n.isDirectory() || !NODE_DIR.test(n.name)) continue;
      for (const sub of NODE_KEY_DIRS) {
        const dir = join(nodes, n.name, sub);
        if (!existsSync(dir)) continue;
        for (const e of readdirSync(dir, { withFileTypes: true }))
          if (e.isFile() && NODE_KEY_FILE.test(e.name)) paths.push(`node-keys/${n.name}/${sub}/${e.name}`);
      }
    }
  }
  return paths.sort();
}

/** The local file behind a manifest path; undefined for a path that is not replicated (refused). */
export function syncedFilePath(layout: SyncLayout, p: string): string | undefined {
  if (!safeSyncedPath(p)) return undefined;
  const parts = p.split('/');
  if (parts[0] === 'node-keys') return join(layout.sharedRootDir, 'nodes', ...parts.slice(1));
  return join(layout.dataDir, ...parts);
}

/** Private keys and pins: readable by the master only, as deploy/ssh.ts and ssh-keygen make them. */
function isPrivate(p: string): boolean {
  return p.startsWith('ssh/') || p.startsWith('node-keys/');
}

export async function fileManifest(layout: SyncLayout): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for (const p of localSyncedPaths(layout)) {
    const abs = syncedFilePath(layout, p)!;
    out.push({ path: p, size: statSync(abs).size, sha256: await sha256File(abs) });
  }
  return out;
}

/**
 * A manifest path is only ever relative, inside one of the synced folders, without `..`; in `ssh/` and
 * `node-keys/` only the key files themselves (never, say, `ssh/../corral.db` or a node's overlay).
 */
export function safeSyncedPath(p: string): boolean {
  const parts = p.split('/');
  if (!parts.every((x) => x !== '' && x !== '.' && x !== '..' && !x.includes('\\') && !x.includes('\0')))
    return false;
  if (parts[0] === 'ssh') return parts.length === 2 && SSH_FILE.test(parts[1]!);
  if (parts[0] === 'node-keys') {
    return (
      parts.length === 4 &&
      NODE_DIR.test(parts[1]!) &&
      (NODE_KEY_DIRS as readonly string[]).includes(parts[2]!) &&
      NODE_KEY_FILE.test(parts[3]!)
    );
  }
  return parts.length >= 2 && (SYNCED_DIRS as readonly string[]).includes(parts[0] ?? '');
}

export interface SyncResult {
  fetched: number;
  removed: number;
  bytes: number;
}

/**
 * Makes the replicated files of `layout` equal to `manifest`, fetching each differing file with `fetchFile`
 * (a web stream), verifying its sha256 before the rename. Files absent from the manifest are removed.
 */
export async function syncFiles(
  layout: SyncLayout,
  manifest: readonly FileEntry[],
  fetchFile: (path: string) => Promise<WebReadableStream<Uint8Array>>,
): Promise<SyncResult> {
  const result: SyncResult = { fetched: 0, removed: 0, bytes: 0 };
  const wanted = new Set<string>();
  for (const f of manifest) {
    if (!safeSyncedPath(f.path)) throw new CorralError('CLONE_FAILED', `refusing file path ${f.path}`);
    wanted.add(f.path);
    const abs = syncedFilePath(layout, f.path)!;
    if (existsSync(abs) && statSync(abs).size === f.size && (await sha256File(abs)) === f.sha256) continue;
    const secret = isPrivate(f.path);
    mkdirSync(dirname(abs), { recursive: true, ...(secret ? { mode: 0o700 } : {}) });
    const part = `${abs}.part`;
    const h = createHash('sha256');
    const body = Readable.fromWeb(await fetchFile(f.path));
    body.on('data', (c: Buffer) => h.update(c));
    await pipeline(body, createWriteStream(part, secret ? { mode: 0o600 } : {}));
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
  for (const p of localSyncedPaths(layout)) {
    if (!wanted.has(p)) {
      rmSync(syncedFilePath(layout, p)!, { force: true });
      result.removed++;
    }
  }
  return result;
}
