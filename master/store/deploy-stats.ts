/**
 * Deployment outcomes and durations, aggregated by SQLite for the Prometheus exposition (issue 19): one
 * query at scrape time instead of a counter in every deploy code path, so the figures survive restarts
 * and fail-overs (they are the deployments table's, which replicates).
 */
import { sqliteOf, type SqliteStore, type Store } from './db.js';
import { DEPLOY_STATUSES, type DeployStatus } from './deployments.js';

/** Upper bounds (seconds) of the duration histogram: an install takes minutes, a stall fails at 15 min. */
export const DEPLOY_DURATION_BUCKETS = [30, 60, 120, 300, 600, 900, 1800, 3600] as const;

export interface DeployStats {
  /** Deployments by current status (pending/installing/installed are in flight; booted/failed finished). */
  byStatus: Record<DeployStatus, number>;
  /** Finished deployments (booted or failed): cumulative bucket counts, sum and count of their durations. */
  durations: Record<
    'booted' | 'failed',
    { buckets: { le: number; count: number }[]; sum: number; count: number }
  >;
}

export class DeployStatsQuery {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  read(): DeployStats {
    const byStatus = Object.fromEntries(DEPLOY_STATUSES.map((s) => [s, 0])) as Record<DeployStatus, number>;
    const counts = this.store.db
      .prepare('SELECT status, COUNT(*) AS n FROM deployments GROUP BY status')
      .all() as { status: DeployStatus; n: number }[];
    for (const r of counts) byStatus[r.status] = r.n;
    const bucketCols = DEPLOY_DURATION_BUCKETS.map((b, i) => `SUM(d <= ${b}) AS b${i}`).join(', ');
    const rows = this.store.db
      .prepare(
        `SELECT status, COUNT(*) AS n, TOTAL(d) AS s, ${bucketCols} FROM (
           SELECT status, (julianday(finished_at) - julianday(created_at)) * 86400.0 AS d
             FROM deployments WHERE status IN ('booted', 'failed') AND finished_at IS NOT NULL
         ) GROUP BY status`,
      )
      .all() as ({ status: 'booted' | 'failed'; n: number; s: number } & Record<string, number>)[];
    const empty = (): DeployStats['durations']['booted'] => ({
      buckets: DEPLOY_DURATION_BUCKETS.map((le) => ({ le, count: 0 })),
      sum: 0,
      count: 0,
    });
    const durations = { booted: empty(), failed: empty() };
    for (const r of rows) {
      durations[r.status] = {
        buckets: DEPLOY_DURATION_BUCKETS.map((le, i) => ({ le, count: r[`b${i}`] ?? 0 })),
        sum: r.s,
        count: r.n,
      };
    }
    return { byStatus, durations };
  }
}
