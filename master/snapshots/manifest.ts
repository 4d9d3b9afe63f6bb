/**
 * A restore point on disk: `SNAPSHOT_DIR/<id>/` holding `manifest.json`, `corral.db` (an online backup of
 * the whole store), `config.json` (the master's effective config) and `templates/` (a copy). The
 * catalogue lives in these directories, not in the store, so restoring the store never loses the list
 * of restore points. A restore point is built in a `.tmp-` directory and renamed into place, so a
 * crash never leaves a half-written one listed.
 *
 * The manifest holds the size and sha256 of every file of the restore point (`files`) and a sha256 of
 * its own content (`manifestSha256`), so bit rot or a truncated copy is found before a restore uses it
 * (SNAPSHOT_CORRUPT) rather than after it has replaced the live rows.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { z } from 'zod';
import { CorralError } from '../util/errors.js';
import { SNAPSHOT_KINDS } from './retention.js';

export const MANIFEST_FILE = 'manifest.json';
export const DB_FILE = 'corral.db';
export const CONFIG_FILE = 'config.json';
export const TEMPLATES_DIR = 'templates';

const FileSumSchema = z.object({
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type FileSum = z.infer<typeof FileSumSchema>;

export const ManifestSchema = z.object({
  format: z.literal(1),
  id: z.string(),
  name: z.string(),
  note: z.string(),
  kind: z.enum(SNAPSHOT_KINDS),
  reason: z.string(),
  createdAt: z.string(),
  actor: z.string().nullable(),
  corralVersion: z.string(),
  /** Highest migration applied, and all of them: a restore point with one this Corral lacks is refused. */
  schemaVersion: z.number().int(),
  migrations: z.array(z.number().int()),
  dbBytes: z.number().int(),
  durationMs: z.number(),
  images: z.array(z.object({ sha256: z.string(), name: z.string() })),
  /** sha256 of each template file, by path relative to the templates folder. */
  templates: z.record(z.string(), z.string()),
  hasConfig: z.boolean(),
  /** Set on a safety copy of a database that was found corrupt during an offline restore. */
  corrupt: z.boolean().optional(),
  /**
   * Size and sha256 of every file, by path relative to the restore point (`corral.db`, `config.json`,
   * `templates/...`). Absent only in restore points written before checksums existed.
   */
  files: z.record(z.string(), FileSumSchema).optional(),
  /** sha256 of the canonical JSON of this manifest without this field (see manifestDigest). */
  manifestSha256: z.string().optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;
export type FileSums = Record<string, FileSum>;

/** Sortable, unique ids: UTC time to the second plus 4 random hex digits (`20250301T120000Z-1a2b`). */
export function newSnapshotId(at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

export const SNAPSHOT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;

export function readManifest(dir: string): Manifest | undefined {
  try {
    return ManifestSchema.parse(JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')));
  } catch {
    return undefined;
  }
}

/** Writes the manifest with its own digest filled in; returns what was written. */
export function writeManifest(dir: string, manifest: Manifest): Manifest {
  const sealed: Manifest = { ...manifest, manifestSha256: manifestDigest(manifest) };
  writeFileSync(join(dir, MANIFEST_FILE), `${JSON.stringify(sealed, null, 2)}\n`, { mode: 0o600 });
  return sealed;
}

/**
 * sha256 of the manifest without `manifestSha256`, over JSON with keys sorted at every level, so the
 * digest does not depend on the order in which a writer happened to put the keys.
 */
export function manifestDigest(manifest: Manifest): string {
  const { manifestSha256: _omit, ...rest } = manifest;
  void _omit;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function fileSum(path: string): FileSum {
  return {
    bytes: statSync(path).size,
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
  };
}

/**
 * Size and sha256 of the files a restore point is made of: the database copy, the config and the
 * templates. Only these: opening the database copy read-only leaves `-wal`/`-shm` files beside it,
 * which are SQLite's and not part of the restore point.
 */
export function checksumRestorePoint(dir: string): FileSums {
  const out: FileSums = {};
  for (const f of [DB_FILE, CONFIG_FILE]) if (existsSync(join(dir, f))) out[f] = fileSum(join(dir, f));
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out[relative(dir, p).split(sep).join('/')] = fileSum(p);
    }
  };
  if (existsSync(join(dir, TEMPLATES_DIR))) walk(join(dir, TEMPLATES_DIR));
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function corrupt(m: Manifest, file: string, problem: string): CorralError {
  return new CorralError(
    'SNAPSHOT_CORRUPT',
    `restore point ${m.name} (${m.id}) is damaged: ${file} ${problem}; nothing was restored`,
    { id: m.id, file },
  );
}

/**
 * Checks the manifest's own digest and every file it lists against the files in `dir`; throws
 * SNAPSHOT_CORRUPT naming the first file that is missing or differs. `except` leaves files out that
 * the caller checks on its own copy (the database, which a restore copies before it uses it).
 */
export function verifyRestorePoint(dir: string, m: Manifest, except: readonly string[] = []): void {
  if (m.manifestSha256 !== undefined && m.manifestSha256 !== manifestDigest(m)) {
    throw corrupt(m, MANIFEST_FILE, 'does not match its own checksum');
  }
  for (const [file, want] of Object.entries(m.files ?? {})) {
    if (!except.includes(file)) verifyFile(m, join(dir, ...file.split('/')), file, want);
  }
}

/** Compares one file (possibly a copy, at `path`) with the size and sha256 the manifest holds for `file`. */
export function verifyFile(m: Manifest, path: string, file: string, want: FileSum | undefined): void {
  if (!want) return;
  if (!existsSync(path)) throw corrupt(m, file, 'is missing');
  const got = fileSum(path);
  if (got.bytes !== want.bytes) throw corrupt(m, file, `has ${got.bytes} bytes, not ${want.bytes}`);
  if (got.sha256 !== want.sha256) {
    throw corrupt(m, file, `has sha256 ${got.sha256}, not ${want.sha256}`);
  }
}

/** Every complete restore point under `root`, newest first. */
export function listManifests(root: string): Manifest[] {
  if (!existsSync(root)) return [];
  const out: Manifest[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || !SNAPSHOT_ID.test(entry.name)) continue;
    const m = readManifest(join(root, entry.name));
    if (m && m.id === entry.name) out.push(m);
  }
  return out.sort((a, b) => (a.id < b.id ? 1 : -1));
}
