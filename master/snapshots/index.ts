/**
 * The snapshots subsystem as master.ts wires it: restore points, their schedule, and `takeSnapshot` for
 * other subsystems to call before a risky operation (image delete, mass deploy).
 */
import { join } from 'node:path';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { Logger } from '../util/logger.js';
import { installPath } from '../util/paths.js';
import { markMasterRunning } from './offline.js';
import type { Manifest } from './manifest.js';
import { RestorePoints } from './restore-points.js';
import { RetentionPolicySchema, type RetentionPolicy } from './retention.js';
import { SnapshotScheduler } from './scheduler.js';

export const RETENTION_SETTING = 'snapshots.retention';

export interface Snapshots {
  points: RestorePoints;
  /**
   * An automatic restore point before a risky operation; resolves to undefined when the config turns
   * them off (snapshots.beforeRisky). Await it before the operation; a failure throws SNAPSHOT_FAILED,
   * and the caller should not go ahead.
   */
  takeSnapshot(reason: string, actor?: string | null): Promise<Manifest | undefined>;
  /** The retention policy in force: the one last applied from the API/console, else the config's. */
  retention(): RetentionPolicy;
  close(): Promise<void>;
}

export function snapshotDir(config: FrozenConfig): string {
  return config.snapshots.dir ?? join(config.dataDir, 'snapshots');
}

export function startSnapshots(deps: { repos: Repos; config: FrozenConfig; logger: Logger }): Snapshots {
  const { repos, config, logger } = deps;
  const dir = snapshotDir(config);
  const points = new RestorePoints({
    repos,
    dir,
    logger,
    config,
    templatesDir: installPath('templates'),
  });
  const unmark = markMasterRunning(dir);
  const retention = (): RetentionPolicy => {
    const saved = RetentionPolicySchema.safeParse(repos.settings.get(RETENTION_SETTING));
    return saved.success ? saved.data : { ...config.snapshots.retention };
  };
  const scheduler = new SnapshotScheduler({
    points,
    schedule: () => ({ ...config.snapshots.schedule }),
    retention,
    logger: logger.child({ module: 'snapshots' }),
    tickMs: config.snapshots.tickSeconds * 1000,
  });
  scheduler.start();
  return {
    points,
    takeSnapshot: async (reason, actor = null) =>
      config.snapshots.beforeRisky ? points.takeSnapshot(reason, actor) : undefined,
    retention,
    close: async () => {
      await scheduler.close();
      unmark();
    },
  };
}

export { RestorePoints } from './restore-points.js';
export type { Manifest } from './manifest.js';
