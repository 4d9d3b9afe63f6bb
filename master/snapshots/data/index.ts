/**
 * The database-aware snapshot engine for a declared data path on a deployed node. It runs locally
 * against a path and a database connection, so the node agent can run it on the node once the master
 * can reach nodes (issue 11's transport); the master does not call it over the network yet.
 */
import type { PgConnection } from './psql-session.js';
import { basebackupPostgres, snapshotPostgres, type PgSnapshotResult } from './postgres.js';
import { snapshotSqlite, type SqliteSnapshotResult } from './sqlite.js';
import { snapshotTree, type TreePlan } from '../tree-snapshot.js';

export type DataSnapshotSpec =
  /** Plain files (no database, or one that is stopped): a tree snapshot. */
  | { kind: 'files'; path: string; target: string }
  | { kind: 'sqlite'; path: string; target: string }
  | {
      kind: 'postgres';
      path: string;
      target: string;
      conn: PgConnection;
      method?: 'backup-api' | 'basebackup';
    };

export type DataSnapshotResult =
  | { kind: 'files'; plan: TreePlan }
  | ({ kind: 'sqlite' } & SqliteSnapshotResult)
  | ({ kind: 'postgres' } & PgSnapshotResult);

export async function snapshotData(spec: DataSnapshotSpec): Promise<DataSnapshotResult> {
  switch (spec.kind) {
    case 'files':
      return { kind: 'files', plan: await snapshotTree(spec.path, spec.target, { immutable: false }) };
    case 'sqlite':
      return { kind: 'sqlite', ...(await snapshotSqlite(spec.path, spec.target)) };
    case 'postgres':
      return {
        kind: 'postgres',
        ...(spec.method === 'basebackup'
          ? await basebackupPostgres({ target: spec.target, conn: spec.conn })
          : await snapshotPostgres({ dataDir: spec.path, target: spec.target, conn: spec.conn })),
      };
  }
}

export { snapshotPostgres, basebackupPostgres, restorePostgres } from './postgres.js';
export { snapshotMysql } from './mysql.js';
export { snapshotSqlite } from './sqlite.js';
export type { PgConnection } from './psql-session.js';
