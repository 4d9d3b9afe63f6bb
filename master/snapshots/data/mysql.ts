/**
 * MySQL/MariaDB: `FLUSH TABLES WITH READ LOCK` is held only for the instant of a file-system snapshot
 * (btrfs/LVM/ZFS), then released; the snapshot is then copied at leisure. Writers wait only while the
 * lock is held, so this is an online snapshot only where the file-system snapshot is instant: with the
 * plain-copy fallback the lock would last the whole copy, so the engine refuses that unless asked.
 *
 * The session is an interface (a `mysql` client process in production, a recorder in unit tests): the
 * lock belongs to the session and dies with it, so a crash never leaves the server locked.
 */
import { CorralError } from '../../util/errors.js';

export interface SqlSession {
  query(sql: string): Promise<string[][]>;
  close(): void;
}

export interface MysqlSnapshotResult {
  method: 'mysql-flush-lock';
  /** How long writers were blocked: lock acquired → released. */
  lockHeldMs: number;
  binlog?: { file: string; position: string };
}

/**
 * Takes the read lock, records the binlog position (for point-in-time recovery), runs `fsSnapshot`
 * and unlocks, whatever happens; the session is closed at the end.
 */
export async function snapshotMysql(
  session: SqlSession,
  fsSnapshot: () => Promise<void>,
  options: { instant: boolean; allowSlowLock?: boolean },
): Promise<MysqlSnapshotResult> {
  if (!options.instant && !options.allowSlowLock) {
    throw new CorralError(
      'DATA_SNAPSHOT_FAILED',
      'the data path is not on a file system with instant snapshots (btrfs): the read lock would block writers for the whole copy',
    );
  }
  try {
    await session.query('FLUSH TABLES WITH READ LOCK');
    const locked = Date.now();
    let binlog: MysqlSnapshotResult['binlog'];
    try {
      const [row] = await session.query('SHOW MASTER STATUS');
      if (row?.[0] && row[1]) binlog = { file: row[0], position: row[1] };
      await fsSnapshot();
    } finally {
      await session.query('UNLOCK TABLES');
    }
    return { method: 'mysql-flush-lock', lockHeldMs: Date.now() - locked, ...(binlog ? { binlog } : {}) };
  } catch (err) {
    if (err instanceof CorralError) throw err;
    throw new CorralError('DATA_SNAPSHOT_FAILED', `MySQL snapshot failed: ${(err as Error).message}`);
  } finally {
    session.close();
  }
}
