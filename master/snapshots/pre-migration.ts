/**
 * An upgrade's restore point: the database copy store/pre-migration.ts staged before this Corral's
 * migrations ran becomes an automatic restore point ("before-migration-7-8", the migrations it lacks), restorable like
 * any other (an older schema is migrated on a temporary copy at restore). The copy is deleted once the
 * restore point exists; if that fails the copy stays, the error is logged, and the next start retries.
 */
import { existsSync, rmSync } from 'node:fs';
import { stagedCopyMigrations } from '../store/pre-migration.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import type { Manifest } from './manifest.js';
import type { RestorePoints } from './restore-points.js';

/** "before-migration-7-8", cut at a whole number to fit a restore point name's 64 characters (the reason lists all). */
function pointName(pending: number[]): string {
  let name = 'before-migration';
  for (const v of pending) {
    if (name.length + 1 + String(v).length > 64) break;
    name += `-${v}`;
  }
  return name;
}

export async function keepPreMigrationCopy(
  points: RestorePoints,
  copyPath: string,
  logger: Logger,
): Promise<Manifest | undefined> {
  if (!existsSync(copyPath)) return undefined;
  try {
    const { pending } = stagedCopyMigrations(copyPath);
    const manifest = await points.create({
      kind: 'auto',
      name: pointName(pending),
      reason: `before database migrations ${pending.join(', ')} (upgrade to Corral ${VERSION})`,
      sourceDb: copyPath,
    });
    rmSync(copyPath, { force: true });
    return manifest;
  } catch (err) {
    logger.error(
      { err, copy: copyPath },
      'restore point of the database before migration not created; the copy is kept and the next start retries',
    );
    return undefined;
  }
}
