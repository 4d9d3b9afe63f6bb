/**
 * An upgrade's restore point: the database copy store/pre-migration.ts staged before this Corral's
 * migrations ran becomes an automatic restore point ("before-migration-FROM-to-TO"), restorable like
 * any other (an older schema is migrated on a temporary copy at restore). The copy is deleted once the
 * restore point exists; if that fails the copy stays, the error is logged, and the next start retries.
 */
import { existsSync, rmSync } from 'node:fs';
import { SCHEMA_VERSION } from '../store/migrations.js';
import { stagedCopyVersion } from '../store/pre-migration.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../util/version.js';
import type { Manifest } from './manifest.js';
import type { RestorePoints } from './restore-points.js';

export async function keepPreMigrationCopy(
  points: RestorePoints,
  copyPath: string,
  logger: Logger,
): Promise<Manifest | undefined> {
  if (!existsSync(copyPath)) return undefined;
  try {
    const from = stagedCopyVersion(copyPath);
    const manifest = await points.create({
      kind: 'auto',
      name: `before-migration-${from}-to-${SCHEMA_VERSION}`,
      reason: `before migrating the database from schema ${from} to ${SCHEMA_VERSION} (Corral ${VERSION})`,
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
