/**
 * Restore points as a feature (issue 9): the restore points, their schedule, the upgrade's
 * pre-migration copy kept as one, `beforeRisky` for the features that run risky operations, the
 * /snapshots API and the Snapshots console pages. It takes every store: a restore point holds them all.
 */
import express from 'express';
import type { FrozenConfig } from '../config.js';
import type { Started } from '../feature.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { mountSnapshots } from '../../web-ui/pages/snapshots.js';
import { createSnapshotRouter } from './api.js';
import { startSnapshots as startSubsystem, type Snapshots } from './index.js';
import { keepPreMigrationCopy } from './pre-migration.js';

export interface SnapshotsFeatureDeps {
  config: FrozenConfig;
  repos: Repos;
  logger: Logger;
  /** Where the master copied the database before migrating it (store/pre-migration.ts), if it did. */
  preMigrationCopy: string;
}

export async function startSnapshots(deps: SnapshotsFeatureDeps): Promise<Started<{ snapshots: Snapshots }>> {
  const snapshots = startSubsystem(deps);
  try {
    await keepPreMigrationCopy(snapshots.points, deps.preMigrationCopy, deps.logger);
  } catch (err) {
    await snapshots.close();
    throw err;
  }
  return {
    snapshots,
    api: express.Router().use('/snapshots', createSnapshotRouter(snapshots, deps.repos)),
    pages: (ctx) => {
      const router = express.Router();
      mountSnapshots(router, ctx, snapshots);
      return router;
    },
    close: () => snapshots.close(),
  };
}
