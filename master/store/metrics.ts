import { sqliteOf, type SqliteStore, type Store } from './db.js';

/** One sample of one source ('master' or a node's MAC). Absent values are null (a node may not know). */
export interface MetricSample {
  /** Epoch seconds. */
  at: number;
  /** CPU busy, percent of all cores. */
  cpu: number | null;
  memUsed: number | null;
  memTotal: number | null;
  diskUsed: number | null;
  diskTotal: number | null;
  /** Bytes per second, all interfaces but loopback. */
  netRx: number | null;
  netTx: number | null;
  load1: number | null;
  /** Per-service process stats (master only, raw tier). */
  procs?: Record<string, unknown> | null;
}

export const RAW_TIER = 0;
export const ROLLUP_TIER = 1;
/** Rollup bucket: five minutes. */
export const ROLLUP_SECONDS = 300;

const COLUMNS = [
  'cpu',
  'mem_used',
  'mem_total',
  'disk_used',
  'disk_total',
  'net_rx',
  'net_tx',
  'load1',
] as const;

interface MetricRow {
  source: string;
  tier: number;
  at: number;
  cpu: number | null;
  mem_used: number | null;
  mem_total: number | null;
  disk_used: number | null;
  disk_total: number | null;
  net_rx: number | null;
  net_tx: number | null;
  load1: number | null;
  samples: number;
  procs: string | null;
}

function fromRow(r: MetricRow): MetricSample {
  return {
    at: r.at,
    cpu: r.cpu,
    memUsed: r.mem_used,
    memTotal: r.mem_total,
    diskUsed: r.disk_used,
    diskTotal: r.disk_total,
    netRx: r.net_rx,
    netTx: r.net_tx,
    load1: r.load1,
    procs: r.procs ? (JSON.parse(r.procs) as Record<string, unknown>) : null,
  };
}

/**
 * Time series with two tiers (RRD-style downsampling): raw samples kept for a day, five-minute averages
 * kept for a month. Each raw insert refreshes the average of its bucket, so the rollup of the current
 * bucket is always up to date and nothing is lost if the master stops mid-bucket. Telemetry is per master
 * and high-volume, so it is not journaled (docs/decisions.md).
 */
export class MetricStore {
  private readonly store: SqliteStore;

  constructor(store: Store) {
    this.store = sqliteOf(store);
  }

  record(source: string, s: MetricSample): void {
    const db = this.store.db;
    const bucket = Math.floor(s.at / ROLLUP_SECONDS) * ROLLUP_SECONDS;
    db.transaction(() => {
      db.prepare(
        `INSERT OR REPLACE INTO metrics (source, tier, at, cpu, mem_used, mem_total, disk_used, disk_total,
         net_rx, net_tx, load1, samples, procs) VALUES (?, ${RAW_TIER}, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
      ).run(
        source,
        s.at,
        s.cpu,
        s.memUsed,
        s.memTotal,
        s.diskUsed,
        s.diskTotal,
        s.netRx,
        s.netTx,
        s.load1,
        s.procs ? JSON.stringify(s.procs) : null,
      );
      db.prepare(
        `INSERT OR REPLACE INTO metrics (source, tier, at, ${COLUMNS.join(', ')}, samples)
         SELECT source, ${ROLLUP_TIER}, ?, ${COLUMNS.map((c) => `AVG(${c})`).join(', ')}, COUNT(*)
         FROM metrics WHERE source = ? AND tier = ${RAW_TIER} AND at >= ? AND at < ? GROUP BY source`,
      ).run(bucket, source, bucket, bucket + ROLLUP_SECONDS);
    })();
  }

  /** Samples of one source in [from, to) (epoch seconds), oldest first, from the given tier. */
  series(source: string, tier: number, from: number, to: number): MetricSample[] {
    const rows = this.store.db
      .prepare('SELECT * FROM metrics WHERE source = ? AND tier = ? AND at >= ? AND at < ? ORDER BY at')
      .all(source, tier, from, to) as MetricRow[];
    return rows.map(fromRow);
  }

  latest(source: string): MetricSample | undefined {
    const r = this.store.db
      .prepare(`SELECT * FROM metrics WHERE source = ? AND tier = ${RAW_TIER} ORDER BY at DESC LIMIT 1`)
      .get(source) as MetricRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Sources and the time (epoch seconds) of their newest raw sample. */
  lastReports(): Map<string, number> {
    // A loose index scan: jump from source to source along the primary key (source, tier, at), then one
    // lookup each, instead of reading every sample (a day of samples of 100 nodes: ~150 ms per monitor
    // tick under load, against ~17 ms; docs/scale.md).
    const rows = this.store.db
      .prepare(
        `WITH RECURSIVE s(source) AS (
           SELECT MIN(source) FROM metrics
           UNION ALL
           SELECT (SELECT MIN(m.source) FROM metrics m WHERE m.source > s.source) FROM s WHERE s.source IS NOT NULL)
         SELECT source, at FROM (
           SELECT source, (SELECT MAX(m.at) FROM metrics m WHERE m.source = s.source AND m.tier = ${RAW_TIER}) AS at
             FROM s WHERE source IS NOT NULL)
         WHERE at IS NOT NULL`,
      )
      .all() as { source: string; at: number }[];
    return new Map(rows.map((r) => [r.source, r.at]));
  }

  /** Drops raw samples older than `rawBefore` and rollups older than `rollupBefore`; returns rows removed. */
  prune(rawBefore: number, rollupBefore: number): number {
    const db = this.store.db;
    const a = db.prepare(`DELETE FROM metrics WHERE tier = ${RAW_TIER} AND at < ?`).run(rawBefore).changes;
    const b = db
      .prepare(`DELETE FROM metrics WHERE tier = ${ROLLUP_TIER} AND at < ?`)
      .run(rollupBefore).changes;
    return a + b;
  }

  forget(source: string): void {
    this.store.db.prepare('DELETE FROM metrics WHERE source = ?').run(source);
  }
}
