/**
 * A restore point on disk: `SNAPSHOT_DIR/<id>/` holding `manifest.json`, `corral.db` (an online backup of
 * the whole store), `config.json` (the master's effective config) and `templates/` (a copy). The
 * catalogue lives in these directories, not in the store, so restoring the store never loses the list
 * of restore points. A restore point is built in a `.tmp-` directory and renamed into place, so a
 * crash never leaves a half-written one listed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SNAPSHOT_KINDS } from './retention.js';

export const MANIFEST_FILE = 'manifest.json';
export const DB_FILE = 'corral.db';
export const CONFIG_FILE = 'config.json';
export const TEMPLATES_DIR = 'templates';

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
});
export type Manifest = z.infer<typeof ManifestSchema>;

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

export function writeManifest(dir: string, manifest: Manifest): void {
  writeFileSync(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
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
