/**
 * The snapshots subsystem as master.ts wires it: restore points, their schedule, and `beforeRisky` for
 * other subsystems to await before a risky operation (image delete, the console's bulk deploy). Those
 * subsystems receive only that function (util/before-risky.ts), never this module.
 */
import { join } from 'node:path';
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import type { BeforeRisky } from '../util/before-risky.js';
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
  /** takeSnapshot in the shape the risky subsystems are given (image routes, console, CLI). */
  beforeRisky: BeforeRisky;
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
  const takeSnapshot = async (reason: string, actor: string | null = null): Promise<Manifest | undefined> =>
    config.snapshots.beforeRisky ? points.takeSnapshot(reason, actor) : undefined;
  return {
    points,
    takeSnapshot,
    beforeRisky: async (reason, actor) => void (await takeSnapshot(reason, actor)),
    retention,
    close: async () => {
      await scheduler.close();
      unmark();
    },
  };
}

/**
 * `beforeRisky` for a command that changes a master's data directory directly (`corral image delete
 * --data-dir`), where no master's Snapshots is at hand: the restore point goes where the master keeps
 * its own, so it lists them all. `config` is the master's, when the command was given its config file;
 * without one the defaults apply (on, in DATA_DIR/snapshots). The folder is opened only when needed.
 */
export function directBeforeRisky(deps: {
  repos: Repos;
  dataDir: string;
  config?: FrozenConfig;
  logger: Logger;
}): BeforeRisky {
  const { repos, config, logger } = deps;
  return async (reason, actor) => {
    if (config && !config.snapshots.beforeRisky) return;
    const points = new RestorePoints({
      repos,
      dir: config ? snapshotDir(config) : join(deps.dataDir, 'snapshots'),
      logger,
      ...(config ? { config } : {}),
      templatesDir: installPath('templates'),
    });
    await points.takeSnapshot(reason, actor);
  };
}

export { RestorePoints } from './restore-points.js';
export type { Manifest } from './manifest.js';
